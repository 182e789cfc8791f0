"""The paired bootstrap behind the tables' intervals: the vectorised metrics equal scikit-learn and
scipy on every resample, noise gives a wide interval around 0 and a real gap a small p, and Holm's
adjustment matches a hand-worked example."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from mtdnn.report import significance
from mtdnn.report.resampled import RESAMPLED, column_score
from mtdnn.report.significance import (
    GLUE_ROW,
    DevSet,
    bootstrap_p,
    counts,
    holm,
    paired_bootstrap,
    replicate_deltas,
    resample_indices,
)

SKLEARN = {
    "accuracy": accuracy_score,
    "f1": lambda y, p: f1_score(y, p, pos_label=1, average="binary", zero_division=0.0),
    "mcc": matthews_corrcoef,
    "pearson": lambda y, p: pearsonr(y, p).statistic,
    "spearman": lambda y, p: spearmanr(y, p).statistic,
}


def brute(y, p, metrics, indices) -> np.ndarray:
    """The column score on every resample, one scikit-learn/scipy call per replicate and metric."""
    return np.array(
        [np.mean([100 * SKLEARN[m](y[i], p[i]) for m in metrics]) for i in indices], dtype=float
    )


def tiny(kind: str, n: int = 23, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Gold labels and two prediction vectors: binary, three-class, or scores with many ties."""
    rng = np.random.default_rng(seed)
    if (
        kind == "regression"
    ):  # STS-B-like: gold on a 0.2 grid, predictions rounded (ties both sides)
        y = rng.integers(0, 26, n) / 5
        return y, np.round(y + rng.normal(0, [[1.0], [2.0]], (2, n)), 1)
    classes = 2 if kind == "binary" else 3
    y = rng.integers(0, classes, n)
    flip = rng.random((2, n)) < [[0.2], [0.45]]
    return y, np.where(flip, rng.integers(0, classes, (2, n)), y)


@pytest.mark.parametrize(
    ("kind", "metric"),
    [
        ("binary", "accuracy"),
        ("binary", "f1"),
        ("binary", "mcc"),
        ("three", "mcc"),
        ("three", "accuracy"),
        ("regression", "pearson"),
        ("regression", "spearman"),
    ],
)
def test_vectorised_metrics_equal_a_loop_over_resamples(kind, metric):
    y, p = tiny(kind)
    indices = np.concatenate(list(resample_indices(7, "dev", len(y), 300)))
    fast = RESAMPLED[metric](y, p, counts(indices, len(y)))
    for j in range(len(p)):
        np.testing.assert_allclose(fast[j], brute(y, p[j], [metric], indices), atol=1e-9)
    # the observed value (every row once) is the plain metric
    once = RESAMPLED[metric](y, p, np.ones((1, len(y))))[:, 0]
    np.testing.assert_allclose(once, [100 * SKLEARN[metric](y, q) for q in p], atol=1e-9)


def test_degenerate_resamples_score_as_scikit_learn_and_scipy_do():
    """A resample with one gold class: MCC 0 and F1 0 (scikit-learn); a constant side: NaN."""
    y, p = np.array([0, 0, 1, 1]), np.array([[0, 1, 0, 1]])
    one_class = np.array([[2.0, 2.0, 0.0, 0.0]])  # rows 0 and 1 only: gold all 0
    assert RESAMPLED["mcc"](y, p, one_class)[0, 0] == 0.0
    assert RESAMPLED["f1"](y, np.array([[0, 0, 1, 1]]), one_class)[0, 0] == 0.0
    assert np.isnan(RESAMPLED["pearson"](y.astype(float), p.astype(float), one_class)[0, 0])


def glue_like(seed: int = 0) -> list[DevSet]:
    """Five tiny dev sets, two models, two seeds: MNLI's two splits as one task, MRPC and STS-B
    with two metrics each, CoLA by MCC."""
    rng = np.random.default_rng(seed)
    specs = [
        ("cola", "cola", ("mcc",), "binary"),
        ("mrpc", "mrpc", ("accuracy", "f1"), "binary"),
        ("stsb", "stsb", ("pearson", "spearman"), "regression"),
        ("mnli-m", "mnli", ("accuracy",), "three"),
        ("mnli-mm", "mnli", ("accuracy",), "three"),
    ]
    out = []
    for i, (name, row, metrics, kind) in enumerate(specs):
        y, _ = tiny(kind, n=17 + 3 * i, seed=seed * 10 + i)
        preds = {}
        for model in ("a", "b"):
            for s in (1, 2):
                _, p = tiny(kind, n=len(y), seed=int(rng.integers(1 << 30)))
                preds[(model, s)] = np.where(rng.random(len(y)) < 0.6, y, p[0])
        out.append(DevSet(name, row, metrics, y, preds))
    return out


