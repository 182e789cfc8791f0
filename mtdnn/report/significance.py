"""The paired bootstrap over dev examples: is model A − model B more than a finite dev set's noise?

Each replicate resamples every dev set's rows with replacement, and scores both models and every
seed on THE SAME resampled rows, so what the models share (an easy or a mislabelled example)
cancels out of the difference. The statistic is the difference of seed means,
mean_s metric(A, s) − mean_s metric(B, s), per comparison row (a GLUE task: its dev sets' metrics
averaged as the GLUE score averages them) and for the GLUE score. Two dev sets of one task
(MNLI-m and -mm) are independent samples, so each is resampled on its own within a replicate.
"""

from __future__ import annotations

import zlib
from collections.abc import Collection, Hashable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mtdnn.errors import MtdnnError
from mtdnn.report.resampled import column_score

REPLICATES = 10_000
SEED = 0
GLUE_ROW = "GLUE score"
# Entries of one (replicates × rows) chunk: 2M float64 = 16 MB per array, a few arrays alive.
CHUNK_ENTRIES = 1 << 21


@dataclass(frozen=True)
class DevSet:
    """One dev split (a table column) as the bootstrap sees it.

    ``name`` picks the resamples: the same name draws the same rows, whichever other dev sets are
    resampled alongside. ``row`` is the comparison it counts towards (a GLUE task, an adaptation
    size). ``preds`` maps (model, seed) to predictions in the order of ``labels``.
    """

    name: str
    row: str
    metrics: tuple[str, ...]
    labels: np.ndarray
    preds: Mapping[tuple[str, Hashable], np.ndarray]


def resample_indices(seed: int, name: str, n: int, replicates: int) -> Iterator[np.ndarray]:
    """Row indices of each replicate, in (chunk, n) blocks. The dev set's own stream (seeded by
    its name), drawn in order: replicate k is the same rows whatever the chunk size."""
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    per = max(1, CHUNK_ENTRIES // n)
    for start in range(0, replicates, per):
        yield rng.integers(0, n, size=(min(per, replicates - start), n))


def counts(indices: np.ndarray, n: int) -> np.ndarray:
    """(r, n) index draws → (r, n) float counts: how often each row is in each replicate."""
    r = len(indices)
    flat = (indices + n * np.arange(r)[:, None]).ravel()
    return np.bincount(flat, minlength=r * n).reshape(r, n).astype(np.float64)


def common_seeds(dev: DevSet, a: str, b: str) -> list:
    """The seeds both models have on this dev set (the pairing); none is an error."""
    seeds = sorted({s for m, s in dev.preds if m == a} & {s for m, s in dev.preds if m == b})
    if not seeds:
        raise MtdnnError(f"paired bootstrap: dev set {dev.name} has no seed with both {a} and {b}")
    return seeds


def devset_deltas(
    dev: DevSet, a: str, b: str, replicates: int, seed: int
) -> tuple[float, np.ndarray]:
    """Observed difference of seed means on one dev set, and its value in every replicate."""
    seeds = common_seeds(dev, a, b)
    y = np.asarray(dev.labels)
    p = np.stack([np.asarray(dev.preds[(m, s)]) for m in (a, b) for s in seeds])
    k = len(seeds)

    def diff(scores: np.ndarray) -> np.ndarray:
        return scores[:k].mean(axis=0) - scores[k:].mean(axis=0)

    observed = diff(column_score(y, p, dev.metrics, np.ones((1, len(y)))))[0]
    reps = [
        diff(column_score(y, p, dev.metrics, counts(idx, len(y))))
        for idx in resample_indices(seed, dev.name, len(y), replicates)
    ]
    return float(observed), np.concatenate(reps)


def replicate_deltas(
    devsets: list[DevSet],
    a: str,
    b: str,
    glue_rows: Collection[str] = (),
    replicates: int = REPLICATES,
    seed: int = SEED,
) -> dict[str, tuple[float, np.ndarray]]:
    """``{row: (observed, replicates)}``: each row the mean over its dev sets (MNLI-m and -mm
    averaged, as GLUE does), and, when ``glue_rows`` names rows present, the GLUE score: the
    mean over those rows, replicate by replicate (every dev set resampled in each)."""
    rows: dict[str, list] = {}
    for dev in devsets:
        rows.setdefault(dev.row, []).append(devset_deltas(dev, a, b, replicates, seed))
    out = {row: _mean(parts) for row, parts in rows.items()}
    glue = [out[r] for r in out if r in set(glue_rows)]
    if glue:
        out[GLUE_ROW] = _mean(glue)
    return out


def _mean(parts: list[tuple[float, np.ndarray]]) -> tuple[float, np.ndarray]:
    return float(np.mean([o for o, _ in parts])), np.mean([r for _, r in parts], axis=0)


def bootstrap_p(deltas: np.ndarray) -> float:
    """Two-sided p of "no difference": twice the smaller share of replicates on either side of 0,
    each count +1 over R+1 so that p is never 0 from a finite bootstrap. It is the test that
    inverts the percentile interval (p < 0.05 when the 95 % interval leaves out 0, up to one
    replicate), so the two columns never disagree: Efron & Tibshirani, An Introduction to the
    Bootstrap (1993), ch. 15-16 (tests from confidence intervals); the +1 as in Davison &
    Hinkley, Bootstrap Methods and their Application (1997), ch. 4. Non-finite replicates (a
    resample on which a correlation is undefined) are left out."""
    d = deltas[np.isfinite(deltas)]
    if len(d) == 0:
        return float("nan")
    low, high = (1 + np.sum(d <= 0)) / (len(d) + 1), (1 + np.sum(d >= 0)) / (len(d) + 1)
    return float(min(1.0, 2 * min(low, high)))


def holm(p: np.ndarray | list[float]) -> np.ndarray:
    """Holm's step-down adjustment (Holm 1979), in the input order; NaN stays NaN and does not
    count towards the family. The i-th smallest of m p-values is multiplied by (m − i + 1), then
    made monotone and capped at 1 (scipy has only BH/BY: false_discovery_control)."""
    p = np.asarray(p, dtype=np.float64)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    scaled = p[order] * (len(order) - np.arange(len(order)))
    out[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return out


def paired_bootstrap(
    devsets: list[DevSet],
    a: str,
    b: str,
    glue_rows: Collection[str] = (),
    replicates: int = REPLICATES,
    seed: int = SEED,
) -> pd.DataFrame:
    """One row per comparison (and the GLUE score): the observed difference A − B, its 95 %
    percentile interval, the p-value, and Holm's adjustment over every row of the table (the
    GLUE score included: each difference reported gets an adjusted p)."""
    if replicates < 1:
        raise MtdnnError(f"paired bootstrap: replicates must be at least 1, got {replicates}")
    rows = []
    for row, (observed, d) in replicate_deltas(devsets, a, b, glue_rows, replicates, seed).items():
        finite = d[np.isfinite(d)]
        low, high = np.percentile(finite, [2.5, 97.5]) if len(finite) else (np.nan, np.nan)
        rows.append(
            {"row": row, "delta": observed, "ci_low": low, "ci_high": high, "p": bootstrap_p(d)}
        )
    table = pd.DataFrame(rows)
    return table.assign(p_holm=holm(table["p"].to_numpy()))
