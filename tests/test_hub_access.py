"""One answer to "can the Hub be used": the grid that plans the jobs and `prepare` that reads the data
ask the same function, which honours HF_ENDPOINT, the proxy variables and the HF cache."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from helpers import PROFILES, free_port, one_line_error, subprocess_env
from hub_fixtures import make_hub_mirror

from mtdnn.config import load_params
from mtdnn.grid import Grid
from mtdnn.ingest import sources

OFFLINE = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


class Answering(BaseHTTPRequestHandler):
    """Answers every request with 200 and logs its request line (a Hub endpoint or a proxy)."""

    seen: list[str]

    def _answer(self) -> None:
        self.seen.append(self.requestline)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_HEAD = do_CONNECT = _answer

    def log_message(self, *args) -> None:  # quiet
        pass


@pytest.fixture
def server():
    """A local HTTP server on 127.0.0.1: (base URL, request lines seen)."""
    seen: list[str] = []
    handler = type("Handler", (Answering,), {"seen": seen})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    httpd.shutdown()


def closed_url() -> str:
    """A loopback URL nothing listens on: a connection there is refused at once."""
    return f"http://127.0.0.1:{free_port()}"


def online_env(**extra: str) -> dict[str, str]:
    """A child's environment with none of the offline variables and no proxy unless given."""
    drop = {v: None for v in OFFLINE} | {
        v: None for v in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY")
    }
    return subprocess_env(drop | {"no_proxy": None} | extra)


def hub_status_in_child(env: dict[str, str], calls: int = 1) -> str:
    """``hub_status()`` asked ``calls`` times in a fresh process (huggingface_hub reads its
    settings and builds its HTTP client once per process, from the environment)."""
    code = (
        "from mtdnn.ingest.sources import hub_status; "
        f"print(*[hub_status() for _ in range({calls})])"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


# --- the probe ----------------------------------------------------------------------------------


def test_the_probe_asks_hf_endpoint_once_per_process(server):
    url, seen = server
    assert hub_status_in_child(online_env(HF_ENDPOINT=url), calls=3) == "None None None"
    assert seen == ["HEAD / HTTP/1.1"]  # one probe for the whole process
    closed = closed_url()
    assert hub_status_in_child(online_env(HF_ENDPOINT=closed)) == f"unreachable ({closed})"
    offline = online_env(HF_ENDPOINT=url, HF_HUB_OFFLINE="1")
    assert hub_status_in_child(offline) == "disabled (HF_HUB_OFFLINE/HF_DATASETS_OFFLINE)"
    assert len(seen) == 1  # offline: no request at all


def test_the_probe_goes_through_the_http_proxy(server):
    """A cluster whose nodes reach the Hub only through a proxy: the endpoint's name does not
    even resolve here, yet the Hub is reachable through the proxy, as the download will be."""
    url, seen = server
    direct = online_env(HF_ENDPOINT="http://hub.invalid")
    assert hub_status_in_child(direct) == "unreachable (http://hub.invalid)"
    assert hub_status_in_child(direct | {"HTTP_PROXY": url}) == "None"
    assert seen == ["HEAD http://hub.invalid/ HTTP/1.1"]


@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "https_proxy"])
def test_the_probe_tunnels_https_through_https_proxy(server, variable):
    url, seen = server
    hub_status_in_child(online_env(HF_ENDPOINT="https://hub.invalid", **{variable: url}))
    assert seen and seen[0] == "CONNECT hub.invalid:443 HTTP/1.1", seen


# --- the grid and prepare agree -----------------------------------------------------------------


@pytest.fixture
def default_params(glue_dir, monkeypatch) -> dict:
    monkeypatch.setenv("GLUE_DIR", str(glue_dir))
    return load_params(PROFILES / "default.yaml")


def unreachable(monkeypatch) -> None:
    for var in OFFLINE:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(sources, "hub_reachable", lambda endpoint: False)


def test_an_unreachable_hub_leaves_qnli_out_of_the_plan(default_params, monkeypatch):
    unreachable(monkeypatch)
    grid = Grid(default_params)
    assert "qnli" not in grid.mtl_tasks and "qnli" not in grid.finetune_tasks
    assert "unreachable" in grid.train_missing("qnli")


def test_a_reachable_hub_gives_qnli_train_beside_the_local_copy(
    default_params, monkeypatch, hub_online
):
    grid = Grid(default_params)
    assert "qnli" in grid.mtl_tasks and "qnli" in grid.finetune_tasks


def test_prepare_refuses_a_train_split_it_cannot_have(cli, glue_dir, monkeypatch, tmp_path):
    """What the workflow runs (`--need-train`): one line naming the task, the split and what to
    set, and no partial task left for the next job to trip over."""
    unreachable(monkeypatch)
    out = tmp_path / "canonical" / "qnli"
    r = cli(
        ["prepare", "--task", "qnli", "--need-train", "--out", out],
        tmp_path,
        env={"GLUE_DIR": glue_dir},
    )
    one_line_error(
        r,
        "task qnli: no train split",
        "unreachable",
        "the workflow trains qnli",
        "GLUE_DIR",
        "mtdnn fetch",
    )
    assert not out.exists()
    assert not out.parent.exists() or not any(out.parent.iterdir())  # no temp dir left either
    # By hand, without --need-train, the splits that can be had are written, with a notice.
    r = cli(["prepare", "--task", "qnli", "--out", out], tmp_path, env={"GLUE_DIR": glue_dir})
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.glob("*.parquet")) == ["dev.parquet", "test.parquet"]


# --- the HF cache -------------------------------------------------------------------------------


def cache_snapshot(cache: Path, mirror: Path, repo: str) -> Path:
    """Lay ``mirror``'s copy of dataset ``repo`` out as huggingface_hub's cache holds it."""
    commit = "0" * 40
    folder = cache / f"datasets--{repo.replace('/', '--')}"
    shutil.copytree(mirror / repo, folder / "snapshots" / commit)
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(commit)
    return folder


def test_a_populated_hf_cache_is_used_when_the_hub_is_unreachable(glue_dir, derived_dir, tmp_path):
    """A node that once downloaded the data (or was given the cache) trains QNLI offline: the
    plan includes it and prepare reads the cached shards, with no request to the Hub."""
    mirror = make_hub_mirror(tmp_path / "hub", glue_dir, derived_dir, n=24)
    cache = tmp_path / "hf" / "hub"
    cache_snapshot(cache, mirror, "nyu-mll/glue")
    env = online_env(HF_ENDPOINT=closed_url(), HF_HUB_CACHE=str(cache), GLUE_DIR=str(glue_dir))
    params = yaml.safe_load((PROFILES / "default.yaml").read_text())
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    code = (
        "from mtdnn.grid import Grid; from mtdnn.config import load_params; "
        "print(Grid(load_params('params.yaml')).mtl_tasks)"
    )
    plan = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert plan.returncode == 0 and "'qnli'" in plan.stdout, plan.stderr
    out = tmp_path / "canonical" / "qnli"
    proc = subprocess.run(
        [sys.executable, "-m", "mtdnn", "prepare", "--task", "qnli", "--need-train", "--out", out],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["splits"]["train"]["rows"] == 24
    assert manifest["splits"]["train"]["source"].startswith("hub:nyu-mll/glue/qnli/train@")