def test_paired_deltas_equal_a_loop_over_tasks_seeds_and_resamples(monkeypatch):
    """Every step at once: same resampled rows for both models and both seeds, the seed means
    differenced, MNLI-m/-mm averaged into one task, and the GLUE score over the tasks. A chunk
    of two replicates gives the same replicates as one chunk."""
    devsets, reps = glue_like(), 120
    monkeypatch.setattr(significance, "CHUNK_ENTRIES", 40)
    got = replicate_deltas(devsets, "a", "b", {"cola", "mrpc", "stsb", "mnli"}, reps, seed=5)
    per_set = []
    for d in devsets:
        idx = np.concatenate(list(resample_indices(5, d.name, len(d.labels), reps)))
        score = {k: brute(d.labels, p, d.metrics, idx) for k, p in d.preds.items()}
        per_set.append((score["a", 1] + score["a", 2]) / 2 - (score["b", 1] + score["b", 2]) / 2)
    tasks = {
        "cola": per_set[0],
        "mrpc": per_set[1],
        "stsb": per_set[2],
        "mnli": (per_set[3] + per_set[4]) / 2,
    }
    assert list(got) == [*tasks, GLUE_ROW]
    for task, expected in tasks.items():
        np.testing.assert_allclose(got[task][1], expected, atol=1e-9)
    np.testing.assert_allclose(got[GLUE_ROW][1], np.mean(list(tasks.values()), axis=0), atol=1e-9)
    monkeypatch.setattr(significance, "CHUNK_ENTRIES", 1 << 21)
    again = replicate_deltas(devsets, "a", "b", {"cola", "mrpc", "stsb", "mnli"}, reps, seed=5)
    # the same replicates (the sums may round differently in the last bit: BLAS blocks by shape)
    np.testing.assert_allclose(again[GLUE_ROW][1], got[GLUE_ROW][1], atol=1e-9)


def flipped(base: np.ndarray, k: int, rng) -> np.ndarray:
    """``base`` with ``k`` random rows given another class (of three)."""
    out = base.copy()
    rows = rng.choice(len(base), k, replace=False)
    out[rows] = (out[rows] + rng.integers(1, 3, k)) % 3
    return out


def three_seeds(y: np.ndarray, a: list, b: list) -> DevSet:
    preds = {("mtdnn", s): p for s, p in enumerate(a, 1)} | {
        ("base", s): p for s, p in enumerate(b, 1)
    }
    return DevSet("rte", "rte", ("accuracy",), y, preds)


def test_noise_alone_gives_an_interval_around_zero_and_a_large_p():
    """Both models are the same predictions with 12 of 800 rows flipped at random on each side
    (new flips per seed): the difference is noise."""
    rng = np.random.default_rng(11)
    y = rng.integers(0, 3, 800)
    shared = np.where(rng.random(800) < 0.75, y, (y + 1) % 3)
    a = [flipped(shared, 12, rng) for _ in range(3)]
    b = [flipped(shared, 12, rng) for _ in range(3)]
    row = paired_bootstrap([three_seeds(y, a, b)], "mtdnn", "base").iloc[0]
    assert row["ci_low"] < 0 < row["ci_high"], row
    assert row["p"] > 0.3, row
    assert abs(row["delta"]) < 1.0


def test_a_real_gap_gives_a_small_p_and_an_interval_without_zero():
    rng = np.random.default_rng(12)
    y = rng.integers(0, 3, 800)
    a = [np.where(rng.random(800) < 0.85, y, (y + 1) % 3) for _ in range(3)]
    b = [np.where(rng.random(800) < 0.70, y, (y + 1) % 3) for _ in range(3)]
    row = paired_bootstrap([three_seeds(y, a, b)], "mtdnn", "base").iloc[0]
    assert row["p"] < 0.01 and row["p_holm"] < 0.01, row
    assert 0 < row["ci_low"] < row["delta"] < row["ci_high"], row
    assert 12 < row["delta"] < 18  # 85 % against 70 %


