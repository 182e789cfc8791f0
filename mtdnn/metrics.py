"""GLUE metrics (×100, unrounded) from scikit-learn and scipy, and the GLUE average."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from mtdnn.errors import MtdnnError
from mtdnn.tasks import TaskSpec

ArrayLike = np.ndarray | list | tuple


def _f1(labels: np.ndarray, preds: np.ndarray) -> float:
    # GLUE's MRPC/QQP F1 is binary with label index 1 ("1" = paraphrase/duplicate) as positive
    return f1_score(labels, preds, pos_label=1, average="binary", zero_division=0.0)


METRIC_FUNCTIONS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "accuracy": accuracy_score,
    "f1": _f1,
    "mcc": matthews_corrcoef,
    "pearson": lambda y, p: pearsonr(y, p).statistic,
    "spearman": lambda y, p: spearmanr(y, p).statistic,
}


def _as_array(values: object) -> np.ndarray:
    if hasattr(values, "detach"):  # a torch tensor, without importing torch here
        values = values.detach().cpu().numpy()
    return np.asarray(values).reshape(-1)


def compute_metrics(task: TaskSpec, preds: ArrayLike, labels: ArrayLike) -> dict[str, float]:
    """Each of the task's metrics ×100. Preds are label indices (classification), values
    (regression) or 0/1 relevance from ``heads.rank_predictions`` (ranking)."""
    y, p = _as_array(labels), _as_array(preds)
    if len(y) != len(p):
        raise MtdnnError(f"task {task.name}: {len(p)} predictions for {len(y)} labels")
    if len(y) == 0:
        raise MtdnnError(f"task {task.name}: no examples to score")
    # a constant prediction makes pearson/spearman NaN; that is reported, not hidden
    return {m: 100.0 * float(METRIC_FUNCTIONS[m](y, p)) for m in task.metrics}


def glue_score(cells: Mapping[str, Mapping[str, float]]) -> float:
    """Mean over the entries given, each entry's metrics averaged first (STS-B's P/S → one number).

    It averages exactly what it gets: pass MNLI as two entries ('mnli-m', 'mnli-mm') to count them
    as two tasks, as the GLUE leaderboard does, or leave AX/WNLI out to match a paper table.
    """
    if not cells:
        raise MtdnnError("glue_score: no task scores given")
    empty = [name for name, scores in cells.items() if not scores]
    if empty:
        raise MtdnnError(f"glue_score: task '{empty[0]}' has no metrics")
    return float(np.mean([np.mean(list(scores.values())) for scores in cells.values()]))
