"""Training curves through DVCLive (mtdnn/training/tracking.py): every batch's loss and every
epoch's dev metrics in the model's ``dvclive`` directory, the same bytes for the same seed, the
same after a kill and resume, from rank 0 alone, and logging changes no number of the run."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
from tiny_runs import (
    TINY,
    assert_same_weights,
    distributed_project,
    run_tiny,
    torchrun,
    train_losses,
)

from mtdnn.training import tracking

METRICS = Path("dvclive/plots/metrics")
CFG = TINY.with_overrides(checkpoint_every=4)  # 16 batches an epoch, two epochs


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def series(path: Path, field: str) -> tuple[list[int], list[float]]:
    """(steps, values) of a DVCLive metric file."""
    got = rows(path)
    return [int(r["step"]) for r in got], [float(r[field]) for r in got]


def tree(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` by relative path, with its bytes."""
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def without_timing(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k not in ("train_seconds", "train_examples_per_s")}


@pytest.fixture(scope="module")
def logged(tiny_project) -> tuple[Path, dict]:
    """One uninterrupted tiny run on RTE + STS-B: (model directory, summary)."""
    root, _ = tiny_project
    return root / "logged", run_tiny(tiny_project, "logged", cfg=CFG)


def test_the_loss_of_every_batch_and_the_metrics_of_every_epoch(logged):
    model, summary = logged
    losses = model / METRICS / "train/loss.tsv"
    assert rows(losses)[0].keys() == {"step", "loss"}  # DVCLive's columns, no timestamp
    steps, values = series(losses, "loss")
    assert steps == list(range(1, 33)) and len(summary["losses"]) == 32
    assert values == summary["losses"]  # what the trainer computed, to its summary's digits
    history = summary["history"]
    assert [h["batches"] for h in history] == [16, 32]
    for split, metric in (
        ("rte/dev", "accuracy"),
        ("stsb/dev", "pearson"),
        ("stsb/dev", "spearman"),
    ):
        steps, values = series(model / METRICS / "dev" / split / f"{metric}.tsv", metric)
        assert steps == [16, 32], split  # one row per epoch, at the batch that ended it
        assert values == [h["dev"][split][metric] for h in history], (split, metric)
    latest = json.loads((model / "dvclive/metrics.json").read_text())
    assert latest["step"] == 32 and latest["train"]["loss"] == summary["losses"][-1]
    assert latest["dev"]["rte"]["dev"]["accuracy"] == history[-1]["dev"]["rte/dev"]["accuracy"]
    assert list(latest) == ["train", "dev", "step"]


def test_the_held_out_selection_is_logged_too(tiny_project):
    root, _ = tiny_project
    summary = run_tiny(tiny_project, "held", cfg=CFG.with_overrides(holdout_examples=16))
    metrics, history = root / "held" / METRICS, summary["history"]
    steps, values = series(metrics / "holdout/score.tsv", "score")
    assert steps == [h["batches"] for h in history] and values == [h["score"] for h in history]
    _, values = series(metrics / "holdout/rte/train/accuracy.tsv", "accuracy")
    assert values == [h["holdout"]["rte/train"]["accuracy"] for h in history]


def test_dvclive_stays_out_of_the_repository(logged, tiny_project):
    """No dvc.yaml, no DVC project, no experiment, nothing left beside the model."""
    root, _ = tiny_project
    model, _ = logged
    assert sorted(p.name for p in (model / "dvclive").iterdir()) == ["metrics.json", "plots"]
    assert not list(root.rglob("dvc.yaml")) and not (root / ".dvc").exists()
    assert not (root / "logged.dvclive").exists() and not (root / "logged.resume").exists()


def test_same_seed_same_bytes_and_logging_changes_nothing(logged, tiny_project, monkeypatch):
    model, summary = logged
    again = run_tiny(tiny_project, "again", cfg=CFG)
    root, _ = tiny_project
    assert tree(root / "again/dvclive") == tree(model / "dvclive")
    assert without_timing(again) == without_timing(summary)
    # The same run with the logger replaced by one that logs nothing: the same weights and numbers.
    monkeypatch.setattr(tracking.LiveCurves, "open", lambda *a: tracking.Curves())
    quiet = run_tiny(tiny_project, "quiet", cfg=CFG)
    assert not (root / "quiet/dvclive").exists()
    assert_same_weights(model, root / "quiet")
    assert without_timing(quiet) == without_timing(summary)


def test_a_resumed_run_logs_what_an_uninterrupted_one_does(logged, tiny_project):
    """Killed mid-epoch 1 after rows past its checkpoint were logged, then resumed: the same files.
    A fresh start over a stale directory of another run keeps nothing of it either."""
    root, _ = tiny_project
    model, _ = logged
    live = root / "cut.dvclive"
    assert run_tiny(tiny_project, "cut", stop_after=20, cfg=CFG) is None
    # Watched while the job runs: the rows so far, epoch 0's dev metrics among them.
    assert series(live / "plots/metrics/train/loss.tsv", "loss")[0] == list(range(1, 21))
    assert series(live / "plots/metrics/dev/rte/dev/accuracy.tsv", "accuracy")[0] == [16]
    with open(live / "plots/metrics/train/loss.tsv", "a") as f:  # logged, then killed
        f.write("21\t9.5\n22\t9.25\n")
    run_tiny(tiny_project, "cut", cfg=CFG)
    assert tree(root / "cut/dvclive") == tree(model / "dvclive")
    assert not live.exists()

    stale = root / "fresh.dvclive"
    (stale / "plots/metrics/train").mkdir(parents=True)
    (stale / "plots/metrics/train/loss.tsv").write_text("step\tloss\n1\t5.0\n")
    (stale / "plots/metrics/old.tsv").write_text("step\told\n1\t1.0\n")
    run_tiny(tiny_project, "fresh", cfg=CFG)
    assert tree(root / "fresh/dvclive") == tree(model / "dvclive")


@pytest.fixture(scope="module")
def dist_project(tmp_path_factory, glue_dir, derived_dir):
    root = tmp_path_factory.mktemp("dist-live")
    return root, distributed_project(root, glue_dir, derived_dir)


def test_only_rank_0_logs(dist_project):
    """Two processes under torchrun, one directory: a second writer would double every row."""
    root, encoder = dist_project
    losses = train_losses(root, encoder, [torchrun("--standalone", "--nproc-per-node", "2")], "two")
    steps, values = series(root / "two" / METRICS / "train/loss.tsv", "loss")
    assert steps == list(range(1, len(losses) + 1)) and values == losses
    assert not os.path.exists(root / "two.dvclive")
