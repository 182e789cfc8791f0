"""`mtdnn prepare` on the real GLUE files (official row counts and format quirks), on fixtures in the
official MNLI/QQP/SNLI/SciTail formats, on a local Hub-style dataset repo, and via params' sources."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from fixtures import (
    MNLI_DEV_COLUMNS,
    MNLI_TEST_COLUMNS,
    MNLI_TRAIN_COLUMNS,
    jsonl_text,
    make_rte,
    read_tsv,
    snli_record,
    write_tsv,
)
from helpers import REPO

from mtdnn.errors import MtdnnError
from mtdnn.prepare import MANIFEST, prepare_task
from mtdnn.tasks import load_tasks

TASKS = load_tasks()

# Official GLUE sizes (train, dev, test); QNLI train is not obtainable offline; AX is test-only in
# GLUE, and its labelled diagnostic-full.tsv is our `dev`.
OFFICIAL = {
    "cola": {"train": 8551, "dev": 1043, "test": 1063},
    "sst2": {"train": 67349, "dev": 872, "test": 1821},
    "mrpc": {"train": 3668, "dev": 408, "test": 1725},
    "stsb": {"train": 5749, "dev": 1500, "test": 1379},
    "rte": {"train": 2490, "dev": 277, "test": 3000},
    "wnli": {"train": 635, "dev": 71, "test": 146},
    "qnli": {"dev": 5463, "test": 5463},
    "ax": {"dev": 1104, "test": 1104},
}


@pytest.fixture(scope="module")
def prepared(glue_dir, tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    """Prepare every task that has real data here, once for the module."""
    root = tmp_path_factory.mktemp("canonical")
    return {
        name: (root / name, prepare_task(TASKS[name], root / name, str(glue_dir)))
        for name in OFFICIAL
    }


def frame(prepared, task: str, split: str) -> pd.DataFrame:
    return pd.read_parquet(prepared[task][0] / f"{split}.parquet")


def sha256sums(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        out[str((path.parent / name).resolve())] = digest
    return out


def snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    """(mtime_ns, inode) of the directory and of every file in it."""
    entries = [directory, *sorted(directory.iterdir())]
    return {p.name: (p.stat().st_mtime_ns, p.stat().st_ino) for p in entries}


# --- real GLUE data ---------------------------------------------------------------------------------


@pytest.mark.parametrize("task", sorted(OFFICIAL))
def test_official_row_counts(prepared, task):
    out, manifest = prepared[task]
    assert {s: v["rows"] for s, v in manifest["splits"].items()} == OFFICIAL[task]
    for split, rows in OFFICIAL[task].items():
        df = frame(prepared, task, split)
        assert len(df) == rows
        assert list(df.columns[:4]) == ["uid", "text_a", "text_b", "label"]
        assert df["uid"].is_unique
        assert (df["text_a"].str.len() > 0).all()
        # no quoting: a stray '"' never swallows a tab or a newline into a text
        for col in ("text_a", "text_b"):
            texts = df[col].dropna()
            assert not texts.str.contains("[\t\n\r]", regex=True).any(), (task, split, col)
    if task == "qnli":
        assert manifest["unavailable"] == ["train"]


@pytest.mark.parametrize("task", sorted(OFFICIAL))
def test_labels_are_valid_and_test_is_unlabelled(prepared, task):
    spec = TASKS[task]
    for split in OFFICIAL[task]:
        labels = frame(prepared, task, split)["label"]
        labelled = split != "test"
        assert prepared[task][1]["splits"][split]["labelled"] is labelled
        if not labelled:
            assert labels.isna().all()
        elif task == "stsb":
            assert labels.dtype == "float64"
            assert labels.between(0.0, 5.0).all() and labels.notna().all()
        else:
            assert set(labels) <= set(spec.labels) and len(set(labels)) == len(spec.labels)


def test_manifest_records_sha256_of_every_raw_file(prepared, glue_dir):
    official = sha256sums(glue_dir / "SHA256SUMS")
    read = {}
    for task, (_, manifest) in prepared.items():
        assert manifest["task"] == task
        for split in OFFICIAL[task]:
            assert manifest["splits"][split]["source"] in manifest["files"]
        read |= manifest["files"]
    assert len(read) == 22  # 6 tasks x 3 files, QNLI dev and test, diagnostic(-full)
    for path, digest in read.items():
        assert official[str(Path(path).resolve())] == digest, path


def test_mrpc_bom_header(prepared, glue_dir):
    assert (glue_dir / "MRPC" / "train.tsv").read_bytes().startswith(b"\xef\xbb\xbfQuality\t")
    first = frame(prepared, "mrpc", "train").iloc[0]
    assert first["label"] == "1"
    assert first["text_a"] == (
        'Amrozi accused his brother , whom he called " the witness " , of deliberately '
        "distorting his evidence ."
    )
    assert first["text_b"].startswith('Referring to him as only " the witness " , Amrozi')
    assert not frame(prepared, "mrpc", "test")["uid"].str.startswith("\ufeff").any()


def test_cola_headerless_train_and_unterminated_dev(prepared, glue_dir):
    first = frame(prepared, "cola", "train").iloc[0]
    assert (first["text_a"], first["label"]) == (
        "Our friends won't buy this analysis, let alone the next one we propose.",
        "1",
    )
    assert first["text_b"] is None
    assert not (glue_dir / "CoLA" / "dev.tsv").read_bytes().endswith(b"\n")
    last = frame(prepared, "cola", "dev").iloc[-1]
    assert last["text_a"].endswith("Bill about himself.")
    assert frame(prepared, "cola", "test").iloc[0]["text_a"] == "Bill whistled past the house."


def test_crlf_diagnostic_full(prepared, glue_dir):
    assert b"\r\n" in (glue_dir / "diagnostic" / "diagnostic-full.tsv").read_bytes()
    dev = frame(prepared, "ax", "dev")
    for col in ("text_a", "text_b", "label"):
        assert not dev[col].str.contains("\r").any()
    assert set(dev["label"]) == {"entailment", "neutral", "contradiction"}
    assert dev.iloc[0][["text_a", "text_b", "label"]].tolist() == [
        "The cat sat on the mat.",
        "The cat did not sit on the mat.",
        "contradiction",
    ]
    # diagnostic.tsv has no trailing newline: its last row is still there
    assert frame(prepared, "ax", "test")["uid"].iloc[-1] == "1103"


@pytest.mark.parametrize("task", ["mrpc", "qnli", "rte", "stsb", "wnli"])
def test_unbalanced_quotes_do_not_merge_rows(prepared, glue_dir, task):
    spec = TASKS[task]
    for split in OFFICIAL[task]:
        raw = glue_dir / spec.local.dir / spec.local.splits[split].file
        lines = raw.read_text(encoding="utf-8-sig").splitlines()
        odd = [ln for ln in lines[1:] if ln.count('"') % 2]
        df = frame(prepared, task, split)
        assert len(df) == len(lines) - 1
        if odd:  # the row with an odd number of quotes is read as exactly that line
            fields = odd[0].split("\t")
            texts = set(df["text_a"]) | set(df["text_b"].dropna())
            assert any(f in texts for f in fields if '"' in f)


def test_second_run_is_a_noop(prepared, glue_dir):
    out, manifest = prepared["sst2"]
    before = snapshot(out)
    start = time.perf_counter()
    again = prepare_task(TASKS["sst2"], out, str(glue_dir))
    print(
        f"no-op prepare of SST-2 took {time.perf_counter() - start:.3f} s"
    )  # reported, not asserted
    assert again == manifest
    assert snapshot(out) == before
    assert not list(out.parent.glob(".*.tmp"))


def test_changed_source_is_noticed(tmp_path):
    glue = make_rte(tmp_path / "glue")
    out = tmp_path / "out"
    first = prepare_task(TASKS["rte"], out, str(glue))
    train = glue / "RTE" / "train.tsv"
    stat = train.stat()
    train.write_text(train.read_text().replace("Oil prices rise.", "Oil prices fall."))
    os.utime(train, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same mtime: only the hash differs
    second = prepare_task(TASKS["rte"], out, str(glue))
    assert second["files"][str(train)] != first["files"][str(train)]
    assert "Oil prices fall." in set(pd.read_parquet(out / "train.parquet")["text_b"])


def test_outputs_follow_the_umask(prepared):
    out, _ = prepared["rte"]
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask
    for name in ("train.parquet", MANIFEST):
        assert (out / name).stat().st_mode & 0o777 == 0o666 & ~umask, name


def test_cli_prepare_real_rte(cli, glue_dir, tmp_path):
    r = cli(
        ["prepare", "--task", "rte", "--glue-dir", glue_dir, "--out", tmp_path / "rte"], tmp_path
    )
    assert r.returncode == 0, r.stderr
    manifest = json.loads((tmp_path / "rte" / MANIFEST).read_text())
    assert {s: v["rows"] for s, v in manifest["splits"].items()} == OFFICIAL["rte"]


def test_cli_prepare_uses_glue_dir_env(cli, glue_dir, tmp_path):
    r = cli(["prepare", "--task", "wnli"], tmp_path, env={"GLUE_DIR": glue_dir})
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "data" / "canonical" / "wnli" / "train.parquet").is_file()


def test_cli_check_and_tasks_with_shipped_params(cli):
    r = cli(["check"], REPO)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr
    r = cli(["tasks"], REPO)
    assert r.returncode == 0
    assert {ln.split()[0] for ln in r.stdout.splitlines()} >= set(OFFICIAL) | {"mnli", "snli"}


# --- fixtures in the official formats of the tasks that are too large to keep here ---------------


def mnli_copy(derived: Path, glue: Path) -> tuple[dict, dict]:
    """GLUE's MNLI layout from real rows: train (12 columns), dev (16) and test (the first 10)."""
    header, train = read_tsv(derived / "MNLI" / "train_subset.glue.tsv", 30)
    assert header == MNLI_TRAIN_COLUMNS and all(len(r) == 12 for r in train)
    write_tsv(glue / "MNLI" / "train.tsv", MNLI_TRAIN_COLUMNS, train)
    splits = {"train": train}
    for kind in ("matched", "mismatched"):
        header, rows = read_tsv(derived / "MNLI" / f"dev_{kind}_sample1k.glue.tsv", 20)
        assert header == MNLI_DEV_COLUMNS and all(len(r) == 16 for r in rows)
        write_tsv(glue / "MNLI" / f"dev_{kind}.tsv", header, rows)
        # test files: the first 10 columns (no labels), as in GLUE's test_{matched,mismatched}.tsv
        write_tsv(glue / "MNLI" / f"test_{kind}.tsv", MNLI_TEST_COLUMNS, [r[:10] for r in rows])
        splits |= {f"dev_{kind}": rows, f"test_{kind}": rows}
    # per split checked: the source columns of (uid, text_a, text_b, label)
    return splits, {"train": (0, 8, 9, 11), "dev_mismatched": (0, 8, 9, 15)}


