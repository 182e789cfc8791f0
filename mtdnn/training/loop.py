"""The training loop shared by multi-task training, fine-tuning, the baseline and adaptation."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from mtdnn.config import TrainConfig
from mtdnn.fileio import atomic_dir, read_json, recover_dir, sha256_file, sha256_json, write_json
from mtdnn.model.checkpoint import (
    CONFIG,
    STATE,
    WEIGHTS,
    load_trainer_state,
    load_weights,
    save_checkpoint,
    save_weights,
    write_model,
)
from mtdnn.model.heads import relevance_labels, task_loss
from mtdnn.model.inference import decode, infer, score
from mtdnn.runtime import faults
from mtdnn.runtime.batching import TaskData, collate
from mtdnn.runtime.precision import autocast, dtype_name, grad_scaler
from mtdnn.tasks import TaskType
from mtdnn.training.distributed import Dist
from mtdnn.training.optim import linear_schedule, make_optimizer
from mtdnn.training.sampling import MultiTaskSampler
from mtdnn.training.tracking import LOSS_DECIMALS, Curves, LiveCurves

log = logging.getLogger(__name__)
LOG_EVERY = 20  # steps between loss read-backs: each .item() is a host sync on GPU


@dataclass
class Run:
    """Everything one training run needs. ``meta`` becomes the checkpoint's config.json."""

    model: torch.nn.Module
    train: dict[str, TaskData]
    dev: dict[str, list[TaskData]]
    cfg: TrainConfig
    seed: int
    out: Path
    meta: dict
    tokenizer: object
    device: torch.device
    dtype: torch.dtype | None
    dist: Dist = field(default_factory=Dist)
    # Held-out training rows to pick the best epoch on (``holdout_examples``); empty: no selection.
    holdout: dict[str, list[TaskData]] = field(default_factory=dict)
    scaler: torch.amp.GradScaler = field(init=False)
    # The DVCLive curves: rank 0 opens them in `fit`; the other ranks never log.
    curves: Curves = field(default_factory=Curves, init=False, repr=False)

    def __post_init__(self) -> None:
        # fp16 loss scaling follows device and dtype; its state is part of the resume state.
        self.scaler = grad_scaler(self.device, self.dtype)

    @property
    def resume_dir(self) -> Path:
        return self.out.with_name(self.out.name + ".resume")

    @property
    def live_dir(self) -> Path:
        return self.out.with_name(self.out.name + ".dvclive")

    @cached_property
    def settings(self) -> dict[str, str]:
        """Hashes of what decides this run's trajectory, by part: every ``meta`` entry (knobs,
        tasks, seed, encoder, max_len, init, data sha256s), the training rows, and the content of
        the init checkpoint, the autocast dtype and the process count. A resume state saved under
        other settings is never continued."""
        parts = {key: sha256_json(value) for key, value in self.meta.items()}
        parts["rows"] = sha256_json({t: d.uids.tolist() for t, d in self.train.items()})
        # Not knobs, but they change the trajectory too: `precision: auto` resolves per GPU (bf16 on
        # an A100, fp16 with loss scaling on a V100), and the process count decides each rank's
        # shard of a batch and its dropout stream.
        parts["dtype"] = sha256_json(dtype_name(self.dtype))
        parts["nproc"] = sha256_json(self.dist.world)
        init = self.meta.get("init", "base")
        if init != "base":
            parts["init_checkpoint"] = sha256_json(
                [sha256_file(Path(init) / name) for name in (CONFIG, WEIGHTS)]
            )
        return parts


@dataclass
class Position:
    epoch: int = 0
    step: int = 0  # next step within the epoch
    done: int = 0  # batches processed in total
    best: float | None = None
    history: list = field(default_factory=list)
    losses: list = field(default_factory=list)  # per batch, kept so resumed runs report them all
    pending: list = field(default_factory=list)  # this process's loss tensors, read back lazily


class Callback:
    """Hooks into ``fit``, in the manner of HF ``Trainer``'s ``TrainerCallback``: a benchmark or a
    test that wants to see inside the loop passes one instead of replacing module globals, so
    renaming a loop function cannot silently break what observes it. A callback only observes: it
    must not change the model, the optimizer or any random generator, so that a run's bytes never
    depend on what watched it. Override the hooks you need.
    """

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


