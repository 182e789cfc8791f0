"""Bad checkpoints are refused with one line: truncated weights, another encoder or task set, a resume
directory without its trainer state. And a killed Snakemake run recovers with nothing lost."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from helpers import one_line_error, subprocess_env
from smoke_workflow import SNAKEMAKE, assert_nothing_owed, smoke_workflow
from tiny_runs import build_project, tiny_encoder, train_mtl_args

CFG = json.dumps(
    {
        "max_train_examples": 16,
        "batch_size": 8,
        "epochs": 1,
        "precision": "fp32",
        "eval_each_epoch": False,
    }
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, glue_dir):
    root = tmp_path_factory.mktemp("badckpt")
    encoder = tiny_encoder(root / "tiny-bert")
    build_project(root, glue_dir, encoder, tasks=("rte",))
    env = subprocess_env()
    args = [*train_mtl_args(encoder, 1, CFG), "--out", "model"]
    proc = subprocess.run(
        [sys.executable, "-m", "mtdnn", *args], cwd=root, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return root, encoder


def test_truncated_weights(trained, tmp_path, cli):
    root, _ = trained
    bad = tmp_path / "model"
    shutil.copytree(root / "model", bad)
    weights = bad / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    r = cli(["evaluate", "--model", bad, "--task", "rte", "--out", tmp_path / "cell.json"], root)
    one_line_error(r, str(weights), "truncated or corrupt")
    assert not (tmp_path / "cell.json").exists()


def test_checkpoint_from_another_encoder(trained, tmp_path, cli):
    root, _ = trained
    r = cli(
        [
            "finetune",
            "--task",
            "rte",
            "--init",
            "model",
            "--encoder",
            "minilm",
            "--seed",
            "1",
            "--cfg",
            CFG,
            "--out",
            tmp_path / "ft",
        ],
        root,
    )
    one_line_error(r, "model", "not 'minilm'")
    assert not (tmp_path / "ft").exists()


def test_checkpoint_from_another_task_set(trained, tmp_path, cli):
    root, _ = trained
    r = cli(
        ["evaluate", "--model", "model", "--task", "stsb", "--out", tmp_path / "cell.json"], root
    )
    one_line_error(r, "model", "no head for task 'stsb'")
    assert not (tmp_path / "cell.json").exists()


def test_resume_without_trainer_state(trained, tmp_path, cli):
    root, encoder = trained
    out = tmp_path / "run"
    last = tmp_path / "run.resume" / "last"
    shutil.copytree(root / "model", last)  # weights and config, but no optimizer/trainer state
    r = cli(
        [*train_mtl_args(encoder, 1, CFG), "--out", out],
        root,
    )
    one_line_error(r, str(last), "missing trainer state")
    assert not out.exists()


def test_killed_snakemake_run_recovers(tmp_path, glue_dir):
    """SIGKILL the whole Snakemake process group mid-job; the rerun redoes the incomplete job."""
    smoke_workflow(tmp_path)
    env = subprocess_env({"GLUE_DIR": glue_dir})
    cmd = [*SNAKEMAKE, "--cores", "1", "data"]
    first = subprocess.Popen(
        cmd,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    logs = tmp_path / "logs" / "tokenize"
    for _ in range(600):  # wait until a tokenize job has started
        if logs.is_dir() and any(logs.rglob("*.log")):
            break
        time.sleep(0.1)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    # A killed Snakemake leaves its lock (by design); --unlock releases it, then the profile's
    # rerun-incomplete redoes whatever job was cut short.
    unlock = subprocess.run(
        [*cmd, "--unlock"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert unlock.returncode == 0, unlock.stderr[-1000:]
    again = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert_nothing_owed(tmp_path, env)
    for manifest in (tmp_path / "data" / "tokenized").rglob("manifest.json"):
        assert json.loads(manifest.read_text())["splits"]  # complete, readable outputs only
