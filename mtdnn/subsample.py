"""Domain-adaptation subsamples: deterministic, class-stratified and nested across sizes.

Each class's rows get one fixed random order from (dataset, seed) alone. The classes are then merged
into a single sequence: first one row of every class (so each class is present), then all other rows
ordered by their quantile position within their class. A draw of size n is the first n rows of that
sequence, so a smaller draw is always contained in a larger one (0.1 % ⊂ 1 % ⊂ 10 %). Past a few examples per class, every prefix
keeps the pool's class proportions to within about one example per class (tiny draws from a very
skewed pool deviate more, because each class is guaranteed one row). numpy's PCG64 seeded from
integers gives the same stream on every platform, so the same seed gives the same rows anywhere.

Fractions round down, as in the paper: SciTail 0.1 % of 23,596 is 23 examples, SNLI 1 % of 549,367 is
5,493.
"""

from __future__ import annotations

import math
import zlib

import numpy as np

from mtdnn.errors import MtdnnError


def resolve_size(size: float | int, pool: int) -> int:
    """A fraction in (0, 1] of the pool (floored), or an absolute count ≥ 2."""
    if isinstance(size, bool) or not isinstance(size, (int, float)) or size <= 0:
        raise MtdnnError(f"adapt size {size!r}: expected a fraction in (0, 1] or a count >= 2")
    if isinstance(size, float) or size == 1:
        if size > 1:
            raise MtdnnError(f"adapt size {size!r}: a fraction must be in (0, 1]")
        return max(1, math.floor(size * pool))
    if size > pool:
        raise MtdnnError(f"adapt size {size}: larger than the training pool ({pool} examples)")
    return int(size)


def size_label(size: float | int) -> str:
    """'n549' for an absolute count, 'p0.01' for a fraction of the pool (``parse_size`` reads it)."""
    return f"p{size:g}" if isinstance(size, float) or size == 1 else f"n{size}"


def parse_size(label: str) -> float | int:
    """'n549' → 549, 'p0.001' → 0.001 (the workflow's wildcard form)."""
    try:
        return int(label[1:]) if label.startswith("n") else float(label[1:])
    except ValueError:
        raise MtdnnError(f"adapt size '{label}': expected n<count> or p<fraction>") from None


def draw_order(labels: np.ndarray, dataset: str, seed: int) -> np.ndarray:
    """The full nested draw order of the pool's row indices."""
    rng = np.random.default_rng([seed, zlib.crc32(dataset.encode())])
    rows, keys = [], []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))  # (n_c,)
        quantile = (np.arange(len(members)) + 0.5) / len(members)
        quantile[0] = -1.0  # one row of each class leads the sequence
        rows.append(members)
        keys.append(quantile)
    rows, keys = np.concatenate(rows), np.concatenate(keys)
    return rows[np.lexsort((rows, keys))]  # ties broken by row id: deterministic


def subsample(labels: np.ndarray, size: float | int, dataset: str, seed: int) -> np.ndarray:
    """Row indices of the draw (sorted). ``labels`` are the class ids of the whole pool."""
    n = resolve_size(size, len(labels))
    classes = len(np.unique(labels))
    if n < classes:
        raise MtdnnError(f"adapt size {n}: need at least one example for each of {classes} classes")
    return np.sort(draw_order(labels, dataset, seed)[:n])
