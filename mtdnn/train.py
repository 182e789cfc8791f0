"""The training loop shared by multi-task training, fine-tuning, the baseline and adaptation."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from mtdnn import faults
from mtdnn.batching import TaskData, collate
from mtdnn.checkpoint import (
    WEIGHTS,
    load_trainer_state,
    load_weights,
    save_checkpoint,
    save_weights,
    write_model,
)
from mtdnn.config import TrainConfig
from mtdnn.distributed import Dist
from mtdnn.evaluate import decode, infer, score
from mtdnn.fileio import atomic_dir, recover_dir, write_json
from mtdnn.heads import relevance_labels, task_loss
from mtdnn.optim import linear_schedule, make_optimizer
from mtdnn.precision import autocast, grad_scaler
from mtdnn.sampling import MultiTaskSampler
from mtdnn.tasks import TaskType

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

    @property
    def resume_dir(self) -> Path:
        return self.out.with_name(self.out.name + ".resume")


@dataclass
class Position:
    epoch: int = 0
    step: int = 0  # next step within the epoch
    done: int = 0  # batches processed in total
    best: float | None = None
    history: list = field(default_factory=list)
    losses: list = field(default_factory=list)  # per batch, kept so resumed runs report them all
    pending: list = field(default_factory=list)  # this process's loss tensors, read back lazily


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
        for k, v in collate(data, run.dist.shard(rows)).items()
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


def evaluate_dev(run: Run) -> dict[str, dict[str, float]]:
    faults.checkpoint("evaluate")
    results = {}
    for task, splits in run.dev.items():
        for data in splits:
            outputs = infer(run.model, task, data, run.cfg.eval_batch_size, run.device, run.dtype)
            results[f"{task}/{data.split}"] = score(data, decode(data, outputs))
    run.model.train()
    return results


def dev_score(run: Run, results: dict[str, dict[str, float]]) -> float:
    """Mean over dev splits of the selection metric (each task's primary one by default)."""
    vals = []
    for task, splits in run.dev.items():
        for data in splits:
            metric = (
                data.task.primary_metric
                if run.cfg.best_metric == "primary"
                else run.cfg.best_metric
            )
            vals.append(results[f"{task}/{data.split}"][metric])
    return float(np.mean(vals))


def fit(run: Run, stop_after: int | None = None) -> dict | None:
    """Train to completion (or until ``stop_after`` batches, for tests) and write ``run.out``."""
    engine = run.dist.wrap(run.model)
    sampler = make_sampler(run)
    total = math.ceil(run.cfg.epochs * len(sampler))
    updates = math.ceil(total / run.cfg.grad_accum)
    opt = make_optimizer(run.model, run.cfg, run.device)
    sched = linear_schedule(opt, updates, run.cfg.warmup)
    scaler = grad_scaler(run.device, run.dtype)
    pos = resume(run, opt, sched)
    run.model.train()
    bar = tqdm(
        total=total,
        initial=pos.done,
        disable=not run.dist.is_main,
        dynamic_ncols=True,
        mininterval=2,
    )
    tick, seen = time.perf_counter(), 0
    while pos.done < total:
        for _, step, task, rows in sampler.iter_from(pos.epoch, pos.step):
            loss = step_loss(run, engine, task, rows) / run.cfg.grad_accum
            scaler.scale(loss).backward()
            faults.checkpoint("step")
            pos.pending.append(loss.detach())
            pos.done, pos.step, seen = pos.done + 1, step + 1, seen + len(rows)
            if pos.done % run.cfg.grad_accum == 0 or pos.done == total:
                update(run, opt, sched, scaler)
            if pos.done % LOG_EVERY == 0:
                bar.set_postfix(
                    task=task,
                    loss=f"{loss.item() * run.cfg.grad_accum:.3f}",
                    ex_s=f"{seen / (time.perf_counter() - tick):.0f}",
                )
            bar.update()
            if _should_checkpoint(run, pos, stop_after):
                save_resume(run, opt, sched, pos)
            if stop_after is not None and pos.done >= stop_after:
                return None
            if pos.done >= total:
                break
        else:
            pos.epoch, pos.step = pos.epoch + 1, 0
            end_of_epoch(run, opt, sched, pos)
    bar.close()
    if pos.step != 0 or not pos.history:  # a fractional last epoch still gets its evaluation
        end_of_epoch(run, opt, sched, pos, save=False)
    flush_losses(run, pos)
    return finish(run, pos, time.perf_counter() - tick, seen)


def update(run: Run, opt, sched, scaler) -> None:
    """Clip, step and schedule on an accumulation boundary."""
    scaler.unscale_(opt)
    if run.cfg.clip_norm:
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), run.cfg.clip_norm, foreach=True)
    scaler.step(opt)
    scaler.update()
    sched.step()
    opt.zero_grad(set_to_none=True)


