"""Readers for local files in their official formats, with line-numbered one-line errors.

GLUE's TSVs are read with no quoting at all (unbalanced '"' is common), a UTF-8 BOM is stripped,
CRLF and a missing final newline are accepted. Every row error names the file and line.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from mtdnn.errors import MtdnnError
from mtdnn.fileio import json_object
from mtdnn.tasks import FileSource

Row = tuple[int, list[str] | dict]  # (1-based line number, fields)


def read_text(path: Path) -> str:
    """Decode a whole file as UTF-8, refusing binary data and naming the offending line."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise MtdnnError(f"{path}: file not found") from None
    except OSError as e:
        raise MtdnnError(f"{path}: cannot read ({e.strerror})") from None
    if b"\x00" in data:
        line = data.count(b"\n", 0, data.index(b"\x00")) + 1
        raise MtdnnError(f"{path}:{line}: NUL byte found; expected a UTF-8 text file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise MtdnnError(f"{path}:{line}: not valid UTF-8 (byte {data[e.start]:#04x})") from None
    return text.removeprefix("\ufeff")


def _lines(text: str) -> list[str]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # final newline present
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


def iter_delimited(path: Path, src: FileSource) -> tuple[list[str] | None, Iterator[Row]]:
    """Return (header, rows). TSV is split on tabs with no quoting; CSV uses standard quoting."""
    text = read_text(path)
    if not text.strip():
        raise MtdnnError(f"{path}: empty file")
    if src.format == "csv":
        records = list(csv.reader(io.StringIO(text)))
    else:
        records = [ln.split("\t") for ln in _lines(text)]
    header = records[0] if src.header else None
    start = 1 if src.header else 0
    rows = ((i + 1, rec) for i, rec in enumerate(records) if i >= start and rec != [""])
    return header, rows


def iter_jsonl(path: Path) -> Iterator[Row]:
    text = read_text(path)
    if not text.strip():
        raise MtdnnError(f"{path}: empty file")
    for i, line in enumerate(_lines(text), start=1):
        if not line.strip():
            continue
        yield i, json_object(line, f"{path}:{i}", "a JSON object per line")


def column_index(path: Path, header: list[str] | None, col: str | int, name: str) -> int:
    """Resolve a column given by header name or position; negative positions count from the end."""
    if isinstance(col, int):
        return col
    if header is None:
        raise MtdnnError(f"{path}: column '{col}' given by name but the file has no header")
    if col not in header:
        found = ", ".join(repr(h) for h in header[:8])
        hint = "" if len(header) > 1 else "; is it tab-separated?"
        raise MtdnnError(f"{path}:1: missing column '{col}' for {name} (header has {found}){hint}")
    return header.index(col)


def read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except FileNotFoundError:
        raise MtdnnError(f"{path}: file not found") from None
    except Exception as e:  # pyarrow raises several types for corrupt files
        raise MtdnnError(f"{path}: not a readable parquet file ({type(e).__name__})") from None
