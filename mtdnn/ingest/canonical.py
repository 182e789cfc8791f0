"""Turn rows from any source into the one canonical schema: uid, text_a, text_b, label (+ group).

Classification labels stay GLUE's label strings (what a submission file needs); regression labels are
floats; unlabelled test splits have a null label.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from mtdnn.errors import MtdnnError
from mtdnn.ingest.readers import column_index, iter_delimited, iter_jsonl, read_parquet
from mtdnn.tasks import FileSource, TaskSpec, TaskType

Record = dict  # canonical column -> raw value, plus "_loc" for error messages


def _records_delimited(path: Path, src: FileSource) -> list[Record]:
    header, rows = iter_delimited(path, src)
    idx = {k: column_index(path, header, c, k) for k, c in src.columns.items()}
    need = max((i + 1 if i >= 0 else -i) for i in idx.values())
    sep = "comma" if src.format == "csv" else "tab"
    # A column read from the end (GLUE-SNLI's gold_label: -1) declares rows of varying width.
    # Otherwise a row is as wide as the header (or the first row): one field more means a
    # delimiter inside a text has shifted the columns, so the row cannot be trusted.
    fixed = all(i >= 0 for i in idx.values())
    width, ref = (len(header), "the header") if header is not None else (None, "line 1")
    out = []
    for line, fields in rows:
        if len(fields) < need:
            raise MtdnnError(
                f"{path}:{line}: expected at least {need} {sep}-separated fields, found "
                f"{len(fields)} (truncated line or wrong delimiter?)"
            )
        width = width if width is not None else len(fields)
        if fixed and len(fields) > width:
            raise MtdnnError(
                f"{path}:{line}: expected {width} {sep}-separated fields (as {ref}), found "
                f"{len(fields)}: a stray {sep} inside a text?"
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
    """Read one split file into records. A label in ``drop_labels`` (SNLI's "-") marks a row that
    is not an example: it becomes a missing label, and ``to_canonical`` drops and counts it."""
    reader = _READERS.get(src.format, _records_parquet)
    records = reader(path, src)
    if src.drop_labels and "label" in src.columns:
        for r in records:
            if str(r["label"]) in src.drop_labels:
                r["label"], r["_drop"] = None, True
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
    label = str(raw).strip()
    if label not in task.labels:
        raise MtdnnError(
            f"{loc}: label '{label}' is not one of {list(task.labels)} for task {task.name}"
        )
    return label


def _label_from_index(task: TaskSpec, i: int, loc: str) -> str:
    """Hub ClassLabel ints. The Hub's "no label" sentinel was turned into None before this."""
    if not 0 <= i < len(task.labels):
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


def to_canonical(
    task: TaskSpec, split: str, records: list[Record], origin: str
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Validate records and build the canonical frame. ``origin`` names the source in errors.

    Returns the frame and the rows dropped by reason (``no_label``, ``empty_text``), for the
    manifest. A dropped row keeps its place in the numbering of generated uids.
    """
    if not records:
        raise MtdnnError(f"{origin}: split '{split}' of task {task.name} has no data rows")
    rows, seen = [], {}
    dropped = {"no_label": 0, "empty_text": 0}
    for i, rec in enumerate(records):
        loc = rec.get("_loc", f"{origin}: row {i}")
        row = _canonical_row(task, rec, f"{split}-{i}", loc)
        reason = _drop_reason(task, split, rec, row, loc)
        if reason:
            dropped[reason] += 1
            continue
        if row["uid"] in seen:
            raise MtdnnError(f"{loc}: duplicate uid '{row['uid']}' (first at {seen[row['uid']]})")
        seen[row["uid"]] = loc
        rows.append(row)
    if not rows:
        raise MtdnnError(f"{origin}: split '{split}' of task {task.name} has no usable rows")
    frame = pd.DataFrame(rows)
    if task.type is TaskType.REGRESSION:
        frame["label"] = frame["label"].astype("float64")
    return frame, dropped


def _drop_reason(task: TaskSpec, split: str, rec: Record, row: dict, loc: str) -> str | None:
    """Why a row is not an example (it is then dropped), or None; refuses what may not be dropped."""
    labelled = task.is_labelled(split)
    if row["label"] is None and labelled:
        if task.drop_unlabelled or rec.get("_drop"):
            return "no_label"
        expected = (
            f"a score in {list(task.label_range or ())}"
            if task.type is TaskType.REGRESSION
            else f"one of {list(task.labels)}"
        )
        raise MtdnnError(
            f"{loc}: no label in split '{split}' of task {task.name} (expected {expected}; "
            f"only {list(task.unlabelled_splits)} may be unlabelled)"
        )
    for col in ("text_a", "text_b") if "text_b" in rec else ("text_a",):
        if row[col].strip():
            continue
        if not task.drop_empty_text:
            raise MtdnnError(
                f"{loc}: empty {col} in split '{split}' of task {task.name} "
                "(expected a non-empty sentence)"
            )
        if labelled:
            return "empty_text"
        # kept: a submission needs a prediction for every row of an unlabelled test split
    return None


def _canonical_row(task: TaskSpec, rec: Record, uid: str, loc: str) -> dict:
    """One canonical row; ``uid`` is the generated one, used when the source has none."""
    text_b = rec.get("text_b")
    row = {
        "uid": str(rec["uid"]) if rec.get("uid") is not None else uid,
        "text_a": _text(rec["text_a"]),
        "text_b": None if text_b is None and "text_b" not in rec else _text(text_b),
        "label": _label(task, rec.get("label"), loc),
    }
    if task.type is TaskType.RANKING:
        row["group"] = str(rec.get("group", rec["text_a"]))
    return row


def _text(value) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def check_ranking_groups(task: TaskSpec, split: str, frame: pd.DataFrame, origin: str) -> None:
    """A labelled ranking split must be candidate lists: every group has at least two candidates
    and exactly one positive. Anything else trains nothing on part of its rows and caps top-1
    accuracy below 100 %, so such data is refused here rather than scored wrongly later."""
    if task.type is not TaskType.RANKING or not task.is_labelled(split):
        return
    positive = frame["label"] == task.positive_label
    stats = positive.groupby(frame["group"]).agg(["size", "sum"])
    single, none, several = (
        int((stats["size"] < 2).sum()),
        int((stats["sum"] == 0).sum()),
        int((stats["sum"] > 1).sum()),
    )
    if single or none or several:
        raise MtdnnError(
            f"{origin}: split '{split}' of task {task.name} is not in ranking form: of "
            f"{len(stats)} groups, {single} have a single candidate, {none} no "
            f"'{task.positive_label}' and {several} several (expected at least two candidates "
            "and exactly one positive per group); binary pairs are a classification task"
        )
