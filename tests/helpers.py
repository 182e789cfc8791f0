"""What many test modules need: the repository's paths, a subprocess environment, the CLI runner,
the one-line-error check and Snakemake's job table. Test modules import from here (or from
``fixtures``/``tiny_runs``), never from one another."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
GLUE = SHARED_DATA / "glue"
DERIVED = SHARED_DATA / "derived"
PROFILES = REPO / "mtdnn" / "profiles"
BIN = Path(sys.executable).parent


def subprocess_env(
    extra: Mapping[str, object | None] | None = None, package: Path = REPO
) -> dict[str, str]:
    """This process's (offline) environment for a child: ``package`` (this checkout) first on
    PYTHONPATH, this venv's tools first on PATH, then ``extra`` (a value of None removes a name)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(package), env.get("PYTHONPATH")]))
    env["PATH"] = os.pathsep.join(filter(None, [str(BIN), env.get("PATH")]))
    for key, value in (extra or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = str(value)
    return env


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def run_cli(args: list, cwd: str | os.PathLike, env: dict | None = None) -> Result:
    """Run ``python -m mtdnn ARGS`` in a subprocess: the real exit code and the real stderr.

    ``env`` entries are added to the (offline) environment; a value of None removes the variable.
    GLUE_DIR is removed unless given, so a developer's shell cannot change what a test sees.
    """
    proc = subprocess.run(
        [sys.executable, "-m", "mtdnn", *map(str, args)],
        cwd=cwd,
        env=subprocess_env({"GLUE_DIR": None} | (env or {})),
        capture_output=True,
        text=True,
        timeout=900,  # a guard against hangs, not a speed target (CI machines may be loaded)
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def one_line_error(result, *fragments: str) -> None:
    """Bad input: exit 2 and exactly one ``mtdnn: error:`` line holding every fragment."""
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mtdnn: error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def job_stats(text: str) -> dict[str, int]:
    """The first 'Job stats' table of a Snakemake run: jobs per rule (without the total)."""
    match = re.search(r"Job stats:\n\s*job\s+count\n\s*-+\s+-+\n((?:\s*\S+\s+\d+\n)+)", text)
    assert match, f"no 'Job stats' table in:\n{text[-3000:]}"
    rows = (line.split() for line in match.group(1).splitlines())
    return {rule: int(n) for rule, n in rows if rule != "total"}


# Rendezvous ports for torchrun tests: below the kernel's ephemeral range (32768-60999), where an
# outbound connection of any process can take a port between our probe and torchrun's bind, and a
# block of its own per pytest-xdist worker, so two workers never probe the same port.
PORTS_FROM, PORTS_PER_WORKER = 20000, 500


def free_port() -> int:
    """A loopback TCP port that is free now, from this xdist worker's own block."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    start = PORTS_FROM + PORTS_PER_WORKER * (int(worker) if worker.isdigit() else 0)
    for i in range(PORTS_PER_WORKER):  # from a pid-dependent point: reruns do not wait on TIME_WAIT
        port = start + (os.getpid() + i) % PORTS_PER_WORKER
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {start}-{start + PORTS_PER_WORKER - 1}")


TEST_LOG = "MTDNN_TEST_LOG"  # the directory tests/conftest.py prints at the end of the run


def ci_report(title: str, text: str) -> None:
    """Put ``text`` into the run's closing "test reports" section, under ``title``: a worker of
    pytest-xdist cannot print to the terminal (print would be captured and dropped)."""
    block = f"[{title}]\n{text.rstrip()}\n"
    logs = os.environ.get(TEST_LOG)
    if not logs:  # a test imported outside pytest's configure hook
        sys.stdout.write(block)
        return
    with open(Path(logs) / f"{os.getpid()}.log", "a", encoding="utf-8") as log:
        log.write(block)
