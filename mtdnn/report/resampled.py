"""GLUE's metrics on many bootstrap resamples at once.

A resample is a count vector over the dev rows (row i drawn ``w[i]`` times), so each metric is a
function of weighted sums: accuracy, F1 and MCC of confusion counts, Pearson of five moments,
Spearman of Pearson on each resample's average ranks. Computing them as matrix products over a
(replicates × rows) count matrix is what makes 10,000 replicates take seconds instead of the
minutes a loop over scikit-learn calls would.

Every function takes the gold labels ``y`` (n,), predictions ``p`` (P, n) and counts ``w`` (R, n),
and returns (P, R) on the ×100 scale of ``mtdnn.metrics``: what scikit-learn and scipy give on the
resampled rows (tests check it against them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def _f(mask: np.ndarray) -> np.ndarray:
    """Indicators as float64, so that the products below go through BLAS."""
    return mask.astype(np.float64)


def accuracy(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> np.ndarray:
    return 100.0 * (w @ _f(p == y).T).T / w.sum(axis=1)


def f1(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Binary F1 with label index 1 positive; 0 when nothing is positive (``zero_division=0``)."""
    pred_pos = _f(p == 1)
    tp = w @ (pred_pos * (y == 1)).T
    denom = w @ pred_pos.T + (w @ _f(y == 1))[:, None]
    return 100.0 * np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0).T


def mcc(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Matthews correlation for any number of classes from the resample's confusion margins,
    scikit-learn's formula term for term (0 when either margin is a single class)."""
    classes = np.union1d(y, p)
    s = w.sum(axis=1)
    t = w @ _f(y[:, None] == classes)  # gold counts per class (R, K)
    cov_tt = s**2 - (t**2).sum(axis=1)
    out = np.empty((len(p), len(w)))
    for j, pj in enumerate(p):
        k = w @ _f(pj[:, None] == classes)  # predicted counts per class
        cov_tp = (w @ _f(pj == y)) * s - (k * t).sum(axis=1)
        denom = (s**2 - (k**2).sum(axis=1)) * cov_tt
        safe = np.where(denom > 0, denom, 1.0)
        out[j] = np.where(denom > 0, cov_tp / np.sqrt(safe), 0.0)
    return 100.0 * out


def pearson(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> np.ndarray:
    # Centred on the full dev set first: the moments then stay small and cancel less.
    x = y.astype(np.float64) - y.mean()
    z = p.astype(np.float64) - p.mean(axis=1, keepdims=True)
    s = w.sum(axis=1)[:, None]
    sx, sz = (w @ x)[:, None], w @ z.T
    cov = s * (w @ (z * x).T) - sx * sz
    var = (s * (w @ (x**2))[:, None] - sx**2) * (s * (w @ (z**2).T) - sz**2)
    return 100.0 * _ratio(cov, var).T


def spearman(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Pearson of the average ranks each resample gives its rows (ties share their mean rank,
    as ``scipy.stats.rankdata`` does on the resampled rows, duplicates included)."""
    s = w.sum(axis=1)[:, None]
    middle = (s + 1) / 2  # the mean rank, whatever the resample: centring by it is exact
    gold = average_ranks(y, w) - middle
    out = np.empty((len(p), len(w)))
    for j, pj in enumerate(p):
        pred = average_ranks(pj, w) - middle
        cov = (w * gold * pred).sum(axis=1)
        var = (w * gold**2).sum(axis=1) * (w * pred**2).sum(axis=1)
        out[j] = _ratio(cov, var)
    return 100.0 * out


def average_ranks(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(R, n): each row's average rank among resample r's rows. A row drawn c times is c tied
    copies; a row not drawn gets the rank it would have, which its zero count then cancels."""
    order = np.argsort(x, kind="stable")
    xs = x[order]
    new = np.r_[True, xs[1:] != xs[:-1]]  # the first sorted row of each distinct value
    group = np.empty(len(x), dtype=np.intp)
    group[order] = np.cumsum(new) - 1
    per_value = np.add.reduceat(w[:, order], np.flatnonzero(new), axis=1)
    below = np.cumsum(per_value, axis=1) - per_value
    return (below + (per_value + 1) / 2)[:, group]


def _ratio(cov: np.ndarray, var: np.ndarray) -> np.ndarray:
    """cov / sqrt(var), clipped to [-1, 1] as scipy does; NaN where a side is constant (scipy's
    answer too: a constant prediction has no correlation)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(var > 0, cov / np.sqrt(np.where(var > 0, var, 1.0)), np.nan)
    return np.clip(r, -1.0, 1.0)


RESAMPLED: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    "accuracy": accuracy,
    "f1": f1,
    "mcc": mcc,
    "pearson": pearson,
    "spearman": spearman,
}


def column_score(y: np.ndarray, p: np.ndarray, metrics: Sequence[str], w: np.ndarray) -> np.ndarray:
    """(P, R): the mean of a table column's metrics (MRPC acc/F1, STS-B P/S), as GLUE's score
    averages them."""
    return np.mean([RESAMPLED[m](y, p, w) for m in metrics], axis=0)
