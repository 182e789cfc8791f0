"""Resume continues a run only under the settings it was saved with (the process count and the
resolved autocast dtype included), and carries the fp16 loss scale and per-rank dropout streams."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from safetensors.torch import load_file
from tiny_runs import (
    TASKS,
    TINY,
    assert_same_weights,
    run_tiny,
)

from mtdnn.train import build_run
from mtdnn.training.distributed import Dist
from mtdnn.training.loop import fit, resume
from mtdnn.training.optim import linear_schedule, make_optimizer


def settings(tiny_project, seed: int = 7, cfg=TINY) -> dict[str, str]:
    root, encoder = tiny_project
    tasks = [TASKS["rte"], TASKS["stsb"]]
    return build_run(tasks, str(encoder), 64, cfg, seed, root / "unused").settings


def changed(a: dict, b: dict) -> list[str]:
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


def test_settings_hash_names_what_changed(tiny_project):
    base = settings(tiny_project)
    assert changed(base, settings(tiny_project)) == []  # a rebuilt run is the same run
    assert changed(base, settings(tiny_project, seed=8)) == ["seed"]
    assert changed(base, settings(tiny_project, cfg=TINY.with_overrides(lr=3e-4))) == [
        "train_config"
    ]
    fewer = settings(tiny_project, cfg=TINY.with_overrides(max_train_examples=40))
    assert changed(base, fewer) == ["rows", "train_config"]
    assert {"dtype", "nproc"} <= base.keys()
    run = tiny_run(tiny_project, "unused", 0, 2)
    assert changed(base, run.settings) == ["nproc"]


def test_settings_name_the_resolved_dtype(tiny_project, monkeypatch):
    base = settings(tiny_project)
    monkeypatch.setattr("mtdnn.train.resolve_dtype", lambda precision, device: torch.bfloat16)
    assert changed(base, settings(tiny_project)) == ["dtype"]


def notices(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "starting fresh" in r.getMessage()]


def test_resume_continues_same_settings_and_refuses_others(tiny_project, caplog):
    root, _ = tiny_project
    caplog.set_level(logging.INFO, logger="mtdnn.training.loop")
    assert run_tiny(tiny_project, "knobs", stop_after=5) is None
    assert run_tiny(tiny_project, "knobs", stop_after=6) is None  # same settings: continues
    assert "resuming from" in caplog.text and not notices(caplog)
    caplog.clear()
    other = TINY.with_overrides(lr=3e-4)
    rerun = run_tiny(tiny_project, "knobs", cfg=other)
    assert len(notices(caplog)) == 1 and "changed: train_config" in notices(caplog)[0]
    assert "resuming from" not in caplog.text
    clean = run_tiny(tiny_project, "knobs-clean", cfg=other)
    assert_same_weights(root / "knobs-clean", root / "knobs")
    assert rerun["losses"] == clean["losses"] and rerun["history"] == clean["history"]


def test_fp16_loss_scale_is_saved_and_resumed(tiny_project, monkeypatch):
    """A CPU stand-in for fp16 on CUDA: an enabled GradScaler whose scale doubles every step."""
    root, _ = tiny_project
    monkeypatch.setattr(
        "mtdnn.training.loop.grad_scaler",
        lambda device, dtype: torch.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=1),
    )
    state = root / "scaled.resume" / "last" / "trainer_state.json"
    assert run_tiny(tiny_project, "scaled", stop_after=4) is None
    assert json.loads(state.read_text())["trainer"]["scaler"]["scale"] == 2.0**14
    assert run_tiny(tiny_project, "scaled", stop_after=6) is None  # resumed at 4: 2 more doublings
    assert json.loads(state.read_text())["trainer"]["scaler"]["scale"] == 2.0**16


@pytest.fixture
def two_ranks(monkeypatch):
    """Rank 0 or 1 of two without a process group: collectives do nothing, DDP is the model."""
    monkeypatch.setattr(torch.distributed, "barrier", lambda: None)
    monkeypatch.setattr(torch.distributed, "all_reduce", lambda tensor: None)
    monkeypatch.setattr(torch.nn.parallel, "DistributedDataParallel", lambda model, **kw: model)


def tiny_run(tiny_project, name: str, rank: int = 0, world: int = 1):
    """The tiny two-task run writing ``name``, as rank ``rank`` of ``world`` processes."""
    root, encoder = tiny_project
    run = build_run([TASKS["rte"], TASKS["stsb"]], str(encoder), 64, TINY, 7, root / name)
    run.dist = Dist(rank, world)
    return run


def resumed(run) -> int:
    """Batches done at the start of ``run``: where its resume state let it continue, or 0."""
    opt = make_optimizer(run.model, run.cfg, run.device)
    return resume(run, opt, linear_schedule(opt, 16, run.cfg.warmup)).done


def test_resumed_ranks_draw_their_own_dropout_again(tiny_project, two_ranks):
    """The checkpoint holds rank 0's RNG state; after restoring it, rank 1 must not replay it."""
    root, _ = tiny_project
    assert fit(tiny_run(tiny_project, "ranks", 0, 2), stop_after=4) is None
    saved = load_file(str(root / "ranks.resume" / "last" / "optimizer.safetensors"))["rng.torch"]
    states = {}
    for rank in (0, 1):
        assert resumed(tiny_run(tiny_project, "ranks", rank, 2)) == 4
        states[rank] = torch.get_rng_state()
    assert torch.equal(states[0], saved)  # rank 0 continues exactly
    assert not torch.equal(states[1], saved)


def test_a_resume_with_another_process_count_starts_fresh(tiny_project, two_ranks, caplog):
    root, _ = tiny_project
    assert fit(tiny_run(tiny_project, "nproc", 0, 2), stop_after=4) is None
    assert resumed(tiny_run(tiny_project, "nproc")) == 0  # one process now
    assert notices(caplog) and "changed: nproc" in notices(caplog)[0]
    assert not (root / "nproc.resume").exists()


def test_a_resume_with_another_autocast_dtype_starts_fresh(tiny_project, monkeypatch, caplog):
    """`precision: auto` is bf16 on one GPU and fp16 on another: the same knobs, another run."""
    root, _ = tiny_project
    assert run_tiny(tiny_project, "dtype", stop_after=4) is None  # fp32
    monkeypatch.setattr("mtdnn.train.resolve_dtype", lambda precision, device: torch.bfloat16)
    assert resumed(tiny_run(tiny_project, "dtype")) == 0
    assert notices(caplog) and "changed: dtype" in notices(caplog)[0]
    assert not (root / "dtype.resume").exists()


def test_a_checkpoint_from_before_dtype_and_nproc_were_recorded_starts_fresh(tiny_project, caplog):
    """Such a checkpoint also holds the legacy per-GPU generators; it is never continued."""
    root, _ = tiny_project
    assert run_tiny(tiny_project, "old", stop_after=4) is None
    state = root / "old.resume" / "last" / "trainer_state.json"
    doc = json.loads(state.read_text())
    for key in ("dtype", "nproc"):
        del doc["trainer"]["settings"][key]
    state.write_text(json.dumps(doc))
    assert resumed(tiny_run(tiny_project, "old")) == 0
    assert notices(caplog) and "changed: dtype, nproc" in notices(caplog)[0]