def test_identical_models_differ_by_exactly_nothing():
    y = np.arange(30) % 2
    p = [np.roll(y, 1)] * 2
    row = paired_bootstrap([three_seeds(y, p, p)], "mtdnn", "base", replicates=200).iloc[0]
    assert (row["delta"], row["ci_low"], row["ci_high"], row["p"]) == (0.0, 0.0, 0.0, 1.0)


def test_bootstrap_p_counts_both_tails_with_the_plus_one():
    # 3 of 99 replicates at or below 0: p = 2 × (1 + 3) / 100
    deltas = np.r_[-1.0, -2.0, 0.0, np.arange(1.0, 97.0)]
    assert bootstrap_p(deltas) == pytest.approx(0.08)
    assert bootstrap_p(-deltas) == pytest.approx(0.08)
    assert bootstrap_p(np.full(50, 3.0)) == pytest.approx(2 / 51)


def test_holm_matches_a_hand_worked_example():
    # sorted: 0.005×4 = 0.02, 0.01×3 = 0.03, 0.03×2 = 0.06, 0.04×1 = 0.04 → kept monotone: 0.06
    got = holm([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(got, [0.03, 0.06, 0.06, 0.02])
    # capped at 1; NaN stays NaN and is not in the family (m = 2 here)
    np.testing.assert_allclose(holm([0.6, np.nan, 0.2]), [0.6, np.nan, 0.4])
    np.testing.assert_allclose(holm([0.7, 0.9]), [1.0, 1.0])


def test_dev_sets_without_a_common_seed_are_an_error():
    y = np.zeros(5, dtype=int)
    dev = DevSet("rte", "rte", ("accuracy",), y, {("mtdnn", 1): y, ("base", 2): y})
    with pytest.raises(significance.MtdnnError, match="dev set rte has no seed with both"):
        paired_bootstrap([dev], "mtdnn", "base", replicates=10)


def test_column_score_averages_a_columns_metrics():
    y, p = tiny("binary")
    w = np.ones((1, len(y)))
    both = column_score(y, p, ("accuracy", "f1"), w)
    np.testing.assert_allclose(
        both, (RESAMPLED["accuracy"](y, p, w) + RESAMPLED["f1"](y, p, w)) / 2
    )


# The tables ----------------------------------------------------------------------------------
GLUE_TASKS = {  # task: {split: (metrics, kind)}, as real cells store them
    "cola": {"dev": (("mcc", "accuracy"), "binary")},
    "mrpc": {"dev": (("accuracy", "f1"), "binary")},
    "stsb": {"dev": (("pearson", "spearman"), "regression")},
    "mnli": {"dev_matched": (("accuracy",), "three"), "dev_mismatched": (("accuracy",), "three")},
    "rte": {"dev": (("accuracy",), "binary")},
}


def predictions(kind: str, y: np.ndarray, right: float, rng) -> np.ndarray:
    """Predictions that get about ``right`` of the rows (a noisy score for regression)."""
    if kind == "regression":
        return (y + rng.normal(0, 3 * (1 - right), len(y))).astype(np.float32)
    classes = 2 if kind == "binary" else 3
    wrong = (y + rng.integers(1, classes, len(y))) % classes
    return np.where(rng.random(len(y)) < right, y, wrong)


def write_cell(root, coords: dict, splits: dict, preds: bool = True):
    """A cell JSON whose metrics are those of ``splits`` ({split: (metrics, y, p)}), with its
    predictions file beside it (as evaluate_cell writes them) unless ``preds`` is False."""
    from mtdnn.cellpreds import predictions_path, write_predictions
    from mtdnn.fileio import write_json

    cell = root / "-".join(str(v) for v in coords.values()) / "seed.json"
    metrics = {
        s: {m: 100 * float(SKLEARN[m](y, p)) for m in ms} for s, (ms, y, p) in splits.items()
    }
    if preds:
        uids = {s: ([f"{s}-{i}" for i in range(len(y))], y, p) for s, (_, y, p) in splits.items()}
        write_predictions(predictions_path(cell), uids)
    write_json(cell, {"cell": coords, "metrics": metrics})
    return cell


@pytest.fixture
def glue_cells(tmp_path):
    """Two seeds of both baselines, MT-DNN (clearly better than standard fine-tuning on RTE alone,
    and than equal exposure on MRPC alone) and MT-DNN without fine-tuning (whose cells have no
    predictions: no comparison reads them)."""
    rng = np.random.default_rng(0)
    gold = {
        (t, s): tiny(kind, n=300, seed=i)[0]
        for i, (t, splits) in enumerate(GLUE_TASKS.items())
        for s, (_, kind) in splits.items()
    }
    cells = []
    share = {("mtdnn", "rte"): 0.9, ("equal", "rte"): 0.9, ("equal", "mrpc"): 0.5}
    for model in ("base", "equal", "mtdnn", "mtl"):
        for seed in ("1", "2"):
            for task, splits in GLUE_TASKS.items():
                right = share.get((model, task), 0.7)
                made = {
                    s: (ms, gold[task, s], predictions(kind, gold[task, s], right, rng))
                    for s, (ms, kind) in splits.items()
                }
                coords = {"table": "glue", "model": model, "seed": seed, "task": task}
                cells.append(write_cell(tmp_path / "cells", coords, made, preds=model != "mtl"))
    return cells


def report(cli, tmp_path, table: str, cells) -> tuple:
    md, metrics = tmp_path / f"{table}.md", tmp_path / f"{table}.json"
    argv = ["report", table, *cells, "--csv", tmp_path / f"{table}.csv", "--markdown", md]
    return cli([*argv, "--metrics", metrics, "--replicates", "2000"], tmp_path), md, metrics


def test_the_glue_table_gives_each_task_an_interval(cli, tmp_path, glue_cells):
    import json

    r, md, metrics = report(cli, tmp_path, "glue", glue_cells)
    assert r.returncode == 0, r.stderr
    text = md.read_text()
    standard = "MT-DNN − standard fine-tuning, paired bootstrap over dev examples (2,000 resamples"
    equal = "MT-DNN − equal exposure, paired bootstrap over dev examples (2,000 resamples"
    assert standard in text and equal in text and text.index(standard) < text.index(equal)
    assert "MT-DNN − standard fine-tuning, paired by seed:" in text
    assert "MT-DNN − equal exposure, paired by seed:" in text
    section = text.split(standard)[1].split(equal)[0]
    lines = [line for line in section.splitlines() if line.startswith("| ")][1:]  # no header
    rows = {line.split(" | ")[0].strip("| "): line for line in lines}
    assert list(rows) == ["CoLA", "MRPC", "STS-B", "MNLI", "RTE", "GLUE score"]
    assert "| MNLI | acc, mean of MNLI-m and MNLI-mm |" in rows["MNLI"]
    assert "| STS-B | P/S |" in rows["STS-B"] and "| CoLA | MCC |" in rows["CoLA"]
    flat = json.loads(metrics.read_text())
    rte = {k.split("/")[-1]: v for k, v in flat.items() if k.startswith("bootstrap/base/rte/")}
    assert rte["p_holm"] < 0.01 and 0 < rte["ci_low"] < rte["delta"] < rte["ci_high"]
    # the interval is around the table's own paired mean, for a task and for the GLUE score
    assert rte["delta"] == pytest.approx(flat["delta/base/rte/accuracy"], abs=1e-3)
    glue = flat["bootstrap/base/glue_score/delta"]
    assert glue == pytest.approx(flat["delta/base/GLUE score"], abs=1e-3)
    for task in ("cola", "mrpc", "stsb", "mnli"):  # same accuracy by design: no small Holm p
        assert flat[f"bootstrap/base/{task}/p_holm"] > 0.01
    # each baseline is its own family: equal exposure loses on MRPC only
    assert flat["bootstrap/equal/mrpc/p_holm"] < 0.01 and flat["bootstrap/equal/mrpc/ci_low"] > 0
    for task in ("cola", "rte", "stsb", "mnli"):
        assert flat[f"bootstrap/equal/{task}/p_holm"] > 0.01


def test_cells_without_predictions_get_a_notice_and_stale_ones_an_error(cli, tmp_path, glue_cells):
    from mtdnn.cellpreds import COLUMNS, predictions_path, read_predictions, write_predictions

    first = Path(predictions_path(glue_cells[0]))
    kept = first.read_bytes()
    first.unlink()
    r, md, _ = report(cli, tmp_path, "glue", glue_cells)
    assert r.returncode == 0, r.stderr
    assert (
        f"No paired-bootstrap intervals: 1 cell(s) have no dev predictions beside them (built "
        f"before cells kept them), e.g. {glue_cells[0]} has no {first.name};" in md.read_text()
    )
    first.write_bytes(kept)
    rte = next(c for c in glue_cells if "-mtdnn-1-rte" in str(c))
    frame = read_predictions(predictions_path(rte))
    shuffled = frame.sample(frac=1.0, random_state=0)  # the same rows in another order: lined up
    write_predictions(predictions_path(rte), {"dev": tuple(shuffled[c] for c in COLUMNS[1:])})
    again, md_again, _ = report(cli, tmp_path, "glue", glue_cells)
    assert again.returncode == 0 and "| RTE | acc |" in md_again.read_text()
    flipped = frame.assign(prediction=1 - frame["prediction"])  # not the cell's predictions
    write_predictions(predictions_path(rte), {"dev": tuple(flipped[c] for c in COLUMNS[1:])})
    r, _, _ = report(cli, tmp_path, "glue", glue_cells)
    assert r.returncode == 2
    assert r.stderr.startswith(f"mtdnn: error: {predictions_path(rte)}: gives dev accuracy ")
    assert f"but its cell {rte} says" in r.stderr and r.stderr.count("\n") == 1


def test_the_adaptation_table_gives_each_size_and_split_an_interval(cli, tmp_path):
    import json

    rng = np.random.default_rng(1)
    gold = {s: tiny("three", n=400, seed=i)[0] for i, s in enumerate(("dev", "test"))}
    cells = []
    for init in ("base", "mtdnn"):
        for n, size in ((549, "n549"), (5493, "n5493")):
            for seed in (1, 2, 3):
                right = 0.8 if (init, n) == ("mtdnn", 549) else 0.6
                made = {
                    s: (("accuracy",), y, predictions("three", y, right, rng))
                    for s, y in gold.items()
                }
                info = {"table": "adapt", "task": "snli", "init": init, "size": size, "n": n}
                cells.append(write_cell(tmp_path / "cells", info | {"seed": seed}, made))
    r, md, metrics = report(cli, tmp_path, "adapt", cells)
    assert r.returncode == 0, r.stderr
    section = md.read_text().split("MT-DNN init − base init, paired bootstrap")[1]
    lines = [line for line in section.splitlines() if line.startswith("| ")][1:]  # no header
    places = [line.split(" | ")[:3] for line in lines]
    assert places == [["| snli", "dev", "549"], ["| snli", "dev", "5493"],
                      ["| snli", "test", "549"], ["| snli", "test", "5493"]]  # fmt: skip
    flat = json.loads(metrics.read_text())
    assert flat["adapt_bootstrap/snli/n549/p_holm"] < 0.01
    assert flat["adapt_bootstrap/snli-test/n5493/p_holm"] > 0.01
    assert flat["adapt_bootstrap/snli/n549/delta"] == pytest.approx(
        flat["adapt_delta/snli/n549"], abs=1e-3
    )


def test_degenerate_cells_are_those_at_or_below_the_majority_class():
    """A cell that predicts the majority class (or a constant score) is named with its seed;
    one that learned is not; the majority's score is the column's own (MRPC: acc and F1)."""
    from mtdnn.report.degenerate import degenerate_cells, majority_score

    rng = np.random.default_rng(0)
    y = np.array([1] * 68 + [0] * 32)  # MRPC-like: the majority class is the positive one
    learned = np.where(rng.random(100) < 0.9, y, 1 - y)
    binary = DevSet("mrpc", "mrpc", ("accuracy", "f1"), y, {
        ("base", 1): np.ones(100, dtype=int), ("base", 2): learned, ("mtdnn", 1): learned,
    })  # fmt: skip
    assert majority_score(binary) == pytest.approx((68.0 + 100 * 2 * 0.68 / 1.68) / 2)
    scores = rng.random(50) * 5
    regression = DevSet("stsb", "stsb", ("pearson", "spearman"), scores, {
        ("base", 1): np.full(50, 2.5), ("mtdnn", 1): scores + rng.normal(0, 0.5, 50),
    })  # fmt: skip
    low = degenerate_cells([binary, regression], {"base": "standard fine-tuning"})
    assert low[["model", "column"]].values.tolist() == [
        ["standard fine-tuning", "mrpc"],
        ["standard fine-tuning", "stsb"],
    ]
    assert low["per seed"].iloc[0].startswith("1: 74.5, 2: ")  # the majority's own score, seed 1
    assert low["majority class"].tolist() == ["74.5", "0.0"]
