"""benchmarks/parity.py --merge: runs split across processes give one summary, as one run would."""

from __future__ import annotations

import importlib
import json
import sys

import pytest
from helpers import REPO

from mtdnn.errors import MtdnnError

sys.path.insert(0, str(REPO / "benchmarks"))  # parity imports its sibling `common`
parity = importlib.import_module("parity")


def run(task: str, seed: int, impl: str, acc: float) -> dict:
    extra = {"rows": 100, "epochs": 3.0, "lr": 5e-5, "lrs": [1e-5, 5e-5]}
    return {
        "impl": impl,
        "task": task,
        "seed": seed,
        "metrics": {"accuracy": acc},
        "steps": 2,
        "ramp": 1,
        "train_s": 1.0,
        "wall_s": 2.0,
        "threads": 1,
        "extra": extra,
    }


def write(path, runs: list[dict], pooling: str = "mean"):
    env = {"cpu": {"model": "x", "cores": 2, "avx512_bf16": False, "amx_bf16": False}}
    setup = {"pooling": pooling, "precision": "fp32", "batch_size": 32, "warmup": 0.1}
    doc = {"environment": env, "budgets": {"full": {"setup": setup, "summary": [], "runs": runs}}}
    path.write_text(json.dumps(doc))
    return path


def test_merged_seeds_are_summarised_together(tmp_path):
    a = write(tmp_path / "a.json", [run("rte", 1, "mtdnn", 60.0), run("rte", 1, "hf", 58.0)])
    b = write(tmp_path / "b.json", [run("rte", 2, "mtdnn", 64.0), run("rte", 2, "hf", 66.0)])
    c = write(tmp_path / "c.json", [run("mrpc", 1, "mtdnn", 70.0), run("mrpc", 1, "hf", 75.0)])
    _, results = parity.merge([a, b, c])
    rte, mrpc = results["full"]["summary"]
    assert (rte["task"], rte["seeds"]) == ("rte", 2)
    acc = rte["metrics"]["accuracy"]
    assert acc["mtdnn"][0] == pytest.approx(62.0) and acc["hf"][0] == pytest.approx(62.0)
    assert acc["mtdnn"][1] == pytest.approx(2.8284, abs=1e-3)  # sample std of 60 and 64
    assert rte["verdict"] == "parity" and mrpc["verdict"] == "GAP"  # 5 points apart, one seed
    assert len(results["full"]["runs"]) == 6


def test_the_same_run_twice_is_refused(tmp_path):
    a = write(tmp_path / "a.json", [run("rte", 1, "mtdnn", 60.0), run("rte", 1, "hf", 58.0)])
    with pytest.raises(MtdnnError, match="appears twice"):
        parity.merge([a, a])


def test_files_with_another_setup_are_refused(tmp_path):
    a = write(tmp_path / "a.json", [run("rte", 1, "mtdnn", 60.0), run("rte", 1, "hf", 58.0)])
    b = write(tmp_path / "b.json", [run("rte", 2, "mtdnn", 64.0)], pooling="cls")
    with pytest.raises(MtdnnError, match=f"{b}: its full setup"):
        parity.merge([a, b])


def test_a_file_that_is_not_a_parity_result_is_one_line(tmp_path, capsys):
    bad = tmp_path / "notes.json"
    bad.write_text('{"runs": []}')
    assert parity.main(["--merge", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {bad}: expected a parity.py --json file") and "\n" not in err
