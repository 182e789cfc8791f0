"""Metrics against values worked out by hand."""

import math

import numpy as np
import pytest
import torch

from mtdnn.errors import MtdnnError
from mtdnn.metrics import compute_metrics, glue_score
from mtdnn.tasks import load_tasks

TASKS = load_tasks()


def test_mcc_of_a_known_confusion_matrix():
    # TP=3, TN=2, FP=1, FN=2  →  MCC = (3·2 − 1·2) / sqrt(4·5·3·4) = 4 / sqrt(240)
    labels = [1, 1, 1, 1, 1, 0, 0, 0]
    preds = [1, 1, 1, 0, 0, 0, 0, 1]
    scores = compute_metrics(TASKS["cola"], preds, labels)
    assert set(scores) == {"mcc", "accuracy"}
    assert scores["mcc"] == pytest.approx(100 * 4 / math.sqrt(240))
    assert scores["accuracy"] == pytest.approx(100 * 5 / 8)


def test_binary_f1_uses_label_one_as_positive():
    # TP=3, FP=1, FN=2: precision 3/4, recall 3/5, F1 = 2·0.75·0.6/1.35 = 2/3
    labels = np.array([1, 1, 1, 1, 1, 0, 0, 0])
    preds = np.array([1, 1, 1, 0, 0, 0, 0, 1])
    scores = compute_metrics(TASKS["mrpc"], preds, labels)
    assert scores["f1"] == pytest.approx(100 * 2 / 3)
    flipped = compute_metrics(TASKS["mrpc"], 1 - preds, 1 - labels)["f1"]  # positive is now 0
    assert flipped == pytest.approx(100 * 4 / 7)  # TP=2, FP=2, FN=1: 2TP / (2TP + FP + FN)


def test_pearson_and_spearman_of_known_pairs():
    # x = 1..4, y = (1, 3, 2, 4): both centred sums give r = 8/10; ranks equal values, so ρ = 0.8
    scores = compute_metrics(TASKS["stsb"], [1.0, 3.0, 2.0, 4.0], [1.0, 2.0, 3.0, 4.0])
    assert scores["pearson"] == pytest.approx(80.0)
    assert scores["spearman"] == pytest.approx(80.0)
    # a monotone but nonlinear map: spearman is perfect, pearson is not
    x = np.array([1.0, 2.0, 3.0, 4.0])
    s = compute_metrics(TASKS["stsb"], x**3, x)
    assert s["spearman"] == pytest.approx(100.0) and s["pearson"] < 99.0


def test_accepts_tensors_and_multiclass_accuracy():
    scores = compute_metrics(TASKS["mnli"], torch.tensor([0, 1, 2, 2]), torch.tensor([0, 1, 2, 1]))
    assert scores == {"accuracy": pytest.approx(75.0)}


def test_length_mismatch_and_empty_are_errors():
    with pytest.raises(MtdnnError, match="3 predictions for 2 labels"):
        compute_metrics(TASKS["rte"], [0, 1, 1], [0, 1])
    with pytest.raises(MtdnnError, match="no examples"):
        compute_metrics(TASKS["rte"], [], [])


def test_glue_score_averages_multi_metric_tasks_first():
    cells = {
        "stsb": {"pearson": 90.0, "spearman": 80.0},  # → 85
        "rte": {"accuracy": 70.0},
        "mnli-m": {"accuracy": 84.0},
        "mnli-mm": {"accuracy": 83.0},
    }
    assert glue_score(cells) == pytest.approx((85 + 70 + 84 + 83) / 4)
    flat = (90 + 80 + 70 + 84 + 83) / 5  # what a flat mean over metrics would give instead
    assert glue_score(cells) != pytest.approx(flat)


def test_glue_score_rejects_empty_input():
    with pytest.raises(MtdnnError):
        glue_score({})
    with pytest.raises(MtdnnError, match="'rte' has no metrics"):
        glue_score({"rte": {}})
