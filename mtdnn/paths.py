"""Where each stage writes. One place, so the CLI defaults and the workflow agree."""

from __future__ import annotations

from pathlib import Path

DATA = Path("data")
MODELS = Path("models")
RESULTS = Path("results")


def canonical_dir(task: str) -> Path:
    return DATA / "canonical" / task


def tokenized_dir(encoder: str, max_len: int, task: str) -> Path:
    return DATA / "tokenized" / f"{encoder}-L{max_len}" / task
