"""`mtdnn adapt`: one domain-adaptation cell: subsample the target's training pool, fine-tune, evaluate."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from mtdnn.config import TrainConfig
from mtdnn.errors import MtdnnError
from mtdnn.evaluate import evaluate_cell
from mtdnn.fileio import atomic_path
from mtdnn.jobspec import JobSpec
from mtdnn.runtime.batching import load_task_data
from mtdnn.subsample import parse_size, subsample
from mtdnn.tasks import TaskSpec
from mtdnn.train import train


def draw_rows(task: TaskSpec, labels: np.ndarray, size_label: str, seed: int) -> np.ndarray:
    """Rows of the pool for this (dataset, size, seed); labels may be ids or label strings."""
    return subsample(class_ids(task, labels), parse_size(size_label), task.name, seed)


def write_subsample(task: TaskSpec, canonical: Path, size_label: str, seed: int, out: Path) -> None:
    """The exact training rows an adaptation cell of (size, seed) draws, as a TSV of uids and
    labels (`mtdnn subsample`)."""
    frame = pd.read_parquet(canonical / f"{task.train_split}.parquet")
    rows = draw_rows(task, frame["label"].to_numpy(), size_label, seed)
    with atomic_path(out) as tmp:
        frame.iloc[rows][["uid", "label"]].to_csv(tmp, sep="\t", index=False)


def class_ids(task: TaskSpec, labels: np.ndarray) -> np.ndarray:
    """Stratification classes in the task's label order, whether ``labels`` are the tokenized ids
    or the canonical strings, so that `mtdnn subsample` and an adaptation cell draw the same rows.
    A row without a label is refused: it would otherwise count as a class of its own."""
    labels = np.asarray(labels)
    if labels.dtype.kind in "iu":
        ids = labels.astype(np.int64)  # tokenized: -1 marks a missing label
    elif task.labels:
        index = {name: i for i, name in enumerate(task.labels)}
        ids = np.array([index.get(v, -1) for v in labels], dtype=np.int64)
    else:  # regression: each distinct score is a stratum, as before
        values = labels.astype(np.float64)
        ids = np.where(np.isnan(values), -1, np.unique(labels.astype(str), return_inverse=True)[1])
    missing = int((ids < 0).sum())
    if missing:
        raise MtdnnError(
            f"task {task.name}: {missing} of {len(ids)} training rows have no label; "
            f"rerun `mtdnn prepare --task {task.name}`, which drops rows without one"
        )
    return ids


def adapt_cell(
    spec: JobSpec, task: TaskSpec, cfg: TrainConfig, registry: dict[str, TaskSpec]
) -> dict:
    """Draw the spec's subsample of the target's training pool, fine-tune on it (into a temporary
    model unless ``spec.out`` names one to keep), and write the spec's cell with the draw's size."""
    tok_dir = Path(spec.data[task.name])
    pool = load_task_data(task, tok_dir, task.train_split)
    rows = draw_rows(task, pool.labels, spec.size, spec.seed)
    cfg = cfg.with_overrides(max_train_examples=None, eval_each_epoch=False)  # the draw is the data
    out = Path(spec.cells[task.name])
    work = Path(tempfile.mkdtemp(prefix=".adapt-", dir=out.parent if out.parent.exists() else None))
    try:
        model_dir = Path(spec.out) if spec.out else work / "model"
        init = Path(spec.init_dir) if spec.init_dir else None
        train(
            [task],
            spec.encoder,
            spec.max_len,
            cfg,
            spec.seed,
            model_dir,
            init,
            train_rows={task.name: rows},
            data={task.name: tok_dir},
        )
        cell = spec.cell | {"n": len(rows)}
        return evaluate_cell(
            model_dir, task, out, spec.eval_splits, None, cell, registry=registry, tok_dir=tok_dir
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
