"""Custom tasks from `data.task_files` reach every verb: one multi-task model with two custom tasks
through train-mtl, evaluate, predict and submit."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml
from fixtures import read_tsv, write_tsv
from helpers import REPO
from tiny_runs import tiny_encoder, train_mtl_args

TASKS = """\
# A fact-checking task: does the evidence support the claim? (two labels, sentence pairs)
claims:
  type: classification
  labels: [refuted, supported]
  metrics: [accuracy, f1]
  positive_label: supported
  local:
    dir: Claims
    columns: {uid: id, text_a: evidence, text_b: claim, label: verdict}
    splits:
      train: {file: train.tsv}
      dev: {file: dev.tsv}
      test: {file: test.tsv, columns: {uid: id, text_a: evidence, text_b: claim}}
# Graded similarity of two sentences (regression)
similarity:
  type: regression
  label_range: [0.0, 5.0]
  metrics: [pearson, spearman]
  local:
    dir: Similarity
    columns: {uid: pair, text_a: first, text_b: second, label: score}
    splits:
      train: {file: train.tsv}
      dev: {file: dev.tsv}
      test: {file: test.tsv, columns: {uid: pair, text_a: first, text_b: second}}
"""
VERDICT = {"entailment": "supported", "not_entailment": "refuted"}


def claims_data(root: Path, glue: Path) -> None:
    """Real RTE pairs in the custom task's own layout and label names."""
    for split, n in (("train", 40), ("dev", 16), ("test", 6)):
        _, rows = read_tsv(glue / "RTE" / f"{split}.tsv", n)
        if split == "test":
            write_tsv(root / "Claims" / "test.tsv", ["id", "evidence", "claim"], rows)
        else:
            rows = [[i, s1, s2, VERDICT[y]] for i, s1, s2, y in rows]
            write_tsv(
                root / "Claims" / f"{split}.tsv", ["id", "evidence", "claim", "verdict"], rows
            )


def similarity_data(root: Path, glue: Path) -> None:
    """Real STS-B pairs and gold scores, three columns."""
    for split, n in (("train", 40), ("dev", 16), ("test", 6)):
        _, rows = read_tsv(glue / "STS-B" / f"{split}.tsv", n)
        header = ["pair", "first", "second"] + (["score"] if split != "test" else [])
        cols = [0, 7, 8] + ([9] if split != "test" else [])
        write_tsv(
            root / "Similarity" / f"{split}.tsv", header, [[r[c] for c in cols] for r in rows]
        )


def project(tmp: Path, glue: Path) -> Path:
    data = tmp / "mydata"
    claims_data(data, glue)
    similarity_data(data, glue)
    (tmp / "my_tasks.yaml").write_text(TASKS)
    params = yaml.safe_load((REPO / "mtdnn/profiles/smoke.yaml").read_text())
    params["encoder"] = str(tiny_encoder(tmp / "tiny-bert"))
    params["data"].update(glue_dir=str(data), task_files=["my_tasks.yaml"], sources={})
    params["mtl"]["tasks"] = params["finetune"]["tasks"] = ["claims", "similarity"]
    params["adapt"]["datasets"] = []
    (tmp / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return Path(params["encoder"])


def ok(result) -> None:
    assert result.returncode == 0, result.stderr[-3000:]


def test_two_custom_tasks_through_train_evaluate_predict_submit(tmp_path, glue_dir, cli):
    encoder = project(tmp_path, glue_dir)
    ok(cli(["check"], tmp_path))
    for task in ("claims", "similarity"):
        ok(cli(["prepare", "--task", task], tmp_path))
        ok(cli(["tokenize", "--task", task], tmp_path))
    cfg = json.dumps({"batch_size": 8, "epochs": 1, "eval_each_epoch": False, "lr": 1e-3})
    ok(cli([*train_mtl_args(encoder, 1, cfg, "claims,similarity"), "--out", "mtl"], tmp_path))

    for task, metrics in (("claims", {"accuracy", "f1"}), ("similarity", {"pearson", "spearman"})):
        ok(cli(["evaluate", "--model", "mtl", "--task", task, "--out", f"{task}.json"], tmp_path))
        cell = json.loads((tmp_path / f"{task}.json").read_text())
        assert set(cell["metrics"]["dev"]) == metrics
        assert cell["cell"]["task"] == task

    r = cli(["predict", "--model", "mtl", "--task", "claims", "--text-a", "The cat sat on the mat.",
             "--text-b", "A cat is sitting."], tmp_path)  # fmt: skip
    ok(r)
    assert r.stdout.splitlines()[1].split("\t")[1] in {"refuted", "supported"}, r.stdout
    _, test_pairs = read_tsv(glue_dir / "STS-B" / "test.tsv", 6)
    pairs = write_tsv(tmp_path / "pairs.tsv", ["text_a", "text_b"], [r[7:9] for r in test_pairs])
    ok(cli(["predict", "--model", "mtl", "--task", "similarity", "--input", pairs,
            "--out", "scores.tsv"], tmp_path))  # fmt: skip
    scores = pd.read_csv(tmp_path / "scores.tsv", sep="\t")
    assert len(scores) == 6 and scores["prediction"].dtype.kind == "f"

    ok(cli(["submit", "--model", "mtl", "--task", "claims", "--out", "submission"], tmp_path))
    sub = pd.read_csv(tmp_path / "submission" / "claims-test.tsv", sep="\t", dtype=str)
    _, test_rows = read_tsv(glue_dir / "RTE" / "test.tsv", 6)
    assert list(sub.columns) == ["index", "prediction"]
    assert list(sub["index"]) == [r[0] for r in test_rows]
    assert set(sub["prediction"]) <= {"refuted", "supported"}
