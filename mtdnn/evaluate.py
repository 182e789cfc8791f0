"""`mtdnn evaluate`: one table cell: evaluate a model on one task and write metrics plus provenance as JSON."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from mtdnn import paths
from mtdnn.cellpreds import predictions_path, write_predictions
from mtdnn.fileio import atomic_path, read_json, write_json
from mtdnn.model.build import load_model
from mtdnn.model.inference import decode, infer, labels_for_metrics, prediction_frame, score
from mtdnn.provenance import provenance
from mtdnn.runtime.batching import cap_rows, is_labelled, load_task_data, require_labels
from mtdnn.runtime.precision import pick_device, resolve_dtype
from mtdnn.tasks import TaskSpec, load_tasks

log = logging.getLogger(__name__)


def evaluate_cell(
    model_dir: Path,
    task: TaskSpec,
    out: Path,
    splits: list[str] | None,
    predictions: Path | None,
    cell: dict,
    batch_size: int = 256,
    registry: dict[str, TaskSpec] | None = None,
    tok_dir: Path | None = None,
) -> dict:
    """``registry`` must hold every task the model has a head for (params' custom tasks too).
    ``tok_dir``: the task's tokenized data (a job spec names it; by hand, found from the model's
    encoder and length).

    Each scored split's predictions are kept beside the cell (``cellpreds``), written before the
    cell itself: a cell that exists always has its predictions, for the paired bootstrap."""
    start = time.perf_counter()
    registry = (registry if registry is not None else load_tasks()) | {task.name: task}
    model, cfg = load_model(model_dir, registry, extra=[task])
    device = pick_device()
    dtype = resolve_dtype(cfg["train_config"].get("precision", "auto"), device)
    model.to(device)
    tok_dir = tok_dir or paths.tokenized_dir(cfg["encoder"], cfg["max_len"], task.name)
    results, kept = {}, {}
    for split in splits or list(task.dev_splits):
        data = _capped(load_task_data(task, tok_dir, split), cfg["train_config"])
        # A labelled split is scored, and a row without a label there is an error, never a
        # reason to leave the metric out; only a declared unlabelled split (GLUE test) is not.
        scored = task.is_labelled(split) or is_labelled(data)
        if scored:
            require_labels(data, f"{tok_dir}/{split}.arrow (labelled split of task {task.name})")
        preds = decode(data, infer(model, task.name, data, batch_size, device, dtype))
        if predictions is not None:
            _write_predictions(
                predictions / f"{task.name}-{split}.tsv", prediction_frame(data, preds)
            )
        if scored:
            results[split] = score(data, preds)
            kept[split] = (data.uids, labels_for_metrics(data), preds)
    if kept:
        write_predictions(predictions_path(out), kept)
    train_seconds = _train_seconds(model_dir)
    doc = {
        "cell": cell | {"task": task.name},
        "metrics": results,
        "provenance": provenance(
            cfg, cfg.get("seed", -1), train_seconds + time.perf_counter() - start
        ),
    }
    write_json(out, doc)
    log.info("%s %s: %s", task.name, cell, results)
    return doc


def _capped(data, train_config: dict):
    """The same dev rows the run selected its checkpoint on (all of them unless the profile caps)."""
    cap = train_config.get("max_eval_examples")
    return data.subset(cap_rows(len(data), cap, train_config.get("data_seed", 0), data.task.name))


def _train_seconds(model_dir: Path) -> float:
    summary = model_dir / "train_summary.json"
    return read_json(summary).get("train_seconds", 0.0) if summary.is_file() else 0.0


def _write_predictions(path: Path, frame) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, sep="\t", index=False)
