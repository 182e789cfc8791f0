"""`mtdnn train-mtl` and `mtdnn finetune`: assemble a training run from tasks, an init (plain
encoder or checkpoint) and a config, then run the loop (``mtdnn.training.loop``)."""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from mtdnn import paths
from mtdnn.config import TrainConfig
from mtdnn.errors import MtdnnError
from mtdnn.fileio import read_json
from mtdnn.model.build import check_encoder, from_pretrained, init_from_checkpoint, model_options
from mtdnn.model.checkpoint import read_config
from mtdnn.model.encoders import resolve_encoder, resolve_pooling
from mtdnn.model.network import MTDNN
from mtdnn.runtime.batching import TaskData, cap_rows, holdout_rows, load_task_data, require_labels
from mtdnn.runtime.precision import dtype_name, pick_device, resolve_dtype
from mtdnn.tasks import TaskSpec, TaskType
from mtdnn.tokenize import load_tokenizer
from mtdnn.training.distributed import Dist
from mtdnn.training.loop import Run, fit

log = logging.getLogger(__name__)


def train_cap(task: str, cfg: TrainConfig) -> int | None:
    """Training rows of ``task`` this run uses: the equal-exposure baseline takes the multi-task
    rows; multi-task training may cap tasks differently (``mtl.per_task``)."""
    if cfg.exposure is not None:
        return cfg.exposure["max_train_examples"]
    return (cfg.task_caps or {}).get(task, cfg.max_train_examples)


def load_train(
    task: TaskSpec, tok_dir: Path, cfg: TrainConfig, rows: np.ndarray | None = None
) -> tuple[TaskData, TaskData | None]:
    """(training rows, held-out rows for best-epoch selection or None)."""
    if task.train_split is None:
        raise MtdnnError(f"task {task.name} has no training split")
    data = load_task_data(task, tok_dir, task.train_split)
    require_labels(data, f"{tok_dir}/{task.train_split}.arrow")
    held = cfg.holdout_examples or 0
    if rows is None:
        rows = cap_rows(len(data), train_cap(task.name, cfg), cfg.data_seed, task.name, held)
    holdout = data.subset(holdout_rows(len(data), held, cfg.data_seed, task.name)) if held else None
    return data.subset(rows), holdout


def exposure_epochs(cfg: TrainConfig, n_rows: int, n_available: int) -> float:
    """Epochs that give the baseline, on its ``n_rows`` (the multi-task rows), as many example
    passes as MT-DNN gets: multi-task epochs over those rows plus fine-tuning epochs over the
    fine-tuning rows (a prefix of them)."""
    n_ft = min(n_available, cfg.max_train_examples or n_available)
    return cfg.exposure["epochs"] + cfg.epochs * n_ft / n_rows


def calibrate_regression_heads(model, train: dict[str, TaskData]) -> None:
    """A fresh regression head starts at the mean training label (STS-B's 2.7, not 0): otherwise
    its first hundred updates only learn the offset, and a short schedule ends uncalibrated."""
    for name in sorted(model.fresh_heads & set(train)):
        data = train[name]
        if data.task.type is TaskType.REGRESSION:
            with torch.no_grad():
                model.heads[name].out.bias.fill_(float(np.mean(data.labels)))


def load_dev(task: TaskSpec, tok_dir: Path, cfg: TrainConfig) -> list[TaskData]:
    out = []
    for split in task.dev_splits:
        if (tok_dir / f"{split}.arrow").is_file():
            data = load_task_data(task, tok_dir, split)
            out.append(
                data.subset(cap_rows(len(data), cfg.max_eval_examples, cfg.data_seed, task.name))
            )
    return out