@dataclass
class LoopState:
    """What ``fit``'s steps share while one run trains: the run, its optimizer and schedule, where
    it stands, and who watches it."""

    run: Run
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    pos: Position
    total: int  # batches the run takes in all
    callbacks: Sequence[Callback] = ()

    def emit(self, hook: str, *args) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self, *args)


def make_sampler(run: Run) -> MultiTaskSampler:
    lengths = {t: d.lengths for t, d in run.train.items()}
    groups = {t: d.groups for t, d in run.train.items() if d.groups is not None}
    return MultiTaskSampler(
        lengths,
        run.cfg.batch_size,
        run.seed,
        run.cfg.sampler,
        run.cfg.temperature,
        run.cfg.group_by_length,
        groups or None,
    )


def step_loss(run: Run, engine, task: str, rows: np.ndarray) -> torch.Tensor:
    """Forward one task-homogeneous batch and return its (unscaled) loss."""
    data = run.train[task]
    batch = {
        k: v.to(run.device, non_blocking=True)
        for k, v in collate(
            data, run.dist.shard(rows, data.groups), multiple=run.cfg.pad_to_multiple_of
        ).items()
    }
    labels, groups = batch.pop("labels"), batch.pop("groups", None)
    if data.task.type is TaskType.RANKING:
        labels = relevance_labels(data.task, labels)
    with autocast(run.device, run.dtype):
        out = engine(task, **batch)
    log_probs = run.model.returns_log_probs(task)
    return task_loss(
        data.task, out.float(), labels, groups, run.cfg.ranking_gamma, log_probs=log_probs
    )


def evaluate_sets(run: Run, sets: dict[str, list[TaskData]]) -> dict[str, dict[str, float]]:
    """Metrics of every (task, split) in ``sets``: dev splits, or the held-out training rows."""
    faults.checkpoint("evaluate")
    results = {}
    for task, splits in sets.items():
        for data in splits:
            outputs = infer(run.model, task, data, run.cfg.eval_batch_size, run.device, run.dtype)
            results[f"{task}/{data.split}"] = score(data, decode(data, outputs))
    run.model.train()
    return results


def selection_score(
    sets: dict[str, list[TaskData]], results: dict[str, dict[str, float]], best_metric: str
) -> float:
    """Mean over the sets of the selection metric (each task's primary one by default).

    A NaN metric (a constant prediction makes Pearson NaN) counts as the worst possible score, so
    one degenerate task can neither win the selection nor freeze it: ``x > nan`` is never true.
    """
    vals = []
    for task, splits in sets.items():
        for data in splits:
            metric = data.task.primary_metric if best_metric == "primary" else best_metric
            vals.append(results[f"{task}/{data.split}"][metric])
    value = float(np.mean(vals))
    return -math.inf if math.isnan(value) else value


def fit(
    run: Run,
    stop_after: int | None = None,
    callbacks: Sequence[Callback] = (),
    progress: bool = True,
) -> dict | None:
    """Train to completion (or until ``stop_after`` batches, for tests) and write ``run.out``.
    ``callbacks`` observe the loop (``Callback``); ``progress`` shows the bar."""
    engine = run.dist.wrap(run.model)
    sampler = make_sampler(run)
    total = math.ceil(scheduled_epochs(run.cfg, len(sampler)) * len(sampler))
    opt = make_optimizer(run.model, run.cfg, run.device)
    sched = linear_schedule(opt, math.ceil(total / run.cfg.grad_accum), run.cfg.warmup)
    state = LoopState(run, opt, sched, resume(run, opt, sched), total, callbacks)
    pos = state.pos
    if run.dist.is_main:
        run.curves = LiveCurves.open(run.live_dir, pos.losses, pos.history)
    run.model.train()
    shown = progress and run.dist.is_main
    bar = tqdm(total=total, initial=pos.done, disable=not shown, dynamic_ncols=True, mininterval=2)
    tick, seen = time.perf_counter(), 0
    while pos.done < total:
        for _, step, task, rows in sampler.iter_from(pos.epoch, pos.step):
            seen += train_step(state, engine, step, task, rows)
            if pos.done % LOG_EVERY == 0:
                # The host syncs here anyway (the bar's loss): the curves follow the run live.
                flush_losses(run, pos)
                loss = pos.losses[-1]
                rate = seen / (time.perf_counter() - tick)
                bar.set_postfix(task=task, loss=f"{loss:.3f}", ex_s=f"{rate:.0f}")
            bar.update()
            if _should_checkpoint(run, pos, stop_after):
                save_resume(state)
            if stop_after is not None and pos.done >= stop_after:
                return None
            if pos.done >= total:
                break
        else:
            pos.epoch, pos.step = pos.epoch + 1, 0
            end_of_epoch(state)
    bar.close()
    if pos.step != 0 or not pos.history:  # a fractional last epoch still gets its evaluation
        pos.epoch += 1  # numbered like the others: epochs begun so far, this one included
        end_of_epoch(state, save=False)
    flush_losses(run, pos)
    summary = finish(run, pos, time.perf_counter() - tick, seen)
    state.emit("on_train_end", summary)
    return summary