def qqp_copy(derived: Path, glue: Path) -> tuple[dict, dict]:
    """GLUE's QQP layout from real rows: train and dev with labels, test without."""
    header, train = read_tsv(derived / "QQP" / "train_subset.tsv", 40)
    assert header == ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"]
    _, dev = read_tsv(derived / "QQP" / "dev_sample1k.tsv", 25)
    write_tsv(glue / "QQP" / "train.tsv", header, train)
    write_tsv(glue / "QQP" / "dev.tsv", header, dev)
    write_tsv(
        glue / "QQP" / "test.tsv",
        ["id", "question1", "question2"],
        [[r[0], r[3], r[4]] for r in dev],
    )
    return {"train": train, "dev": dev, "test": dev}, {"train": (0, 3, 4, 5), "dev": (0, 3, 4, 5)}


@pytest.mark.parametrize("task, copy", [("mnli", mnli_copy), ("qqp", qqp_copy)])
def test_official_glue_format_of_the_large_tasks(task, copy, derived_dir, tmp_path):
    """MNLI and QQP, too large to keep whole, rebuilt in their official layouts from real rows."""
    splits, checked = copy(derived_dir, tmp_path / "glue")
    out = tmp_path / task
    manifest = prepare_task(TASKS[task], out, str(tmp_path / "glue"))
    assert {s: v["rows"] for s, v in manifest["splits"].items()} == {
        s: len(rows) for s, rows in splits.items()
    }
    for split, (uid, text_a, text_b, label) in checked.items():
        df = pd.read_parquet(out / f"{split}.parquet")
        rows = splits[split]
        assert df["uid"].tolist() == [r[uid] for r in rows]
        assert df["text_a"].tolist() == [r[text_a] for r in rows]
        assert df["text_b"].tolist() == [r[text_b] for r in rows]
        assert df["label"].tolist() == [r[label] for r in rows]
    assert set(pd.read_parquet(out / "train.parquet")["label"]) == set(TASKS[task].labels)
    for split in (s for s in splits if s.startswith("test")):
        assert pd.read_parquet(out / f"{split}.parquet")["label"].isna().all(), split


