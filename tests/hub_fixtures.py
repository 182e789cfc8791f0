"""A local snapshot of the Hub's dataset repos, in the Hub's own layout and with its quirks.

``make_hub_mirror(root, glue, derived)`` writes ``root/<owner>/<repo>/<config>/<split>-00000-of-00001
.parquet`` for ``nyu-mll/glue`` (the nine GLUE tasks and AX), ``stanfordnlp/snli`` and
``allenai/scitail``: the layout `hf download --repo-type dataset` leaves, read through
``data.hub_dir``. The texts are real rows of the local GLUE copy and of the derived MNLI/QQP/SNLI
files (QNLI's train rows are dev rows: the local copy has no QNLI train). What the Hub does
differently from the official files is kept:

- labels are ClassLabel ints in the task's label order, STS-B scores floats, ``idx`` counts rows;
- every GLUE test split is unlabelled: label -1, STS-B -1.0;
- SNLI marks pairs without annotator consensus with -1 in train, validation and test alike
  (785 / 158 / 176 rows on the Hub; here the first rows of each split carry the marker);
- two official QQP train rows have an empty question2 (huggingface/datasets#277); one is here.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

NLI = ["entailment", "neutral", "contradiction"]
BINARY = ["0", "1"]
RTE = ["entailment", "not_entailment"]
# SNLI rows per split that carry the Hub's no-consensus label -1 (the first ones).
NO_CONSENSUS = {"train": 3, "validation": 2, "test": 1}

# config -> (text columns, label names (None: a float score), {Hub split: source}). A source is
# (file under the data root, has a header, text field indices, label field index or None for an
# unlabelled split, first data row). Files starting with "derived/" are read from the derived rows.
GLUE = {
    "cola": (("sentence",), BINARY, {
        "train": ("CoLA/train.tsv", False, (3,), 1, 0),
        "validation": ("CoLA/dev.tsv", False, (3,), 1, 0),
        "test": ("CoLA/test.tsv", True, (1,), None, 0),
    }),
    "sst2": (("sentence",), BINARY, {
        "train": ("SST-2/train.tsv", True, (0,), 1, 0),
        "validation": ("SST-2/dev.tsv", True, (0,), 1, 0),
        "test": ("SST-2/test.tsv", True, (1,), None, 0),
    }),
    "mrpc": (("sentence1", "sentence2"), BINARY, {
        "train": ("MRPC/train.tsv", True, (3, 4), 0, 0),
        "validation": ("MRPC/dev.tsv", True, (3, 4), 0, 0),
        "test": ("MRPC/test.tsv", True, (3, 4), None, 0),
    }),
    "stsb": (("sentence1", "sentence2"), None, {
        "train": ("STS-B/train.tsv", True, (7, 8), 9, 0),
        "validation": ("STS-B/dev.tsv", True, (7, 8), 9, 0),
        "test": ("STS-B/test.tsv", True, (7, 8), None, 0),
    }),
    "qqp": (("question1", "question2"), BINARY, {
        "train": ("derived/QQP/train_subset.tsv", True, (3, 4), 5, 0),
        "validation": ("derived/QQP/dev_sample1k.tsv", True, (3, 4), 5, 0),
        "test": ("derived/QQP/dev_sample1k.tsv", True, (3, 4), None, 100),
    }),
    "mnli": (("premise", "hypothesis"), NLI, {
        "train": ("derived/MNLI/train_subset.glue.tsv", True, (8, 9), 11, 0),
        "validation_matched": ("derived/MNLI/dev_matched_sample1k.glue.tsv", True, (8, 9), 15, 0),
        "validation_mismatched": (
            "derived/MNLI/dev_mismatched_sample1k.glue.tsv", True, (8, 9), 15, 0,
        ),
        "test_matched": ("derived/MNLI/dev_matched_sample1k.glue.tsv", True, (8, 9), None, 100),
        "test_mismatched": (
            "derived/MNLI/dev_mismatched_sample1k.glue.tsv", True, (8, 9), None, 100,
        ),
    }),
    "qnli": (("question", "sentence"), RTE, {
        "train": ("QNLI/dev.tsv", True, (1, 2), 3, 100),
        "validation": ("QNLI/dev.tsv", True, (1, 2), 3, 0),
        "test": ("QNLI/test.tsv", True, (1, 2), None, 0),
    }),
    "rte": (("sentence1", "sentence2"), RTE, {
        "train": ("RTE/train.tsv", True, (1, 2), 3, 0),
        "validation": ("RTE/dev.tsv", True, (1, 2), 3, 0),
        "test": ("RTE/test.tsv", True, (1, 2), None, 0),
    }),
    "wnli": (("sentence1", "sentence2"), BINARY, {
        "train": ("WNLI/train.tsv", True, (1, 2), 3, 0),
        "validation": ("WNLI/dev.tsv", True, (1, 2), 3, 0),
        "test": ("WNLI/test.tsv", True, (1, 2), None, 0),
    }),
    "ax": (("premise", "hypothesis"), NLI, {
        "test": ("diagnostic/diagnostic.tsv", True, (1, 2), None, 0),
    }),
}  # fmt: skip
SNLI_SOURCES = {
    "train": "derived/SNLI/train_subset.tsv",
    "validation": "derived/SNLI/dev.tsv",
    "test": "derived/SNLI/test.tsv",
}


def read_rows(path: Path, header: bool, start: int, n: int) -> list[list[str]]:
    """``n`` tab-separated rows (no quoting, as GLUE's files are) from data row ``start`` on."""
    lines = path.read_text(encoding="utf-8-sig").splitlines()[1 if header else 0 :]
    return [line.split("\t") for line in lines[start : start + n]]


def write_split(folder: Path, split: str, columns: dict) -> Path:
    """One Hub parquet shard, named as the Hub names its single-shard splits."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{split}-00000-of-00001.parquet"
    pq.write_table(pa.table(columns), path)
    return path


def _label(raw: str, labels: list[str] | None) -> int | float:
    return float(raw) if labels is None else labels.index(raw)


def glue_split(data: dict[str, Path], config: str, split: str, n: int) -> dict:
    """The Hub columns of one GLUE split: texts, label (or the -1 / -1.0 sentinel), idx."""
    names, labels, sources = GLUE[config]
    file, header, texts, label, start = sources[split]
    root = data["derived"] if file.startswith("derived/") else data["glue"]
    rows = read_rows(root / file.removeprefix("derived/"), header, start, n)
    columns = {name: [r[i] for r in rows] for name, i in zip(names, texts, strict=True)}
    sentinel = -1.0 if labels is None else -1
    values = [sentinel if label is None else _label(r[label], labels) for r in rows]
    columns["label"] = pa.array(values, pa.float32() if labels is None else pa.int64())
    columns["idx"] = pa.array(range(len(rows)), pa.int32())
    if config == "qqp" and split == "train":
        columns["question2"][1] = ""  # as the Hub's train rows 310121 and 362225
    return columns


def snli_split(derived: Path, split: str, n: int) -> dict:
    rows = read_rows(derived / SNLI_SOURCES[split].removeprefix("derived/"), True, 0, n)
    labels = [-1 if i < NO_CONSENSUS[split] else NLI.index(r[2]) for i, r in enumerate(rows)]
    return {
        "premise": [r[0] for r in rows],
        "hypothesis": [r[1] for r in rows],
        "label": pa.array(labels, pa.int64()),
    }


def scitail_split(derived: Path, split: str, n: int) -> dict:
    """SciTail's tsv_format config keeps its label strings; the pairs are real SNLI test rows."""
    rows = read_rows(derived / "SNLI" / "test.tsv", True, 0, n)
    return {
        "premise": [r[0] for r in rows],
        "hypothesis": [r[1] for r in rows],
        "label": ["entails" if r[2] == "entailment" else "neutral" for r in rows],
    }


def make_hub_mirror(root: Path, glue: Path, derived: Path, n: int = 24) -> Path:
    """Write the three Hub repos under ``root`` (a ``data.hub_dir``); returns ``root``."""
    data = {"glue": glue, "derived": derived}
    for config, (_, _, sources) in GLUE.items():
        for split in sources:
            columns = glue_split(data, config, split, n)
            write_split(root / "nyu-mll" / "glue" / config, split, columns)
    for split in SNLI_SOURCES:
        write_split(
            root / "stanfordnlp" / "snli" / "plain_text", split, snli_split(derived, split, n)
        )
        folder = root / "allenai" / "scitail" / "tsv_format"
        write_split(folder, split, scitail_split(derived, split, n))
    return root


def drop_config(root: Path, config: str) -> None:
    """Remove one GLUE config from the mirror (a partial snapshot)."""
    shutil.rmtree(root / "nyu-mll" / "glue" / config)
