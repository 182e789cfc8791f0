"""Rows without a label after `prepare`: evaluation scores every labelled split or stops, and a
domain-adaptation draw never counts "no label" as a class. Real RTE and SNLI rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fixtures import read_tsv
from tiny_runs import build_project, tiny_encoder

from mtdnn.adapt import class_ids, draw_rows
from mtdnn.config import TrainConfig
from mtdnn.errors import MtdnnError
from mtdnn.evaluate import evaluate_cell
from mtdnn.paths import canonical_dir, tokenized_dir
from mtdnn.tasks import load_tasks
from mtdnn.tokenize import tokenize_task
from mtdnn.train import train

TASKS = load_tasks()
CFG = TrainConfig(max_train_examples=32, batch_size=8, epochs=1, precision="fp32")


@pytest.fixture(scope="module")
def model(tmp_path_factory, glue_dir):
    """A tiny RTE model, and RTE prepared and tokenized from the real GLUE files."""
    root = tmp_path_factory.mktemp("labels")
    encoder = tiny_encoder(root / "tiny-bert")
    build_project(root, glue_dir, encoder, tasks=("rte",))
    with pytest.MonkeyPatch.context() as m:
        m.chdir(root)
        train([TASKS["rte"]], str(encoder), 64, CFG, 1, root / "model")
    return root, encoder


def unlabel_dev_row(root, encoder, row: int) -> None:
    """Blank one dev label in the canonical data (as a hand edit or an older prepare would leave
    it) and tokenize again."""
    canonical = root / canonical_dir("rte")
    dev = pd.read_parquet(canonical / "dev.parquet")
    dev.loc[row, "label"] = None
    dev.to_parquet(canonical / "dev.parquet", index=False)
    out = root / tokenized_dir(str(encoder), 64, "rte")
    tokenize_task(TASKS["rte"], canonical, out, str(encoder), 64)


def test_evaluate_scores_labelled_splits_and_stops_on_a_missing_label(model, monkeypatch):
    root, encoder = model
    monkeypatch.chdir(root)
    doc = evaluate_cell(root / "model", TASKS["rte"], root / "a.json", ["dev", "test"], None, {})
    # dev is scored; GLUE's unlabelled test split gets predictions only, no metric
    assert set(doc["metrics"]) == {"dev"}
    assert 0 <= doc["metrics"]["dev"]["accuracy"] <= 100
    unlabel_dev_row(root, encoder, 5)
    with pytest.raises(MtdnnError, match=r"dev\.arrow \(labelled split of task rte\): 1 rows have"):
        evaluate_cell(root / "model", TASKS["rte"], root / "b.json", ["dev"], None, {})
    assert not (root / "b.json").exists()  # never a cell without its metric


@pytest.fixture(scope="module")
def snli_labels(derived_dir) -> list[str]:
    _, rows = read_tsv(derived_dir / "SNLI" / "train_subset.tsv")
    return [r[2] for r in rows]


def test_subsample_command_and_cell_draw_the_same_rows(snli_labels):
    """`mtdnn subsample` reads label strings, an adaptation cell label ids: same classes, same
    rows (sorted label strings would put contradiction first, and draw other rows)."""
    snli = TASKS["snli"]
    strings = np.array(snli_labels, dtype=object)
    ids = np.array([snli.labels.index(x) for x in snli_labels], dtype=np.int64)
    assert np.array_equal(class_ids(snli, strings), ids)
    for size, seed in (("n549", 1), ("n5493", 3), ("p0.01", 2)):
        assert np.array_equal(
            draw_rows(snli, strings, size, seed), draw_rows(snli, ids, size, seed)
        )


def test_a_row_without_a_label_is_never_a_class(snli_labels):
    snli = TASKS["snli"]
    ids = np.array([snli.labels.index(x) for x in snli_labels], dtype=np.int64)
    ids[[10, 500]] = -1  # what tokenize writes for a missing label
    with pytest.raises(MtdnnError, match="2 of 24951 training rows have no label"):
        draw_rows(snli, ids, "n549", 1)
    strings = np.array(snli_labels, dtype=object)
    strings[7] = None
    with pytest.raises(MtdnnError, match="1 of 24951 training rows have no label"):
        draw_rows(snli, strings, "n549", 1)
