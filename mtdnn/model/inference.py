"""Inference: batched under ``inference_mode``, metrics, and predictions with their uids."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from mtdnn.metrics import compute_metrics
from mtdnn.model.heads import predictions
from mtdnn.runtime.batching import TaskData, collate
from mtdnn.runtime.precision import autocast
from mtdnn.tasks import TaskType


@torch.inference_mode()
def infer(model, task: str, data: TaskData, batch_size: int, device, dtype) -> np.ndarray:
    """Raw head outputs (N, C) in the data's row order. Long examples go first so that each batch
    pads to a similar length; the sort is undone at the end. The outputs stay on the device until
    the last batch: one copy to the host, not a host sync per batch."""
    model.eval()
    order = np.argsort(-data.lengths, kind="stable")
    outs = []
    for lo in range(0, len(order), batch_size):
        batch = collate(data, order[lo : lo + batch_size])
        inputs = {
            k: v.to(device, non_blocking=True)
            for k, v in batch.items()
            if k not in ("labels", "groups")
        }
        with autocast(device, dtype):
            outs.append(model(task, **inputs).float())
    result = torch.cat(outs).cpu().numpy()
    restored = np.empty_like(result)
    restored[order] = result
    return restored


def decode(data: TaskData, outputs: np.ndarray) -> np.ndarray:
    """Outputs → predicted label ids (classification, ranking) or scores (regression)."""
    groups = torch.from_numpy(data.groups) if data.groups is not None else None
    return predictions(data.task, torch.from_numpy(outputs), groups).numpy()


def labels_for_metrics(data: TaskData) -> np.ndarray:
    if data.task.type is TaskType.RANKING:
        return (data.labels == data.task.labels.index(data.task.positive_label)).astype(int)
    return data.labels


def score(data: TaskData, preds: np.ndarray) -> dict[str, float]:
    return compute_metrics(data.task, preds, labels_for_metrics(data))


def prediction_frame(data: TaskData, preds: np.ndarray) -> pd.DataFrame:
    """uid, prediction (GLUE label string or score), gold label when known."""
    task = data.task
    if task.type is TaskType.REGRESSION:
        return pd.DataFrame({"uid": data.uids, "prediction": preds, "label": data.labels})
    if task.type is TaskType.RANKING:
        pos, neg = task.positive_label, next(x for x in task.labels if x != task.positive_label)
        names = np.where(preds == 1, pos, neg)
    else:
        names = np.asarray(task.labels, dtype=object)[preds]
    gold = [task.labels[i] if i >= 0 else None for i in data.labels]
    return pd.DataFrame({"uid": data.uids, "prediction": names, "label": gold})
