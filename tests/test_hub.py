"""The paper profile on data shaped like the Hub's: `prepare` of every quirk the Hub carries
(unlabelled test splits marked -1 / -1.0, SNLI's no-consensus pairs, QQP's empty question), and
the workflow's plan on a Hub-style mirror, on a partial one, and with no data at all."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from helpers import REPO, job_stats, subprocess_env
from hub_fixtures import NLI, NO_CONSENSUS, drop_config, make_hub_mirror, read_rows

from mtdnn.config import load_params
from mtdnn.grid import Grid
from mtdnn.prepare import MANIFEST

ROWS = 24  # rows per split in the mirror
GLUE_TASKS = ["cola", "sst2", "mrpc", "stsb", "rte", "wnli", "mnli", "qqp", "qnli"]


@pytest.fixture(autouse=True)
def no_glue_dir(monkeypatch) -> None:
    """These tests read a Hub mirror: a GLUE_DIR in the caller's environment (CI sets one) would
    take precedence in the grid, as it should for users."""
    monkeypatch.delenv("GLUE_DIR", raising=False)


@pytest.fixture(scope="module")
def mirror(tmp_path_factory, glue_dir, derived_dir) -> Path:
    return make_hub_mirror(tmp_path_factory.mktemp("hub"), glue_dir, derived_dir, ROWS)


def profile(dest: Path, name: str, **data) -> Path:
    """``mtdnn profile NAME --out dest/params.yaml``, then ``data`` keys set; returns the file."""
    out = dest / "params.yaml"
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "mtdnn", "profile", name, "--out", str(out)],
        check=True,
        capture_output=True,
        env=subprocess_env(),
    )
    params = yaml.safe_load(out.read_text())
    params["data"] |= data
    out.write_text(yaml.safe_dump(params, sort_keys=False))
    return out


def prepare(cli, root: Path, task: str) -> tuple[dict, Path]:
    out = root / "canonical" / task
    r = cli(["prepare", "--task", task, "--out", out], root, env={"HF_DATASETS_CACHE": root / "hf"})
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads((out / MANIFEST).read_text()), out


# --- prepare --------------------------------------------------------------------------------------


def test_snli_no_consensus_rows_are_dropped_and_counted(cli, mirror, derived_dir, tmp_path):
    profile(tmp_path, "paper", hub_dir=str(mirror))
    manifest, out = prepare(cli, tmp_path, "snli")
    kept = {s: ROWS - n for s, n in NO_CONSENSUS.items()}  # train 21, validation 22, test 23
    assert {s: v["rows"] for s, v in manifest["splits"].items()} == {
        "train": kept["train"],
        "dev": kept["validation"],
        "test": kept["test"],
    }
    assert {s: v["dropped"] for s, v in manifest["splits"].items()} == {
        split: {"no_label": NO_CONSENSUS[hub], "empty_text": 0}
        for split, hub in (("train", "train"), ("dev", "validation"), ("test", "test"))
    }
    dev = pd.read_parquet(out / "dev.parquet")
    source = read_rows(derived_dir / "SNLI" / "dev.tsv", True, 0, ROWS)
    # exactly the marked rows are gone; every other row keeps its text, label and Hub row number
    assert dev["text_a"].tolist() == [r[0] for r in source[NO_CONSENSUS["validation"] :]]
    assert dev["label"].tolist() == [r[2] for r in source[NO_CONSENSUS["validation"] :]]
    assert dev["uid"].tolist() == [f"dev-{i}" for i in range(NO_CONSENSUS["validation"], ROWS)]
    for split in ("train", "dev", "test"):
        labels = pd.read_parquet(out / f"{split}.parquet")["label"]
        assert labels.notna().all() and set(labels) <= set(NLI), split


@pytest.mark.parametrize(
    ("task", "tests"),
    [
        ("stsb", ["test"]),  # test scores are -1.0 on the Hub
        ("rte", ["test"]),
        ("mnli", ["test_matched", "test_mismatched"]),
        ("ax", ["test"]),
    ],
)
def test_unlabelled_test_splits_carry_the_sentinel(cli, mirror, tmp_path, task, tests):
    profile(tmp_path, "paper", hub_dir=str(mirror))
    manifest, out = prepare(cli, tmp_path, task)
    for split, info in manifest["splits"].items():
        labels = pd.read_parquet(out / f"{split}.parquet")["label"]
        assert info["rows"] == ROWS and info["dropped"] == {"no_label": 0, "empty_text": 0}
        if split in tests:
            assert labels.isna().all() and info["labelled"] is False, split
        else:
            assert labels.notna().all() and info["labelled"] is True, split
    if task == "stsb":
        train = pd.read_parquet(out / "train.parquet")["label"]
        assert train.dtype == "float64" and train.between(0.0, 5.0).all()


def test_qqp_empty_question_is_dropped_from_train(cli, mirror, tmp_path):
    profile(tmp_path, "paper", hub_dir=str(mirror))
    manifest, out = prepare(cli, tmp_path, "qqp")
    assert manifest["splits"]["train"]["dropped"] == {"no_label": 0, "empty_text": 1}
    assert manifest["splits"]["train"]["rows"] == ROWS - 1
    train = pd.read_parquet(out / "train.parquet")
    assert (train["text_b"].str.strip() != "").all()
    assert "train-1" not in set(train["uid"])  # the Hub row with the empty question2


# --- the workflow's plan --------------------------------------------------------------------------


def workflow_copy(dest: Path) -> Path:
    shutil.copytree(REPO / "workflow", dest / "workflow")
    return dest


def snakemake(root: Path, *args: str, glue: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "GLUE_DIR"}
    env |= {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    if glue is not None:
        env["GLUE_DIR"] = str(glue)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def mtdnn_errors(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("mtdnn: error: ")]


def test_paper_profile_plans_every_task_on_a_hub_mirror(mirror, tmp_path):
    params_file = profile(workflow_copy(tmp_path), "paper", hub_dir=str(mirror))
    proc = snakemake(tmp_path, "-n", "--cores", "8")  # the default target: both tables
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    params = load_params(params_file)
    grid = Grid(params)
    assert grid.finetune_tasks == GLUE_TASKS
    assert grid.adapt_encoder == "bert-base" != grid.encoder
    a = params["adapt"]
    datasets = set(GLUE_TASKS) | set(a["datasets"])  # 9 GLUE tasks, SNLI and SciTail
    # bert-large for GLUE; bert-base for adaptation and for its MT-DNN init's 8 tasks
    tokenized = len(GLUE_TASKS) + len(params["mtl"]["tasks"]) + len(a["datasets"])
    stats = job_stats(proc.stdout + proc.stderr)
    assert stats == {
        "prepare": len(datasets),
        "tokenize": tokenized,
        "train_mtl": 2,  # GLUE's bert-large model and adaptation's bert-base init
        "finetune": 2 * len(GLUE_TASKS),
        "glue_table": 1,
        "adapt": len(a["datasets"]) * len(a["sizes"]) * len(a["seeds"]) * 2,
        "adapt_table": 1,
        "all": 1,
    }, stats
    assert stats["prepare"] == 11 and stats["tokenize"] == 19 and stats["adapt"] == 80
    text = proc.stdout + proc.stderr
    for task in GLUE_TASKS:
        assert f"output: data/canonical/{task}\n" in text
    assert "models/mtl/bert-base/" in text and "--encoder bert-base" in text


def test_a_task_missing_from_the_mirror_is_one_line_naming_it(mirror, tmp_path):
    partial = tmp_path / "hub"
    shutil.copytree(mirror, partial)
    drop_config(partial, "mnli")
    profile(workflow_copy(tmp_path / "project"), "paper", hub_dir=str(partial))
    proc = snakemake(tmp_path / "project", "-n", "--cores", "8", "results/glue.csv")
    assert proc.returncode == 2, (proc.stdout + proc.stderr)[-3000:]
    assert "Traceback" not in proc.stderr + proc.stdout
    errors = mtdnn_errors(proc.stderr)
    assert len(errors) == 1 and proc.stderr.count("\n") <= 2, proc.stderr
    assert "task mnli: no training data" in errors[0]
    assert str(partial / "nyu-mll" / "glue" / "mnli") in errors[0]
    assert "data.optional_tasks" in errors[0]


def test_a_glue_dir_without_mnli_is_one_line_naming_it(glue_dir, tmp_path):
    """The local copy here has no MNLI: the paper profile must not train without it."""
    profile(workflow_copy(tmp_path), "paper")
    proc = snakemake(tmp_path, "-n", "--cores", "8", "results/glue.csv", glue=glue_dir)
    assert proc.returncode == 2, (proc.stdout + proc.stderr)[-3000:]
    errors = mtdnn_errors(proc.stderr)
    assert len(errors) == 1, proc.stderr
    assert f"task mnli: no training data: {glue_dir} has no MNLI/" in errors[0]
    assert "HF_HUB_OFFLINE" in errors[0] and "GLUE_DIR" in errors[0]


def test_quick_start_without_data_says_to_set_glue_dir(tmp_path):
    """README quick start (a), offline and with no GLUE_DIR: one line, exit 2, nothing built."""
    shutil.copyfile(REPO / "mtdnn" / "profiles" / "default.yaml", tmp_path / "params.yaml")
    proc = snakemake(workflow_copy(tmp_path), "--cores", "all", "results/glue.csv")
    assert proc.returncode == 2, (proc.stdout + proc.stderr)[-3000:]
    errors = mtdnn_errors(proc.stderr)
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "GLUE_DIR is not set" in errors[0] and "set GLUE_DIR" in errors[0]
    assert not (tmp_path / "data").exists() and not (tmp_path / "results").exists()
