"""`mtdnn fetch` against a fake Hub on 127.0.0.1 (HF_ENDPOINT): it stages exactly the configs and
splits the profile's tasks read, in the layout `prepare` reads from data.hub_dir, and the encoder
into the HF cache; a second run downloads nothing; afterwards `prepare` and `tokenize` run with the
Hub switched off. Bad setups fail with one line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from helpers import REPO, one_line_error, run_cli
from hub_fixtures import COMMIT, FakeHub, make_hub_mirror
from tiny_runs import tiny_encoder

ROWS = 24
GLUE_REPO, SNLI_REPO, MODEL_REPO = "nyu-mll/glue", "stanfordnlp/snli", "bert-base-uncased"
# What the profile below reads from the Hub, and nothing else (no cola, no ax, no scitail).
EXPECTED = {
    GLUE_REPO: [f"rte/{s}-00000-of-00001.parquet" for s in ("train", "validation", "test")]
    + [
        f"mnli/{s}-00000-of-00001.parquet"
        for s in ("train", "validation_matched", "validation_mismatched")
        + ("test_matched", "test_mismatched")
    ],
    SNLI_REPO: [f"plain_text/{s}-00000-of-00001.parquet" for s in ("train", "validation", "test")],
}
MODEL_EXTRA = ["tf_model.h5", "flax_model.msgpack"]  # as real repos hold: not fetched
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


@pytest.fixture(scope="module")
def served(tmp_path_factory, glue_dir, derived_dir) -> dict[tuple[str, str], Path]:
    """The repos the fake Hub serves: the Hub-shaped dataset repos and a tiny BERT as
    bert-base-uncased (what the `bert-base` alias names), with other weight formats beside it."""
    root = tmp_path_factory.mktemp("served")
    mirror = make_hub_mirror(root / "datasets", glue_dir, derived_dir, ROWS)
    model = tiny_encoder(root / "models" / MODEL_REPO)
    for name in MODEL_EXTRA:
        (model / name).write_bytes(b"not for pytorch")
    repos = {("datasets", r): mirror / r for r in (GLUE_REPO, SNLI_REPO, "allenai/scitail")}
    return repos | {("models", MODEL_REPO): model}


def project(root: Path, hub_dir: str | None = "hub") -> Path:
    """The smoke profile cut down to RTE and MNLI (GLUE), SNLI (adaptation) with bert-base
    for adaptation; ``data.hub_dir`` relative to the project, as a user would write it."""
    params = yaml.safe_load((REPO / "mtdnn/profiles/smoke.yaml").read_text())
    params["data"] |= {"hub_dir": hub_dir, "sources": {}}
    params["mtl"]["tasks"] = ["rte", "mnli"]
    params["finetune"]["tasks"] = ["rte"]
    params["adapt"] |= {"datasets": ["snli"], "encoder": "bert-base"}
    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return root


def hf_env(root: Path, endpoint: str) -> dict:
    """The Hub at ``endpoint`` and the HF cache in the project (a caller's HF_HUB_CACHE would win)."""
    return {"HF_ENDPOINT": endpoint, "HF_HOME": root / "hf", "HF_HUB_CACHE": None}


def fetch(root: Path, endpoint: str):
    """`mtdnn fetch` as a user runs it on a login node: online, against ``endpoint``."""
    return run_cli(["fetch"], root, env=hf_env(root, endpoint) | dict.fromkeys(OFFLINE))


def staged(hub_dir: Path) -> list[str]:
    """Files under ``hub_dir`` as repo paths, without huggingface_hub's own metadata."""
    files = (p.relative_to(hub_dir).as_posix() for p in hub_dir.rglob("*") if p.is_file())
    return sorted(f for f in files if "/.cache/" not in f)


def test_fetch_stages_what_prepare_reads_once_and_offline_runs_use_it(served, tmp_path):
    root = project(tmp_path / "project")
    served_model = served[("models", MODEL_REPO)]
    with FakeHub(served) as hub:
        first = fetch(root, hub.url)
        assert first.returncode == 0, first.stderr[-3000:]
        expected = sorted(f"{repo}/{f}" for repo, files in EXPECTED.items() for f in files)
        assert staged(root / "hub") == expected
        for repo, files in EXPECTED.items():  # byte for byte what the Hub serves
            for f in files:
                source = served[("datasets", repo)] / f
                assert (root / "hub" / repo / f).read_bytes() == source.read_bytes(), f
        snapshot = root / "hf" / "hub" / f"models--{MODEL_REPO}" / "snapshots" / COMMIT
        served_files = {p.name for p in served_model.iterdir()}
        assert {p.name for p in snapshot.iterdir()} == served_files - set(MODEL_EXTRA)
        lines = first.stdout.splitlines()
        assert [line.split(":")[0] for line in lines] == [
            "rte", "mnli", "snli", "encoder minilm", "encoder bert-base",
        ]  # fmt: skip
        assert "nothing to fetch" in lines[3] and "none downloaded" not in first.stdout

        served_before = len(hub.downloads())
        second = fetch(root, hub.url)
        assert second.returncode == 0, second.stderr[-3000:]
        assert hub.downloads()[served_before:] == []
        done = ["none downloaded" in line for line in second.stdout.splitlines()]
        assert done == [True, True, True, False, True]  # all but the bundled MiniLM's line

        asked = len(hub.requests)  # from here on the Hub is off: nothing may reach it
        env = hf_env(root, hub.url) | OFFLINE
        for task in ("rte", "mnli", "snli"):
            r = run_cli(["prepare", "--task", task], root, env=env)
            assert r.returncode == 0, r.stderr[-3000:]
        r = run_cli(["tokenize", "--task", "snli", "--encoder", "bert-base"], root, env=env)
        assert r.returncode == 0, r.stderr[-3000:]
        assert hub.requests[asked:] == []
    assert (root / "data" / "canonical" / "mnli" / "dev_mismatched.parquet").is_file()


def test_a_split_missing_on_the_hub_is_one_line(served, tmp_path):
    repos = dict(served)
    glue = tmp_path / "glue"
    shutil.copytree(served[("datasets", GLUE_REPO)], glue)
    (glue / "mnli" / "validation_mismatched-00000-of-00001.parquet").unlink()
    repos[("datasets", GLUE_REPO)] = glue
    root = project(tmp_path / "project")
    with FakeHub(repos) as hub:
        one_line_error(fetch(root, hub.url), "task mnli", "validation_mismatched-*.parquet")


def test_an_unreachable_hub_is_one_line_naming_the_repo(tmp_path):
    root = project(tmp_path / "project")
    with FakeHub({}) as hub:  # a port nothing listens on once the server is closed
        url = hub.url
    one_line_error(fetch(root, url), "task rte", GLUE_REPO, url)
    assert not (root / "hub").exists() or staged(root / "hub") == []


def test_fetch_needs_data_hub_dir(tmp_path, cli):
    one_line_error(cli(["fetch"], project(tmp_path, None)), "data.hub_dir is not set")


def test_fetch_refuses_to_run_offline(tmp_path, cli, monkeypatch):
    # offline, snapshot_download would report what is on disk as fetched: fetch must refuse
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    one_line_error(cli(["fetch"], project(tmp_path)), "HF_HUB_OFFLINE")
