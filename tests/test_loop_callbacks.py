"""Callbacks see inside `fit` (every batch, every update with its lr, every epoch, the end) and
change nothing: a watched run writes the same bytes as an unwatched one."""

from __future__ import annotations

import math

import pytest
from tiny_runs import TASKS, TINY, inside_tiny_project

from mtdnn.train import build_run
from mtdnn.training.loop import Callback, fit


@pytest.fixture(scope="module")
def project(tmp_path_factory, glue_dir):
    with inside_tiny_project(tmp_path_factory.mktemp("hooks"), glue_dir, tasks=("rte",)) as made:
        yield made


class Recorder(Callback):
    def __init__(self) -> None:
        self.events: list[tuple] = []
        self.lrs: list[float] = []

    def on_step_begin(self, state, task, rows) -> None:
        self.events.append(("step", task, len(rows), state.pos.done))

    def on_update_begin(self, state) -> None:
        self.lrs.append(state.opt.param_groups[0]["lr"])
        self.events.append(("update", state.pos.done))

    def on_update_end(self, state) -> None:
        self.events.append(("updated",))

    def on_epoch_end(self, state, entry) -> None:
        self.events.append(("epoch", entry["epoch"], entry["batches"]))

    def on_train_end(self, state, summary) -> None:
        self.events.append(("end", summary))


def kinds(events: list[tuple], kind: str) -> list[tuple]:
    return [e for e in events if e[0] == kind]


def test_callbacks_see_every_step_update_and_epoch(project):
    root, encoder = project
    cfg = TINY.with_overrides(grad_accum=2, eval_each_epoch=True)
    run = build_run([TASKS["rte"]], str(encoder), 64, cfg, 5, root / "watched")
    seen = Recorder()
    summary = fit(run, callbacks=[seen], progress=False)
    steps = kinds(seen.events, "step")
    assert len(steps) == len(summary["losses"]) == 2 * math.ceil(64 / 8)  # 2 epochs of 8 batches
    assert [s[3] for s in steps] == list(range(len(steps)))  # before each batch, in order
    assert sum(s[2] for s in steps) == 2 * 64 and {s[1] for s in steps} == {"rte"}
    updates = kinds(seen.events, "update")
    assert [u[1] for u in updates] == list(range(2, len(steps) + 1, 2))  # every 2nd batch
    assert len(kinds(seen.events, "updated")) == len(updates)
    # The linear schedule as the updates used it: warm-up to the peak lr, then down.
    peak = seen.lrs.index(max(seen.lrs))
    assert seen.lrs[: peak + 1] == sorted(seen.lrs[: peak + 1]) and max(seen.lrs) == cfg.lr
    assert seen.lrs[peak:] == sorted(seen.lrs[peak:], reverse=True)
    epochs = kinds(seen.events, "epoch")
    assert [(e[1], e[2]) for e in epochs] == [(1, 8), (2, 16)]
    assert seen.events[-1] == ("end", summary)
    assert [h["epoch"] for h in summary["history"]] == [1, 2] and "dev" in summary["history"][0]


def test_watching_a_run_changes_no_byte(project):
    root, encoder = project
    outs = []
    for name, callbacks in (("plain", []), ("watched", [Recorder(), Recorder()])):
        run = build_run([TASKS["rte"]], str(encoder), 64, TINY, 9, root / f"bytes-{name}")
        fit(run, callbacks=callbacks, progress=name == "plain")
        outs.append((root / f"bytes-{name}" / "model.safetensors").read_bytes())
    assert outs[0] == outs[1]
