"""Turn rows from any source into the one canonical schema: uid, text_a, text_b, label (+ group).

Classification labels stay GLUE's label strings (what a submission file needs); regression labels are
floats; unlabelled test splits have a null label.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from mtdnn.errors import MtdnnError
from mtdnn.readers import column_index, iter_delimited, iter_jsonl, read_parquet
from mtdnn.tasks import FileSource, TaskSpec, TaskType

Record = dict  # canonical column -> raw value, plus "_loc" for error messages


def _records_delimited(path: Path, src: FileSource) -> list[Record]:
    header, rows = iter_delimited(path, src)
    idx = {k: column_index(path, header, c, k) for k, c in src.columns.items()}
    need = max((i + 1 if i >= 0 else -i) for i in idx.values())
    sep = "comma" if src.format == "csv" else "tab"
    out = []
    for line, fields in rows:
        if len(fields) < need:
            raise MtdnnError(
                f"{path}:{line}: expected at least {need} {sep}-separated fields, found "
                f"{len(fields)} (truncated line or wrong delimiter?)"
            )
        out.append({k: fields[i] for k, i in idx.items()} | {"_loc": f"{path}:{line}"})
    return out


def _records_jsonl(path: Path, src: FileSource) -> list[Record]:
    out = []
    for line, obj in iter_jsonl(path):
        missing = [c for c in src.columns.values() if c not in obj]
        if missing:
            raise MtdnnError(f"{path}:{line}: missing key '{missing[0]}'")
        out.append({k: obj[c] for k, c in src.columns.items()} | {"_loc": f"{path}:{line}"})
    return out


def _records_parquet(path: Path, src: FileSource) -> list[Record]:
    df = read_parquet(path)
    for k, c in src.columns.items():
        if c not in df.columns:
            raise MtdnnError(f"{path}: missing column '{c}' for {k} (has {list(df.columns)[:8]})")
    sub = df[list(src.columns.values())].set_axis(list(src.columns), axis=1)
    sub["_loc"] = [f"{path}: row {i}" for i in range(len(sub))]
    return sub.to_dict("records")


_READERS = {"tsv": _records_delimited, "csv": _records_delimited, "jsonl": _records_jsonl}


def read_file_records(path: Path, src: FileSource) -> list[Record]:
    """Read one split file into records, dropping rows whose label is in ``drop_labels``."""
    reader = _READERS.get(src.format, _records_parquet)
    records = reader(path, src)
    if src.drop_labels and "label" in src.columns:
        records = [r for r in records if str(r["label"]) not in src.drop_labels]
    return records


def _label(task: TaskSpec, raw, loc: str):
    if raw is None or (
        isinstance(raw, float) and math.isnan(raw) and task.type is not TaskType.REGRESSION
    ):
        return None
    if task.type is TaskType.REGRESSION:
        return _score(task, raw, loc)
    if isinstance(raw, bool) or (isinstance(raw, (int, float)) and not isinstance(raw, str)):
        raw = _label_from_index(task, int(raw), loc)
        if raw is None:
            return None
    label = str(raw).strip()
    if label not in task.labels:
        raise MtdnnError(
            f"{loc}: label '{label}' is not one of {list(task.labels)} for task {task.name}"
        )
    return label


def _label_from_index(task: TaskSpec, i: int, loc: str) -> str | None:
    """Hub ClassLabel ints: -1 marks "no label" (unlabelled test rows, SNLI's no-consensus pairs)."""
    if i < 0:
        return None
    if i >= len(task.labels):
        raise MtdnnError(
            f"{loc}: label index {i} out of range for task {task.name} {list(task.labels)}"
        )
    return task.labels[i]


def _score(task: TaskSpec, raw, loc: str) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise MtdnnError(f"{loc}: score '{raw}' is not a number for task {task.name}") from None
    lo, hi = task.label_range or (-math.inf, math.inf)
    if math.isnan(value):
        raise MtdnnError(
            f"{loc}: score is NaN; expected a number in [{lo}, {hi}] for task {task.name}"
        )
    if not lo <= value <= hi:
        raise MtdnnError(f"{loc}: score {value} outside [{lo}, {hi}] for task {task.name}")
    return value


def to_canonical(task: TaskSpec, split: str, records: list[Record], origin: str) -> pd.DataFrame:
    """Validate records and build the canonical frame. ``origin`` names the source in errors."""
    if not records:
        raise MtdnnError(f"{origin}: split '{split}' of task {task.name} has no data rows")
    rows, seen = [], {}
    for i, rec in enumerate(records):
        loc = rec.get("_loc", f"{origin}: row {i}")
        uid = str(rec["uid"]) if rec.get("uid") is not None else f"{split}-{i}"
        if uid in seen:
            raise MtdnnError(f"{loc}: duplicate uid '{uid}' (first at {seen[uid]})")
        seen[uid] = loc
        rows.append(_canonical_row(task, rec, uid, loc))
    frame = pd.DataFrame(rows)
    if task.type is TaskType.REGRESSION:
        frame["label"] = frame["label"].astype("float64")
    return frame


def _canonical_row(task: TaskSpec, rec: Record, uid: str, loc: str) -> dict:
    text_b = rec.get("text_b")
    row = {
        "uid": uid,
        "text_a": _text(rec["text_a"]),
        "text_b": None if text_b is None else _text(text_b),
        "label": _label(task, rec.get("label"), loc),
    }
    if task.type is TaskType.RANKING:
        row["group"] = str(rec.get("group", rec["text_a"]))
    return row


def _text(value) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