def test_snli_official_jsonl_drops_no_consensus(derived_dir, tmp_path):
    root = tmp_path / "glue"
    _, rows = read_tsv(derived_dir / "SNLI" / "dev_sample1k.glue.tsv", 30)
    records = [snli_record(r) for r in rows]
    assert set(records[0]) == {
        "annotator_labels", "captionID", "gold_label", "pairID", "sentence1",
        "sentence1_binary_parse", "sentence1_parse", "sentence2", "sentence2_binary_parse",
        "sentence2_parse",
    }  # fmt: skip
    # no annotator consensus: the official files mark these with gold_label "-"
    for i in (3, 17):
        records[i] = records[i] | {
            "gold_label": "-",
            "annotator_labels": [
                "neutral",
                "contradiction",
                "entailment",
                "neutral",
                "contradiction",
            ],
        }
    for split in ("train", "dev", "test"):
        path = root / "SNLI" / f"snli_1.0_{split}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(jsonl_text(records), encoding="utf-8")

    out = tmp_path / "snli"
    manifest = prepare_task(TASKS["snli"], out, str(root))
    assert {s: v["rows"] for s, v in manifest["splits"].items()} == {
        "train": 28,
        "dev": 28,
        "test": 28,
    }
    df = pd.read_parquet(out / "dev.parquet")
    kept = [r for i, r in enumerate(records) if i not in (3, 17)]
    assert df["uid"].tolist() == [r["pairID"] for r in kept]
    assert df["text_a"].tolist() == [r["sentence1"] for r in kept]
    assert df["label"].tolist() == [r["gold_label"] for r in kept]
    assert "-" not in set(df["label"])


