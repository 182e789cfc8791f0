"""Shared fixtures: the real GLUE copy, and two ways of running the CLI (in-process and subprocess)."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

# Never touch the network: the Hub code paths must fail fast (or read local Hub-style directories).
for _var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_var, "1")
# The suite trains on the CPU: a run inside a GPU allocation (SLURM's GPU variables, a scheduler's
# CUDA_VISIBLE_DEVICES) with a CPU-only torch would otherwise be refused as a lost GPU.
for _var in ("MTDNN_REQUIRE_GPU", "CUDA_VISIBLE_DEVICES") + tuple(
    v for v in os.environ if v.startswith("SLURM_") and "GPU" in v
):
    os.environ.pop(_var, None)

_TESTS = Path(__file__).resolve().parent
if str(_TESTS) not in sys.path:  # `import helpers` under any pytest import mode
    sys.path.insert(0, str(_TESTS))

from helpers import DERIVED, GLUE, TEST_LOG, Result, run_cli  # noqa: E402
from tiny_runs import inside_tiny_project  # noqa: E402


@pytest.fixture(scope="session")
def glue_dir() -> Path:
    """The byte-exact official GLUE files (CI sees them at ../shared/data from the project root)."""
    if not (GLUE / "SHA256SUMS").is_file():
        pytest.skip(f"real GLUE data not found at {GLUE}")
    return GLUE


@pytest.fixture(scope="session")
def derived_dir() -> Path:
    """Real MNLI/QQP/SNLI rows (subsets of the official files that are too large to keep here)."""
    if not (DERIVED / "SHA256SUMS").is_file():
        pytest.skip(f"derived real data not found at {DERIVED}")
    return DERIVED


@pytest.fixture(scope="module")
def tiny_project(tmp_path_factory, glue_dir):
    """A tiny encoder with RTE and STS-B prepared and tokenized, as the working directory for the
    module (one torch thread): (root, encoder)."""
    with inside_tiny_project(tmp_path_factory.mktemp("tiny"), glue_dir) as made:
        yield made


@pytest.fixture
def hub_online(monkeypatch):
    """The Hub as a user with internet has it: no offline variable, and the reachability probe
    answers yes (without a request: planning only asks whether the Hub can be used)."""
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr("mtdnn.ingest.sources.hub_reachable", lambda endpoint: True)


@pytest.fixture(name="run_cli")
def run_cli_fixture():
    """:func:`run_cli` as a fixture."""
    return run_cli


@pytest.fixture
def cli(monkeypatch, capsys):
    """Run ``mtdnn.cli.main(ARGS)`` in this process (fast); same contract as :func:`run_cli`.

    An unexpected exception is not caught: it fails the test with its traceback, as it should.
    """
    from mtdnn.cli import main

    def run(args: list[str], cwd: str | os.PathLike, env: dict | None = None) -> Result:
        with monkeypatch.context() as m:
            m.delenv("GLUE_DIR", raising=False)
            for k, v in (env or {}).items():
                if v is None:
                    m.delenv(k, raising=False)
                else:
                    m.setenv(k, str(v))
            m.chdir(cwd)
            capsys.readouterr()
            code = main([str(a) for a in args])
            out, err = capsys.readouterr()
        return Result(code, out, err)

    return run


# The files that take longest (the `--durations` listing of `.ci/run`), started first: xdist hands
# out whole files in this order (`--dist loadfile --no-loadscope-reorder`), so that no long file
# starts last while the other workers run out of work. Only the order changes, never a test.
LONGEST_FIRST = ("test_workflow.py", "test_slurm.py", "test_newcomer.py", "test_train.py")
LONGEST_FIRST += ("test_faults.py", "test_bad_checkpoints.py", "test_security.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: files keep order


# Reports that tests write for the CI log (the SLURM test's sacct listing, the workflow module's
# timings; helpers.ci_report). pytest-xdist workers have no terminal, so they append to files in
# one directory that the controller makes before the workers start (they inherit its environment)
# and prints at the end of the run.
def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # the controller, or a run without xdist
        os.environ[TEST_LOG] = tempfile.mkdtemp(prefix="mtdnn-test-log-")


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    if hasattr(config, "workerinput") or not os.environ.get(TEST_LOG):
        return
    logs = Path(os.environ.pop(TEST_LOG))
    texts = [f.read_text() for f in sorted(logs.glob("*.log"))]
    if texts:
        terminalreporter.section("test reports")
        for text in texts:
            terminalreporter.write(text)
    shutil.rmtree(logs, ignore_errors=True)
