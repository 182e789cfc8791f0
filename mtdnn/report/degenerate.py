"""Degenerate cells: a cell that does not beat the majority-class (or constant) predictor on its
own dev rows learned little there, and a difference against it says less than its size suggests.
The check reads the predictions kept beside each cell, so it needs no model and no extra data."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from mtdnn.report import resampled
from mtdnn.report.significance import DevSet

# A constant prediction has no correlation with the gold scores: it counts as 0.
REGRESSION = {"pearson", "spearman"}


def column_score(labels: np.ndarray, preds: np.ndarray, metrics: Sequence[str]) -> float:
    """The column's metrics (×100) averaged, as the GLUE score counts them (on every row once,
    through the bootstrap's own metric code); a NaN correlation counts as 0."""
    once = np.ones((1, len(labels)))
    score = float(resampled.column_score(labels, preds[None, :], metrics, once)[0, 0])
    return 0.0 if np.isnan(score) else score


def majority_score(dev: DevSet) -> float:
    """What always predicting the most frequent gold label scores (for a regression column, a
    constant: 0 by the rule above)."""
    if set(dev.metrics) & REGRESSION:
        return 0.0
    values, counts = np.unique(dev.labels, return_counts=True)
    constant = np.full(len(dev.labels), values[np.argmax(counts)])
    return column_score(dev.labels, constant, dev.metrics)


def degenerate_cells(devsets: list[DevSet], names: dict[str, str]) -> pd.DataFrame:
    """One row per (model, dev column) with a seed at or below the majority-class predictor:
    that predictor's score, and each seed's own (``names`` labels the models)."""
    rows = []
    for dev in devsets:
        floor = majority_score(dev)
        by_model: dict[str, list[str]] = {}
        low: set[str] = set()
        for (model, seed), preds in sorted(dev.preds.items(), key=lambda kv: str(kv[0])):
            score = column_score(dev.labels, preds, dev.metrics)
            by_model.setdefault(model, []).append(f"{seed}: {score:.1f}")
            if score <= floor:
                low.add(model)
        rows += [
            {
                "model": names.get(m, m),
                "column": dev.name,
                "majority class": f"{floor:.1f}",
                "per seed": ", ".join(by_model[m]),
            }
            for m in sorted(low)
        ]
    return pd.DataFrame(rows, columns=["model", "column", "majority class", "per seed"])
