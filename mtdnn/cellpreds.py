"""Dev predictions kept beside each table cell (``seed1.json`` → ``seed1.preds.parquet``): the rows
the paired bootstrap resamples. One writer for GLUE and domain-adaptation cells."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from mtdnn.errors import MtdnnError

if TYPE_CHECKING:  # the workflow imports this module to name outputs: no pandas at parse time
    import pandas as pd

SUFFIX = ".preds.parquet"
COLUMNS = ("split", "uid", "label", "prediction")


def predictions_path(cell: str | os.PathLike) -> str:
    """Where a cell's predictions live. A string in, a string out, so the workflow can pass a
    path pattern with wildcards (``.../seed{seed}.json``) as well as a file."""
    return os.fspath(cell).removesuffix(".json") + SUFFIX


def write_predictions(dest: str | os.PathLike, splits: Mapping[str, tuple]) -> None:
    """``{split: (uids, labels, predictions)}`` as one Parquet file, rows in the split's order.

    Labels and predictions are what the metric compares (label ids, 0/1 relevance for ranking,
    the score for regression), so the bootstrap recomputes exactly the cell's metric. The bytes
    depend on the rows alone: no timestamps and no pandas metadata, so a rebuilt cell (same
    seed, same library versions) writes an identical file and DVC sees no change.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mtdnn.fileio import atomic_path

    parts = [
        pa.table(
            {
                "split": pa.array([split] * len(uids), pa.string()),
                "uid": pa.array([str(u) for u in uids], pa.string()),
                "label": pa.array(np.asarray(labels)),
                "prediction": pa.array(np.asarray(preds)),
            }
        )
        for split, (uids, labels, preds) in splits.items()
    ]
    if not parts:
        raise MtdnnError(f"{dest}: no scored split to keep predictions for")
    with atomic_path(dest, suffix=".parquet") as tmp:
        pq.write_table(pa.concat_tables(parts), tmp, compression="zstd")


def read_predictions(path: str | os.PathLike) -> pd.DataFrame:
    """The predictions file as a frame with ``COLUMNS``; a missing or malformed file is one line."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        frame = pq.read_table(path).to_pandas()
    except FileNotFoundError:
        raise MtdnnError(f"{path}: file not found") from None
    except (OSError, pa.ArrowException) as e:
        raise MtdnnError(f"{path}: not a readable Parquet file ({e})") from None
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise MtdnnError(
            f"{path}: expected columns {', '.join(COLUMNS)} (missing {', '.join(missing)})"
        )
    return frame


def split_rows(frame: pd.DataFrame, split: str, path: str | os.PathLike) -> pd.DataFrame:
    """One split's rows of a predictions file, in their stored order."""
    rows = frame[frame["split"] == split]
    if rows.empty:
        raise MtdnnError(f"{path}: no predictions for split '{split}' (its cell scores it)")
    return rows.reset_index(drop=True)