def _should_checkpoint(run: Run, pos: Position, stop_after: int | None) -> bool:
    at_boundary = pos.done % run.cfg.grad_accum == 0
    every = run.cfg.checkpoint_every
    return at_boundary and ((every and pos.done % every == 0) or pos.done == stop_after)


def end_of_epoch(run: Run, opt, sched, pos: Position, save: bool = True) -> None:
    """Evaluate on dev when configured, keep the best weights, and checkpoint for resume."""
    entry = {"epoch": pos.epoch, "batches": pos.done}
    if run.cfg.eval_each_epoch and run.dev and run.dist.is_main:
        results = evaluate_dev(run)
        value = dev_score(run, results)
        entry |= {"dev": results, "score": value}
        if pos.best is None or value > pos.best:
            pos.best = value
            run.resume_dir.mkdir(parents=True, exist_ok=True)
            with atomic_dir(run.resume_dir / "best") as tmp:
                save_weights(run.model, tmp / WEIGHTS)
        log.info(
            "epoch %d dev: %s (selection score %.2f, best %.2f)",
            pos.epoch,
            results,
            value,
            pos.best,
        )
    pos.history.append(entry)
    if save:
        save_resume(run, opt, sched, pos)


def flush_losses(run: Run, pos: Position) -> None:
    """Read the step losses back to the host in one go (no per-step sync), averaged over ranks."""
    pos.losses += run.dist.mean([x.item() * run.cfg.grad_accum for x in pos.pending])
    pos.pending.clear()


def save_resume(run: Run, opt, sched, pos: Position) -> None:
    flush_losses(run, pos)
    if run.dist.is_main:
        trainer = {
            "epoch": pos.epoch,
            "step": pos.step,
            "done": pos.done,
            "best": pos.best,
            "history": pos.history,
            "losses": pos.losses,
        }
        save_checkpoint(run.resume_dir / "last", run.model, run.meta, opt, sched, trainer)
    run.dist.barrier()


def resume(run: Run, opt, sched) -> Position:
    last = run.resume_dir / "last"
    recover_dir(last)
    if not (last / WEIGHTS).is_file():
        return Position()
    run.model.load_state_dict(load_weights(last / WEIGHTS))
    state = load_trainer_state(last, opt, sched)
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


def finish(run: Run, pos: Position, seconds: float, examples: int) -> dict:
    """Write the final model (best by dev when selected) atomically, then drop the resume state."""
    best = run.resume_dir / "best" / WEIGHTS
    if run.cfg.eval_each_epoch and best.is_file():
        run.model.load_state_dict(load_weights(best))
    summary = {
        "history": pos.history,
        "losses": [round(x, 6) for x in pos.losses],
        "best_score": pos.best,
        "train_seconds": round(seconds, 2),
        "train_examples_per_s": round(examples / max(seconds, 1e-9), 2),
    }
    if run.dist.is_main:
        with atomic_dir(run.out) as tmp:
            write_model(tmp, run.model, run.meta)
            run.tokenizer.save_pretrained(str(tmp))
            write_json(tmp / "train_summary.json", summary)
        _remove_tree(run.resume_dir)
    run.dist.barrier()
    return summary


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
