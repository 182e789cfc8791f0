"""Hooks into the training loop, in the manner of HF ``Trainer``'s ``TrainerCallback``.

A benchmark or a test that wants to see inside ``fit`` (when the first batch starts, the lr each
update uses, when the last update ends) passes a callback instead of replacing module globals, so
renaming a loop function cannot silently break what observes it. A callback only observes: it
must not change the model, the optimizer or any random generator, so that a run's bytes never
depend on what watched it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from mtdnn.training.loop import LoopState


class Callback:
    """Override the hooks you need; each gets the loop's state (run, optimizer, position)."""

    def on_step_begin(self, state: LoopState, task: str, rows: np.ndarray) -> None:
        """Before a batch's forward pass: its task and its rows."""

    def on_update_begin(self, state: LoopState) -> None:
        """Before an optimizer update (its lr is ``state.opt.param_groups[0]["lr"]``)."""

    def on_update_end(self, state: LoopState) -> None:
        """After an optimizer update, the scheduler step and zeroing the gradients."""

    def on_epoch_end(self, state: LoopState, entry: dict) -> None:
        """After an epoch's bookkeeping: ``entry`` is its history record (dev metrics, if any)."""

    def on_train_end(self, state: LoopState, summary: dict) -> None:
        """After the model is written: ``summary`` is its train_summary.json."""
