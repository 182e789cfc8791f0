"""Resume continues a run only under the settings it was saved with, and carries the fp16 loss scale
and per-rank dropout streams."""

from __future__ import annotations

import json
import logging

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
from mtdnn.training.loop import resume
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


def test_resumed_ranks_draw_their_own_dropout_again(tiny_project, monkeypatch):
    """The checkpoint holds rank 0's RNG state; after restoring it, rank 1 must not replay it."""
    root, encoder = tiny_project
    assert run_tiny(tiny_project, "ranks", stop_after=4) is None
    saved = load_file(str(root / "ranks.resume" / "last" / "optimizer.safetensors"))["rng.torch"]
    monkeypatch.setattr(torch.distributed, "barrier", lambda: None)
    states = {}
    for rank in (0, 1):
        tasks = [TASKS["rte"], TASKS["stsb"]]
        run = build_run(tasks, str(encoder), 64, TINY, 7, root / "ranks")
        run.dist = Dist(rank, 2)
        opt = make_optimizer(run.model, run.cfg, run.device)
        assert resume(run, opt, linear_schedule(opt, 16, run.cfg.warmup)).done == 4
        states[rank] = torch.get_rng_state()
    assert torch.equal(states[0], saved)  # rank 0 continues exactly
    assert not torch.equal(states[1], saved)