def build_run(
    tasks: list[TaskSpec],
    encoder: str,
    max_len: int,
    cfg: TrainConfig,
    seed: int,
    out: Path,
    init: Path | None = None,
    *,
    train_rows: dict[str, np.ndarray] | None = None,
    data: dict[str, Path] | None = None,
) -> Run:
    """``init`` None: the plain pre-trained encoder (the baseline); else an MT-DNN checkpoint.
    ``data``: each task's tokenized directory (a job spec names them; else the usual place)."""
    if init is not None:
        check_encoder(init, encoder)  # before any data is read: fail fast on a mismatched start
    torch.manual_seed(seed)  # head initialisation and dropout stream
    device = pick_device()
    dist = Dist.from_env(device)
    enc_path = resolve_encoder(encoder)
    data = data or {}
    tok_dirs = {
        t.name: data.get(t.name) or paths.tokenized_dir(encoder, max_len, t.name) for t in tasks
    }
    loaded = {
        t.name: load_train(t, tok_dirs[t.name], cfg, (train_rows or {}).get(t.name)) for t in tasks
    }
    train = {t: rows for t, (rows, _) in loaded.items()}
    holdout = {t: [held] for t, (_, held) in loaded.items() if held is not None}
    cfg = _with_exposure(cfg, tasks, tok_dirs, train)
    dev = {t.name: load_dev(t, tok_dirs[t.name], cfg) for t in tasks}
    opts = model_options(tasks, cfg, _pooling(cfg, enc_path, init))
    if init is None:
        model = from_pretrained(enc_path, tasks, opts)
    else:
        model = init_from_checkpoint(init, tasks, opts, encoder, cfg.keep_head)
    calibrate_regression_heads(model, train)
    meta = {
        "encoder": encoder,
        "encoder_config": model.encoder.config.to_dict(),
        "tasks": [t.name for t in tasks],
        "model_options": opts,
        "train_config": asdict(cfg),
        "seed": seed,
        "max_len": max_len,
        "init": str(init) if init else "base",
        "data": _data_fingerprints(tok_dirs),
    }
    tokenizer = load_tokenizer(str(init) if init else enc_path)
    model.to(device)
    dist.seed_dropout(seed)  # all ranks built the same heads; dropout now differs per rank
    _apply_encoder_options(model, cfg)
    dtype = resolve_dtype(cfg.precision, device)
    return Run(model, train, dev, cfg, seed, out, meta, tokenizer, device, dtype, dist, holdout)


def _data_fingerprints(tok_dirs: dict[str, Path]) -> dict[str, str]:
    """Each task's canonical data checksum, as its tokenization recorded it."""
    return {t: read_json(d / "manifest.json")["canonical"] for t, d in tok_dirs.items()}


def _apply_encoder_options(model: MTDNN, cfg: TrainConfig) -> None:
    if cfg.gradient_checkpointing:
        # Recompute activations in backward: less memory (bert-large at 512 on 24 GB) for ~30 %
        # more compute. Non-reentrant, as DDP with find_unused_parameters requires.
        model.encoder.activation_checkpointing_enable({"use_reentrant": False})
    if cfg.compile:
        # In place (nn.Module.compile), so parameter names and checkpoints stay those of eager mode.
        # dynamic=True: padded lengths vary per batch, and a recompile per length would cost more.
        model.encoder.compile(dynamic=True)


def _pooling(cfg: TrainConfig, enc_path: str, init: Path | None) -> str:
    """The readout: a fine-tuning run keeps the one its multi-task checkpoint was trained with."""
    if init is not None and cfg.pooling == "auto":
        return read_config(init)["model_options"].get("pooling", "cls")
    return resolve_pooling(cfg.pooling, enc_path)


def _with_exposure(
    cfg: TrainConfig, tasks: list[TaskSpec], tok_dirs: dict[str, Path], train: dict
) -> TrainConfig:
    """Resolve the equal-exposure schedule (single-task runs only) into plain epochs."""
    if cfg.exposure is None:
        return cfg
    if len(tasks) != 1:
        raise MtdnnError("exposure: an equal-exposure schedule applies to single-task runs only")
    task = tasks[0]
    total = read_json(tok_dirs[task.name] / "manifest.json")["splits"][task.train_split]["rows"]
    available = total - (cfg.holdout_examples or 0)
    epochs = exposure_epochs(cfg, len(train[task.name]), available)
    log.info("%s: equal-exposure baseline, %.3g epochs over %d rows", task.name, epochs, total)
    return cfg.with_overrides(epochs=epochs)


def train(
    tasks: list[TaskSpec],
    encoder: str,
    max_len: int,
    cfg: TrainConfig,
    seed: int,
    out: Path,
    init: Path | None = None,
    *,
    train_rows: dict[str, np.ndarray] | None = None,
    stop_after: int | None = None,
    data: dict[str, Path] | None = None,
) -> dict | None:
    """:func:`build_run` then ``fit``; the summary, or None when ``stop_after`` steps interrupted
    the run (tests). A distributed run ends its process group here, after the last barrier."""
    run = build_run(tasks, encoder, max_len, cfg, seed, out, init, train_rows=train_rows, data=data)
    sizes = {t: len(d) for t, d in run.train.items()}
    log.info(
        "training %s on %s (device %s, %s, rank %d of %d)",
        list(sizes),
        sizes,
        run.device,
        dtype_name(run.dtype),
        run.dist.rank,
        run.dist.world,
    )
    summary = fit(run, stop_after)
    # Not in a `finally`: after an error the other ranks may be stuck in a collective that ending
    # the group could block on; the process exits instead, and torchrun stops the rest.
    run.dist.close()
    return summary