def train_step(state: LoopState, engine, step: int, task: str, rows: np.ndarray) -> int:
    """One batch: forward, backward, and the update on an accumulation boundary. Its rows."""
    run, pos = state.run, state.pos
    state.emit("on_step_begin", task, rows)
    loss = step_loss(run, engine, task, rows) / run.cfg.grad_accum
    run.scaler.scale(loss).backward()
    faults.checkpoint("step")
    pos.pending.append(loss.detach())
    pos.done, pos.step = pos.done + 1, step + 1
    if pos.done % run.cfg.grad_accum == 0 or pos.done == state.total:
        update(state)
    return len(rows)


def scheduled_epochs(cfg: TrainConfig, batches_per_epoch: int) -> float:
    """``epochs``, raised to reach ``min_steps`` optimizer updates when that is more."""
    if not cfg.min_steps or batches_per_epoch == 0:
        return cfg.epochs
    return max(cfg.epochs, cfg.min_steps * cfg.grad_accum / batches_per_epoch)


def update(state: LoopState) -> None:
    """Clip, step and schedule on an accumulation boundary."""
    run, opt, scaler = state.run, state.opt, state.run.scaler
    state.emit("on_update_begin")
    scaler.unscale_(opt)
    if run.cfg.clip_norm:
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), run.cfg.clip_norm, foreach=True)
    scaler.step(opt)
    scaler.update()
    state.sched.step()
    opt.zero_grad(set_to_none=True)
    state.emit("on_update_end")


def _should_checkpoint(run: Run, pos: Position, stop_after: int | None) -> bool:
    at_boundary = pos.done % run.cfg.grad_accum == 0
    every = run.cfg.checkpoint_every
    return at_boundary and ((every and pos.done % every == 0) or pos.done == stop_after)


def end_of_epoch(state: LoopState, save: bool = True) -> None:
    """Record dev metrics when configured, select on the held-out rows when there are any, and
    checkpoint for resume. Dev metrics never pick the model: dev is what gets reported."""
    run, pos = state.run, state.pos
    entry = {"epoch": pos.epoch, "batches": pos.done}
    if run.cfg.eval_each_epoch and run.dev and run.dist.is_main:
        entry["dev"] = evaluate_sets(run, run.dev)
        log.info("epoch %d dev: %s", pos.epoch, entry["dev"])
    if run.holdout and run.dist.is_main:
        held = evaluate_sets(run, run.holdout)
        entry |= {"holdout": held, "score": selection_score(run.holdout, held, run.cfg.best_metric)}
        keep_if_best(run, pos, entry["score"])
    pos.history.append(entry)
    # The losses up to this epoch's end are logged before its metrics, in every process's run.
    flush_losses(run, pos)
    run.curves.epoch(entry)
    state.emit("on_epoch_end", entry)
    if save:
        save_resume(state)


def keep_if_best(run: Run, pos: Position, value: float) -> None:
    """Save the weights when ``value`` beats the best so far (the first epoch always does)."""
    if pos.best is not None and not value > pos.best:
        return
    pos.best = value
    run.resume_dir.mkdir(parents=True, exist_ok=True)
    with atomic_dir(run.resume_dir / "best") as tmp:
        save_weights(run.model, tmp / WEIGHTS)
    log.info("epoch %d: best held-out score so far (%.2f)", pos.epoch, value)


def flush_losses(run: Run, pos: Position) -> None:
    """Read the step losses back to the host in one go (no per-step sync), averaged over ranks.

    The average is taken on the run's device (NCCL reduces GPU tensors only), in float64.
    """
    if pos.pending:
        steps = torch.stack(pos.pending).double() * run.cfg.grad_accum
        pos.losses += run.dist.mean(steps).tolist()
    pos.pending.clear()
    run.curves.losses(pos.losses)


