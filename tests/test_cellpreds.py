"""Dev predictions kept beside each table cell: written by the evaluation every training job runs,
the same bytes for the same cell, and exactly what the cell's metrics were computed from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tiny_runs import TASKS, TINY

from mtdnn.cellpreds import (
    COLUMNS,
    predictions_path,
    read_predictions,
    split_rows,
    write_predictions,
)
from mtdnn.errors import MtdnnError
from mtdnn.evaluate import evaluate_cell
from mtdnn.metrics import METRIC_FUNCTIONS
from mtdnn.train import train


def test_the_predictions_file_sits_beside_its_cell():
    assert predictions_path("results/cells/glue/base/x/rte/k/seed1.json") == (
        "results/cells/glue/base/x/rte/k/seed1.preds.parquet"
    )
    # a workflow pattern keeps its wildcards
    assert predictions_path("a/{task}/seed{seed}.json") == "a/{task}/seed{seed}.preds.parquet"


def test_the_same_predictions_give_the_same_bytes(tmp_path):
    splits = {
        "dev_matched": (np.array(["m1", "m2", "m3"], dtype=object), np.array([0, 2, 1]), np.array([0, 1, 1])),
        "dev_mismatched": (np.array(["x1", "x2"], dtype=object), np.array([1, 1]), np.array([1, 0])),
    }  # fmt: skip
    write_predictions(tmp_path / "a.preds.parquet", splits)
    write_predictions(tmp_path / "b.preds.parquet", splits)
    assert (tmp_path / "a.preds.parquet").read_bytes() == (
        tmp_path / "b.preds.parquet"
    ).read_bytes()
    frame = read_predictions(tmp_path / "a.preds.parquet")
    assert list(frame.columns) == list(COLUMNS)
    mm = split_rows(frame, "dev_mismatched", "a")
    assert mm["uid"].tolist() == ["x1", "x2"] and mm["prediction"].tolist() == [1, 0]
    # atomic writes leave no temporary file behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.preds.parquet", "b.preds.parquet"]


def test_a_missing_or_foreign_predictions_file_is_one_line(tmp_path):
    with pytest.raises(MtdnnError, match=r"seed1\.preds\.parquet: file not found$"):
        read_predictions(tmp_path / "seed1.preds.parquet")
    (tmp_path / "junk.parquet").write_text("not parquet")
    with pytest.raises(MtdnnError, match=r"junk\.parquet: not a readable Parquet file"):
        read_predictions(tmp_path / "junk.parquet")
    import pandas as pd

    pd.DataFrame({"uid": ["a"], "label": [1]}).to_parquet(tmp_path / "other.parquet")
    with pytest.raises(
        MtdnnError,
        match=r"expected columns split, uid, label, prediction \(missing split, prediction\)",
    ):
        read_predictions(tmp_path / "other.parquet")
    frame = pd.DataFrame({c: ["dev"] for c in COLUMNS})
    with pytest.raises(MtdnnError, match=r"x: no predictions for split 'test'"):
        split_rows(frame, "test", "x")


def test_every_evaluated_cell_keeps_the_predictions_its_metrics_came_from(tiny_project):
    """A classification and a regression head (RTE, STS-B), each cell twice: the predictions are
    beside the cell, give the cell's metrics to the last digit, and are the same bytes again."""
    root, encoder = tiny_project
    cfg = TINY.with_overrides(epochs=1, eval_each_epoch=False)
    train([TASKS["rte"], TASKS["stsb"]], str(encoder), 64, cfg, 3, root / "preds-model")
    for name in ("rte", "stsb"):
        cells = [root / "cells" / name / f"seed{i}.json" for i in (1, 2)]
        docs = [evaluate_cell(root / "preds-model", TASKS[name], c, None, None, {}) for c in cells]
        files = [Path(predictions_path(c)) for c in cells]
        assert files[0].read_bytes() == files[1].read_bytes()
        frame = read_predictions(files[0])
        for split, metrics in docs[0]["metrics"].items():
            rows = split_rows(frame, split, files[0])
            assert len(rows) == TINY.max_eval_examples  # the capped rows the cell scored
            y, p = rows["label"].to_numpy(), rows["prediction"].to_numpy()
            for metric, value in metrics.items():
                assert 100.0 * float(METRIC_FUNCTIONS[metric](y, p)) == value, (name, metric)
        kinds = frame["prediction"].dtype.kind, frame["label"].dtype.kind
        assert kinds == (("i", "i") if name == "rte" else ("f", "f"))
