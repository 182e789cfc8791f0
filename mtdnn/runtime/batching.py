"""Tokenized splits held as flat numpy arrays; batches are padded to their own longest example."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mtdnn.errors import MtdnnError
from mtdnn.tasks import TaskSpec, TaskType
from mtdnn.tokenize import load_split


@dataclass
class TaskData:
    """One split of one task. ``ids``/``types`` are concatenated token arrays cut by ``offsets``."""

    task: TaskSpec
    split: str
    uids: np.ndarray
    ids: np.ndarray
    types: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray
    groups: np.ndarray | None = None

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, rows: np.ndarray) -> TaskData:
        """Keep ``rows`` (in that order); the token arrays are re-packed so memory shrinks too."""
        starts, sizes = self.offsets[rows], np.diff(self.offsets)[rows]
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        take = np.repeat(starts - offsets[:-1], sizes) + np.arange(offsets[-1])  # vectorised gather
        groups = self.groups[rows] if self.groups is not None else None
        return TaskData(
            self.task,
            self.split,
            self.uids[rows],
            self.ids[take],
            self.types[take],
            offsets,
            self.labels[rows],
            groups,
        )


def load_task_data(task: TaskSpec, tokenized_dir: Path, split: str) -> TaskData:
    table = load_split(tokenized_dir, split)
    ids_col, types_col = (
        table["input_ids"].combine_chunks(),
        table["token_type_ids"].combine_chunks(),
    )
    groups = table["group"].to_numpy() if "group" in table.column_names else None
    return TaskData(
        task=task,
        split=split,
        uids=np.asarray(table["uid"].to_pylist(), dtype=object),
        ids=ids_col.values.to_numpy().astype(np.int64),
        types=types_col.values.to_numpy().astype(np.int64),
        offsets=ids_col.offsets.to_numpy().astype(np.int64),
        labels=table["label"].to_numpy(),
        groups=groups,
    )


def _missing_labels(data: TaskData) -> np.ndarray:
    return np.isnan(data.labels) if data.task.type is TaskType.REGRESSION else data.labels < 0


def is_labelled(data: TaskData) -> bool:
    return not _missing_labels(data).any()


def require_labels(data: TaskData, where: str) -> None:
    missing = _missing_labels(data)
    if missing.any():
        raise MtdnnError(
            f"{where}: {int(missing.sum())} rows have no label (an unlabelled test split?)"
        )


def row_order(n: int, seed: int, task: str) -> np.ndarray:
    """One seeded permutation of a split's rows per (data seed, task): every cap is a prefix of it,
    so smaller caps nest inside larger ones (fine-tuning rows ⊆ multi-task rows), and a held-out
    slice is its tail, disjoint from every cap."""
    return np.random.default_rng([seed, zlib.crc32(task.encode())]).permutation(n)


def cap_rows(n: int, cap: int | None, seed: int, task: str, holdout: int = 0) -> np.ndarray:
    """The first ``cap`` rows of the seeded order, less the ``holdout`` tail; the same for every
    training seed and init. Returned sorted (the set matters; batches are shuffled anyway)."""
    if holdout >= n and holdout:
        raise MtdnnError(f"task {task}: holdout_examples {holdout} leaves no training rows of {n}")
    if holdout == 0 and (cap is None or cap >= n):
        return np.arange(n)
    order = row_order(n, seed, task)[: n - holdout]
    return np.sort(order[:cap])


def holdout_rows(n: int, holdout: int, seed: int, task: str) -> np.ndarray:
    """The held-out tail of the seeded order: rows to select the best epoch on, never trained on."""
    return np.sort(row_order(n, seed, task)[n - holdout :]) if holdout else np.arange(0)


def padded_width(lengths: np.ndarray, multiple: int = 1) -> int:
    """The width a batch of rows of these ``lengths`` is padded to: the longest, rounded up to
    ``multiple`` tokens."""
    return -(-int(lengths.max()) // multiple) * multiple


def collate(
    data: TaskData, rows: np.ndarray, pad_id: int = 0, multiple: int = 1
) -> dict[str, torch.Tensor]:
    """Pad ``rows`` to their longest example, rounded up to ``multiple`` tokens: (B, T) ids, mask,
    token types, plus labels. A multiple > 1 leaves fewer distinct batch shapes, and so fewer
    distinct block sizes for glibc's heap to fragment over (see ``pad_to_multiple_of``)."""
    starts, lengths = data.offsets[rows], data.offsets[rows + 1] - data.offsets[rows]
    width = padded_width(lengths, multiple)
    cols = np.arange(width)
    mask = cols[None, :] < lengths[:, None]  # (B, T)
    flat = (starts[:, None] + cols[None, :])[mask]
    ids = np.full(mask.shape, pad_id, dtype=np.int64)
    types = np.zeros(mask.shape, dtype=np.int64)
    ids[mask], types[mask] = data.ids[flat], data.types[flat]
    batch = {
        "input_ids": torch.from_numpy(ids),
        "attention_mask": torch.from_numpy(mask.astype(np.int64)),
        "token_type_ids": torch.from_numpy(types),
        "labels": torch.from_numpy(data.labels[rows]),
    }
    if data.groups is not None:
        batch["groups"] = torch.from_numpy(data.groups[rows])
    return batch