def test_scitail_official_tsv_format(derived_dir, tmp_path):
    root = tmp_path / "data"
    _, rows = read_tsv(derived_dir / "SNLI" / "test.tsv", 30)
    lines = [[p, h, "entails" if lab == "entailment" else "neutral"] for p, h, lab in rows]
    base = root / "SciTailV1.1" / "tsv_format"
    for split in ("train", "dev", "test"):
        write_tsv(base / f"scitail_1.0_{split}.tsv", None, lines)  # headerless

    out = tmp_path / "scitail"
    manifest = prepare_task(TASKS["scitail"], out, str(root))
    assert {s: v["rows"] for s, v in manifest["splits"].items()} == {
        "train": 30,
        "dev": 30,
        "test": 30,
    }
    df = pd.read_parquet(out / "train.parquet")
    assert df[["text_a", "text_b", "label"]].values.tolist() == lines
    assert set(df["label"]) == {"entails", "neutral"}


def test_a_missing_train_split_is_a_notice(glue_dir, tmp_path, caplog):
    """QNLI's local copy has dev and test but no train.tsv: prepared, and said so."""
    with caplog.at_level("WARNING", logger="mtdnn.prepare"):
        manifest = prepare_task(TASKS["qnli"], tmp_path / "qnli", str(glue_dir))
    assert set(manifest["splits"]) == {"dev", "test"} and manifest["unavailable"] == ["train"]
    notices = [r.getMessage() for r in caplog.records if r.getMessage().startswith("notice:")]
    assert notices == [
        f"notice: task qnli has no train split here ({glue_dir}/QNLI/train.tsv not found; the Hub "
        "(nyu-mll/glue) is disabled (HF_HUB_OFFLINE/HF_DATASETS_OFFLINE))"
    ]


def test_ranking_task_refuses_glue_qnli_pairs(glue_dir, tmp_path):
    """GLUE's QNLI v2 grouped by question is not in ranking form: 2,738 of its 4,100 dev groups
    have one candidate and 1,398 no positive. qnli-rank says so instead of training on it."""
    with pytest.raises(MtdnnError) as error:
        prepare_task(TASKS["qnli-rank"], tmp_path / "qnli-rank", str(glue_dir))
    assert str(error.value) == (
        f"{glue_dir}/QNLI/dev.tsv: split 'dev' of task qnli-rank is not in ranking form: of 4100 "
        "groups, 2738 have a single candidate, 1398 no 'entailment' and 0 several (expected at "
        "least two candidates and exactly one positive per group); binary pairs are a "
        "classification task"
    )
    assert not (tmp_path / "qnli-rank").exists()


# --- the Hub code path, on a local directory laid out like a Hub dataset repo ----------------------


