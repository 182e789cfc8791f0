"""Assemble a training run from tasks, an init (plain encoder or checkpoint) and a config."""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mtdnn import paths
from mtdnn.batching import TaskData, cap_rows, load_task_data, require_labels
from mtdnn.config import TrainConfig
from mtdnn.distributed import Dist
from mtdnn.encoders import resolve_encoder
from mtdnn.errors import MtdnnError
from mtdnn.fileio import read_json
from mtdnn.modelio import check_encoder, from_pretrained, init_from_checkpoint, model_options
from mtdnn.precision import pick_device, resolve_dtype
from mtdnn.tasks import TaskSpec
from mtdnn.tokenization import load_tokenizer
from mtdnn.train import Run, fit

log = logging.getLogger(__name__)


def load_train(
    task: TaskSpec, tok_dir: Path, cfg: TrainConfig, rows: np.ndarray | None = None
) -> TaskData:
    if task.train_split is None:
        raise MtdnnError(f"task {task.name} has no training split")
    data = load_task_data(task, tok_dir, task.train_split)
    require_labels(data, f"{tok_dir}/{task.train_split}.arrow")
    if rows is None:
        rows = cap_rows(len(data), cfg.max_train_examples, cfg.data_seed, task.name)
    return data.subset(rows)


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
    train_rows: dict[str, np.ndarray] | None = None,
) -> Run:
    """``init`` None: the plain pre-trained encoder (the baseline); else an MT-DNN checkpoint."""
    if init is not None:
        check_encoder(init, encoder)  # before any data is read: fail fast on a mismatched start
    torch.manual_seed(seed)  # head initialisation and dropout stream
    device = pick_device()
    enc_path = resolve_encoder(encoder)
    tok_dirs = {t.name: paths.tokenized_dir(encoder, max_len, t.name) for t in tasks}
    train = {
        t.name: load_train(t, tok_dirs[t.name], cfg, (train_rows or {}).get(t.name)) for t in tasks
    }
    dev = {t.name: load_dev(t, tok_dirs[t.name], cfg) for t in tasks}
    opts = model_options(tasks, cfg)
    if init is None:
        model = from_pretrained(enc_path, tasks, opts)
    else:
        model = init_from_checkpoint(init, tasks, opts, encoder, cfg.keep_head)
    meta = {
        "encoder": encoder,
        "encoder_config": model.encoder.config.to_dict(),
        "tasks": [t.name for t in tasks],
        "model_options": opts,
        "train_config": asdict(cfg),
        "seed": seed,
        "max_len": max_len,
        "init": str(init) if init else "base",
        "data": {t: read_json(d / "manifest.json")["canonical"] for t, d in tok_dirs.items()},
    }
    tokenizer = load_tokenizer(str(init) if init else enc_path)
    model.to(device)
    if cfg.compile:
        # In place (nn.Module.compile), so parameter names and checkpoints stay those of eager mode.
        # dynamic=True: padded lengths vary per batch, and a recompile per length would cost more.
        model.encoder.compile(dynamic=True)
    return Run(
        model,
        train,
        dev,
        cfg,
        seed,
        out,
        meta,
        tokenizer,
        device,
        resolve_dtype(cfg.precision, device),
        Dist.from_env(device),
    )


def train(*args: Any, stop_after: int | None = None, **kwargs: Any) -> dict | None:
    """``build_run(*args, **kwargs)`` then ``fit``; ``stop_after`` interrupts (tests)."""
    run = build_run(*args, **kwargs)
    sizes = {t: len(d) for t, d in run.train.items()}
    log.info(
        "training %s on %s (device %s, %s)", list(sizes), sizes, run.device, run.dtype or "fp32"
    )
    return fit(run, stop_after)
