"""From table cells to the bootstrap's dev sets: each cell's predictions, read from beside it
(``mtdnn.cellpreds``), checked against the cell, and lined up by dev row across models and seeds."""

from __future__ import annotations

import logging
import math
from collections.abc import Collection
from pathlib import Path

import numpy as np
import pandas as pd

from mtdnn.cellpreds import predictions_path, read_predictions, split_rows
from mtdnn.errors import MtdnnError
from mtdnn.metrics import METRIC_FUNCTIONS
from mtdnn.report.significance import DevSet

log = logging.getLogger(__name__)


def missing_predictions(frame: pd.DataFrame, by: str, models: Collection[str]) -> list[str]:
    """Cells of ``models`` without a predictions file beside them (built before cells kept one)."""
    files = frame.loc[frame[by].isin(models), "file"].unique()
    return [str(f) for f in files if not Path(predictions_path(f)).is_file()]


def missing_note(missing: list[str]) -> str:
    """The notice that replaces the intervals when some cells have no predictions: the table is
    still built (the cells' metrics are sound), and the note says which cells to rebuild."""
    note = (
        f"No paired-bootstrap intervals: {len(missing)} cell(s) have no dev predictions beside "
        f"them (built before cells kept them), e.g. {missing[0]} has no "
        f"{Path(predictions_path(missing[0])).name}; rebuild those cells to get the intervals."
    )
    log.warning(note)
    return note


def load_devsets(frame: pd.DataFrame, by: str, models: Collection[str]) -> list[DevSet]:
    """One dev set per (row, column) of ``frame`` (columns ``by``, seed, column, split, metric,
    value, file, row), with the predictions of every cell of ``models``, in the frame's order."""
    frame = frame[frame[by].isin(models)]
    found: dict[tuple[str, str], dict] = {}
    for file, cell in frame.groupby("file", sort=False):
        preds = read_predictions(predictions_path(file))
        for (row, column, split), sub in cell.groupby(["row", "column", "split"], sort=False):
            rows = split_rows(preds, split, predictions_path(file))
            _check_reproduces(
                rows, dict(zip(sub["metric"], sub["value"], strict=True)), file, split
            )
            entry = found.setdefault((row, column), {"metrics": tuple(sub["metric"]), "preds": {}})
            _add(entry, rows, (sub[by].iloc[0], sub["seed"].iloc[0]), file, column)
    order = dict.fromkeys(zip(frame["row"], frame["column"], strict=True))
    return [
        DevSet(c, r, found[r, c]["metrics"], found[r, c]["labels"], found[r, c]["preds"])
        for r, c in order
    ]


def _add(entry: dict, rows: pd.DataFrame, key: tuple, file: str, column: str) -> None:
    """Line one cell's rows up with the dev set's first cell, by uid: every model and seed must
    have predicted the same dev rows with the same gold labels, or the pairing means nothing."""
    if "uids" not in entry:
        entry |= {"uids": rows["uid"].to_numpy(), "labels": rows["label"].to_numpy()}
    elif not np.array_equal(rows["uid"].to_numpy(), entry["uids"]):
        if sorted(rows["uid"]) != sorted(entry["uids"]) or rows["uid"].duplicated().any():
            raise MtdnnError(
                f"{predictions_path(file)}: its {column} rows are not those of the other cells "
                "(expected the same dev rows for every model and seed)"
            )
        rows = rows.set_index("uid").loc[entry["uids"]].reset_index()
    if not np.array_equal(rows["label"].to_numpy(), entry["labels"]):
        raise MtdnnError(
            f"{predictions_path(file)}: gold labels of {column} differ from the other cells' "
            "(expected the same labels for every model and seed)"
        )
    entry["preds"][key] = rows["prediction"].to_numpy()


def _check_reproduces(rows: pd.DataFrame, metrics: dict[str, float], file: str, split: str):
    """The kept predictions must give the cell's own metrics: a stale or foreign predictions
    file would otherwise put an interval around numbers the table does not show."""
    y, p = rows["label"].to_numpy(), rows["prediction"].to_numpy()
    for metric, value in metrics.items():
        got = 100.0 * float(METRIC_FUNCTIONS[metric](y, p))
        if not (math.isclose(got, value, abs_tol=1e-6) or (math.isnan(got) and math.isnan(value))):
            raise MtdnnError(
                f"{predictions_path(file)}: gives {split} {metric} {got:.4f} but its cell {file} "
                f"says {value:.4f} (expected the predictions of that cell; rebuild it)"
            )