def test_hub_layout_local_repo(glue_dir, tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    repo = tmp_path / "glue"
    (repo / "rte").mkdir(parents=True)
    label_id = {"entailment": 0, "not_entailment": 1}
    expected = {}
    for split, hub_split, n in (
        ("train", "train", 40),
        ("dev", "validation", 20),
        ("test", "test", 15),
    ):
        _, rows = read_tsv(glue_dir / "RTE" / f"{split}.tsv", n)
        labels = [label_id[r[3]] for r in rows] if split != "test" else [-1] * n
        table = pa.table(
            {
                "sentence1": [r[1] for r in rows],
                "sentence2": [r[2] for r in rows],
                "label": pa.array(labels, pa.int64()),
                "idx": pa.array([int(r[0]) for r in rows], pa.int32()),
            }
        )
        pq.write_table(table, repo / "rte" / f"{hub_split}-00000-of-00001.parquet")
        expected[split] = rows

    rte = TASKS["rte"]
    task = dataclasses.replace(rte, hub=dataclasses.replace(rte.hub, path=str(repo)), local=None)
    out = tmp_path / "rte"
    manifest = prepare_task(task, out, None)
    assert {s: v["rows"] for s, v in manifest["splits"].items()} == {
        "train": 40,
        "dev": 20,
        "test": 15,
    }
    assert manifest["files"] == {}
    assert manifest["splits"]["dev"]["source"].startswith(f"hub:{repo}/rte/validation@")
    for split, rows in expected.items():
        df = pd.read_parquet(out / f"{split}.parquet")
        assert df["uid"].tolist() == [r[0] for r in rows]
        assert df["text_a"].tolist() == [r[1] for r in rows]
        if split == "test":
            assert df["label"].isna().all()
        else:  # ints become GLUE's label strings
            assert df["label"].tolist() == [r[3] for r in rows]


# --- params' generic data.sources, with ${GLUE_DIR} expansion ---------------------------------------


def test_params_sources_real_derived_mnli(cli, glue_dir, derived_dir, tmp_path):
    base = "${GLUE_DIR}/../derived/MNLI"  # as in the shipped params.yaml
    pair = {"text_a": "premise", "text_b": "hypothesis", "label": "label"}
    mnli = {
        "train": {"file": f"{base}/train_subset.tsv", "columns": pair},
        "dev_matched": {"file": f"{base}/dev_matched.tsv", "columns": pair},
        "dev_mismatched": {
            "file": f"{base}/dev_mismatched_sample1k.glue.tsv",
            "columns": {
                "uid": "index",
                "text_a": "sentence1",
                "text_b": "sentence2",
                "label": "gold_label",
            },
        },
    }
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"]["sources"]["mnli"] = mnli
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = tmp_path / "mnli"
    r = cli(["prepare", "--task", "mnli", "--out", out], tmp_path, env={"GLUE_DIR": glue_dir})
    assert r.returncode == 0, r.stderr
    manifest = json.loads((out / MANIFEST).read_text())
    assert {s: v["rows"] for s, v in manifest["splits"].items()} == {
        "train": 24741,
        "dev_matched": 9815,
        "dev_mismatched": 1000,
    }
    # the test splits need the Hub, which is offline: skipped, and said so
    assert manifest["unavailable"] == ["test_matched", "test_mismatched"]
    derived = sha256sums(derived_dir / "SHA256SUMS")
    for path, digest in manifest["files"].items():
        assert derived[str(Path(path).resolve())] == digest
    dev = pd.read_parquet(out / "dev_matched.parquet")
    assert dev.iloc[0][["text_a", "label"]].tolist() == [
        "The new rights are nice enough",
        "neutral",
    ]
    # trailing spaces in the raw text are kept verbatim
    assert dev.iloc[0]["text_b"] == "Everyone really likes the newest benefits "
    assert set(pd.read_parquet(out / "train.parquet")["label"]) == set(TASKS["mnli"].labels)


def test_params_source_without_variable_is_inactive(cli, tmp_path):
    """An unset ${VAR} disables the override; then the Hub is needed and, offline, fails fast."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"]["sources"]["qqp"] = {
        "train": {
            "file": "${GLUE_DIR}/../derived/QQP/train_subset.tsv",
            "columns": {"text_a": "question1"},
        }
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    r = cli(["prepare", "--task", "qqp", "--out", tmp_path / "qqp"], tmp_path)
    assert r.returncode == 2
    assert "GLUE_DIR" in r.stderr and len(r.stderr.splitlines()) == 1
    assert not (tmp_path / "qqp").exists()


def test_sts_b_scores_are_floats(prepared):
    df = frame(prepared, "stsb", "train")
    assert math.isclose(df["label"].iloc[0], 5.0)
    assert df["text_a"].iloc[0] == "A plane is taking off."
