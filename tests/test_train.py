"""The training loop: exact resume, determinism, DDP equivalence, and a real multi-task smoke run."""

from __future__ import annotations

import json
import sys

import pytest
import torch
from tiny_runs import (
    TASKS,
    TINY,
    assert_same_weights,
    build_project,
    distributed_project,
    run_tiny,
    tiny_encoder,
    torchrun,
    train_losses,
    weights,
)

from mtdnn.train import train


def test_resume_mid_epoch_is_bitwise_identical(tiny_project):
    root, _ = tiny_project
    full = run_tiny(tiny_project, "full")
    assert run_tiny(tiny_project, "interrupted", stop_after=5) is None  # 5 of 8 steps of epoch 0
    assert (root / "interrupted.resume" / "last" / "trainer_state.json").is_file()
    assert not (root / "interrupted").exists()  # no partial output
    resumed = run_tiny(tiny_project, "interrupted")
    assert_same_weights(root / "full", root / "interrupted")
    assert resumed["losses"] == full["losses"]
    assert [h.get("dev") for h in resumed["history"]] == [h.get("dev") for h in full["history"]]
    assert not (root / "interrupted.resume").exists()  # cleaned up after success


def test_same_seed_same_metrics_other_seed_differs(tiny_project):
    root, _ = tiny_project
    a, b, c = (
        run_tiny(tiny_project, "s7a"),
        run_tiny(tiny_project, "s7b"),
        run_tiny(tiny_project, "s8", seed=8),
    )
    assert a["history"] == b["history"] and a["losses"] == b["losses"]
    assert_same_weights(root / "s7a", root / "s7b")
    assert c["losses"] != a["losses"]


def test_best_checkpoint_is_kept_by_holdout_score_never_dev(tiny_project):
    root, _ = tiny_project
    summary = run_tiny(tiny_project, "best", cfg=TINY.with_overrides(epochs=3, holdout_examples=24))
    scores = [h["score"] for h in summary["history"] if "score" in h]
    assert len(scores) == 3 and all("holdout" in h for h in summary["history"])
    assert summary["best_score"] == max(scores)
    # dev metrics are recorded each epoch but are not what the score is computed on
    assert all(h["dev"] != h["holdout"] for h in summary["history"])


def test_without_holdout_the_last_epoch_is_the_model(tiny_project):
    root, _ = tiny_project
    last = run_tiny(tiny_project, "last", cfg=TINY.with_overrides(epochs=2))
    assert last["best_score"] is None and all("score" not in h for h in last["history"])
    # stopped in epoch 1 (16 batches an epoch): epoch 0 was evaluated on dev, nothing was kept
    assert run_tiny(tiny_project, "last-stopped", stop_after=20) is None
    assert (root / "last-stopped.resume" / "last").is_dir()
    assert not (root / "last-stopped.resume" / "best").exists()


def test_compiled_encoder_trains_like_eager(tiny_project, tmp_path, glue_dir):
    """`compile: true` runs the encoder under torch.compile: same checkpoint layout, same losses.

    The encoder has no dropout here, so eager and compiled runs draw no random numbers inside the
    compiled graph and must agree up to the fused kernels' rounding.
    """
    root, _ = tiny_project
    encoder = tiny_encoder(tmp_path / "no-dropout", dropout=0.0)
    build_project(root, glue_dir, encoder, tasks=("rte",))
    cfg = TINY.with_overrides(epochs=1, eval_each_epoch=False)
    runs, graphs = {}, {}
    for name, compiled in (("eager", False), ("compiled", True)):
        torch._dynamo.utils.counters.clear()
        runs[name] = train(
            [TASKS["rte"]],
            str(encoder),
            64,
            cfg.with_overrides(compile=compiled),
            7,
            tmp_path / name,
        )
        graphs[name] = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    assert graphs == {"eager": 0, "compiled": graphs["compiled"]} and graphs["compiled"] > 0
    assert weights(tmp_path / "eager").keys() == weights(tmp_path / "compiled").keys()
    eager, compiled = runs["eager"]["losses"], runs["compiled"]["losses"]
    assert len(eager) == len(compiled) > 0
    assert compiled == pytest.approx(eager, rel=1e-3, abs=1e-4)


@pytest.fixture(scope="module")
def dist_project(tmp_path_factory, glue_dir, derived_dir):
    root = tmp_path_factory.mktemp("dist")
    return root, distributed_project(root, glue_dir, derived_dir)


def test_ddp_two_processes_match_one_process(dist_project):
    """torchrun --nproc-per-node 2 (gloo) against one process with the same global batch, on a
    classification task and a ranking task (whose groups must stay whole on one rank)."""
    root, encoder = dist_project
    one = train_losses(root, encoder, [[sys.executable, "-m", "mtdnn"]], "one")
    two = train_losses(root, encoder, [torchrun("--standalone", "--nproc-per-node", "2")], "two")
    assert len(one) == len(two) == 8
    # Same global batch, gradients averaged by DDP: only float summation order differs.
    assert one == pytest.approx(two, rel=1e-4, abs=1e-5)


def test_real_multitask_smoke_then_finetune_then_metrics(tmp_path, glue_dir, run_cli):
    """Real data, real encoder: MTL on RTE, MRPC, STS-B and CoLA, fine-tune RTE, write a metrics cell."""
    env = {"GLUE_DIR": glue_dir}

    def ok(*args: str) -> None:
        r = run_cli(list(args), tmp_path, env)
        assert r.returncode == 0, r.stderr[-2000:]

    for task in ("rte", "mrpc", "stsb", "cola"):
        ok("prepare", "--task", task)
        ok("tokenize", "--task", task)
    mtl_cfg = json.dumps({"max_train_examples": 200, "epochs": 1, "eval_each_epoch": False})
    ok("train-mtl", "--tasks", "rte,mrpc,stsb,cola", "--seed", "1", "--cfg", mtl_cfg,
       "--out", "models/mtl", "--threads", "2")  # fmt: skip
    ft_cfg = json.dumps({"max_train_examples": 200, "epochs": 1, "eval_each_epoch": True})
    ok("finetune", "--task", "rte", "--init", "models/mtl", "--seed", "1", "--cfg", ft_cfg,
       "--out", "models/rte", "--threads", "2")  # fmt: skip
    ok("evaluate", "--model", "models/rte", "--task", "rte", "--out", "cell.json",
       "--cell", "model=mtdnn", "--cell", "seed=1")  # fmt: skip
    cell = json.loads((tmp_path / "cell.json").read_text())
    assert 0 <= cell["metrics"]["dev"]["accuracy"] <= 100
    prov = cell["provenance"]
    assert prov["encoder"] == "minilm" and prov["seed"] == 1 and prov["wall_seconds"] > 0
    assert set(prov["data_sha256"]["canonical"]["rte"]) == {"train", "dev", "test"}
    summary = json.loads((tmp_path / "models/mtl/train_summary.json").read_text())
    assert len(summary["losses"]) == 4 * 7  # 200 examples per task at batch 32: 7 batches each
