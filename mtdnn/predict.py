"""`mtdnn predict`: a trained model on raw text (a TSV or sentences on the command line)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mtdnn.errors import MtdnnError
from mtdnn.fileio import atomic_path
from mtdnn.model.build import load_model
from mtdnn.model.inference import decode, infer, prediction_frame
from mtdnn.runtime.batching import TaskData
from mtdnn.runtime.precision import pick_device, resolve_dtype
from mtdnn.tasks import TaskSpec, TaskType, load_tasks
from mtdnn.tokenize import encode, load_tokenizer


def read_inputs(path: Path | None, text_a: list[str], text_b: list[str]) -> pd.DataFrame:
    """Raw input: a TSV with text_a[, text_b] columns, or sentences given on the command line."""
    if path is None:
        if text_b and len(text_b) != len(text_a):
            raise MtdnnError("--text-b: give one per --text-a")
        return pd.DataFrame({"text_a": text_a, "text_b": text_b or None})
    try:
        frame = pd.read_csv(path, sep="\t", quoting=3, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError) as e:
        raise MtdnnError(f"{path}: cannot read TSV ({e})") from None
    if "text_a" not in frame.columns:
        raise MtdnnError(f"{path}:1: missing column 'text_a' (header has {list(frame.columns)})")
    return frame


def write_tsv(frame: pd.DataFrame, out: Path | None) -> None:
    """The predictions as TSV: to ``out``, or to stdout when None."""
    if out is None:
        frame.to_csv(sys.stdout, sep="\t", index=False)
        return
    with atomic_path(out) as tmp:
        frame.to_csv(tmp, sep="\t", index=False)


def predict(
    model_dir: Path,
    task_name: str,
    inputs: pd.DataFrame,
    registry: dict[str, TaskSpec] | None = None,
) -> pd.DataFrame:
    """``registry``: the known tasks (default: the built-in ones; pass params' custom tasks too)."""
    registry = registry if registry is not None else load_tasks()
    task = registry.get(task_name) or _unknown(task_name)
    model, cfg = load_model(model_dir, registry, extra=[task])
    tok = load_tokenizer(str(model_dir))
    text_b = (
        inputs["text_b"].tolist() if "text_b" in inputs and inputs["text_b"].notna().any() else None
    )
    ids, types = encode(tok, inputs["text_a"].tolist(), text_b, cfg["max_len"])
    data = _as_task_data(task, ids, types)
    device = pick_device()
    outputs = infer(model.to(device), task.name, data, 64, device, resolve_dtype("auto", device))
    frame = prediction_frame(data, decode(data, outputs)).drop(columns=["label"])
    if task.type is TaskType.CLASSIFICATION:
        probs = torch.from_numpy(outputs).float().softmax(-1).numpy()
        frame["confidence"] = probs.max(-1).round(4)
    return frame


def _unknown(name: str) -> TaskSpec:
    raise MtdnnError(f"unknown task '{name}'")


def _as_task_data(task: TaskSpec, ids: list, types: list) -> TaskData:
    lengths = np.fromiter(map(len, ids), np.int64, len(ids))
    fill = np.full(len(ids), np.nan if task.type is TaskType.REGRESSION else -1)
    return TaskData(
        task=task,
        split="input",
        uids=np.arange(len(ids)).astype(str).astype(object),
        ids=np.concatenate(ids).astype(np.int64),
        types=np.concatenate(types).astype(np.int64),
        offsets=np.concatenate([[0], np.cumsum(lengths)]),
        labels=fill,
        groups=np.zeros(len(ids), np.int64) if task.type is TaskType.RANKING else None,
    )