def save_resume(state: LoopState) -> None:
    run, pos = state.run, state.pos
    flush_losses(run, pos)
    if run.dist.is_main:
        trainer = {
            "epoch": pos.epoch,
            "step": pos.step,
            "done": pos.done,
            "best": pos.best,
            "history": pos.history,
            "losses": pos.losses,
            "scaler": run.scaler.state_dict(),  # {} unless fp16: its scale must resume too
            "settings": run.settings,
        }
        last = run.resume_dir / "last"
        # This process's generators (rank 0's); the other ranks are reseeded on resume.
        save_checkpoint(
            last,
            run.model,
            run.meta,
            state.opt,
            state.sched,
            trainer,
            device=run.device,
            rank=run.dist.rank,
        )
    run.dist.barrier()


def resume(run: Run, opt, sched) -> Position:
    """Continue from the last checkpoint when it was saved by a run with the same settings."""
    last = run.resume_dir / "last"
    if run.dist.is_main:  # filesystem work on rank 0 only; the other ranks wait, then read
        _keep_or_clear(run, last)
    run.dist.barrier()
    if not (last / WEIGHTS).is_file():
        return Position()
    run.model.load_state_dict(load_weights(last / WEIGHTS))
    state = load_trainer_state(last, opt, sched, device=run.device, rank=run.dist.rank)
    # That restored rank 0's RNG on every rank: give the other ranks their own dropout stream again.
    run.dist.seed_dropout(run.seed + state["done"])
    if state.get("scaler"):
        run.scaler.load_state_dict(state["scaler"])
    log.info(
        "resuming from %s at batch %d (epoch %d, step %d)",
        last,
        state["done"],
        state["epoch"],
        state["step"],
    )
    return Position(
        state["epoch"],
        state["step"],
        state["done"],
        state["best"],
        state["history"],
        state["losses"],
    )


def _keep_or_clear(run: Run, last: Path) -> None:
    """Recover a torn swap; then a fresh start clears the resume directory, so that nothing of a
    run with other settings (its best weights included) can leak into this one."""
    recover_dir(last)
    changed = _changed_settings(run, last)
    if changed:
        log.warning("%s: saved by a run with other settings (%s); starting fresh", last, changed)
    if changed or not (last / WEIGHTS).is_file():
        _remove_tree(run.resume_dir)


def _changed_settings(run: Run, last: Path) -> str | None:
    """Which parts of ``run.settings`` differ from those in ``last``'s trainer state, in words."""
    if not (last / STATE).is_file():
        return None  # weights without trainer state: load_trainer_state says what is missing
    saved = (read_json(last / STATE).get("trainer") or {}).get("settings")
    if not saved:
        return "none recorded"
    keys = sorted(set(saved) | set(run.settings))
    changed = [k for k in keys if saved.get(k) != run.settings.get(k)]
    return f"changed: {', '.join(changed)}" if changed else None


def finish(run: Run, pos: Position, seconds: float, examples: int) -> dict:
    """Write the final model (best on held-out rows when selected) atomically, then drop the
    resume state."""
    best = run.resume_dir / "best" / WEIGHTS
    # Only rank 0 writes the model, and it deletes the resume directory right after: other ranks
    # must not read from it.
    if run.dist.is_main and run.holdout and best.is_file():
        run.model.load_state_dict(load_weights(best))
    summary = {
        "history": pos.history,
        "losses": [round(x, LOSS_DECIMALS) for x in pos.losses],
        "best_score": pos.best,
        "train_seconds": round(seconds, 2),
        "train_examples_per_s": round(examples / max(seconds, 1e-9), 2),
    }
    if run.device.type == "cuda":  # what benchmarks/gpu_smoke.sh reports per job
        summary["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated(run.device) / 2**20)
    if run.dist.is_main:
        with atomic_dir(run.out) as tmp:
            write_model(tmp, run.model, run.meta)
            run.tokenizer.save_pretrained(str(tmp))
            write_json(tmp / "train_summary.json", summary)
            run.curves.save(tmp / "dvclive")  # the curves go with the model they describe
        _remove_tree(run.resume_dir)
    run.dist.barrier()
    return summary


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
