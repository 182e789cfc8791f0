"""Where each stage writes. One place, so the CLI defaults and the workflow agree."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

DATA = Path("data")
MODELS = Path("models")
RESULTS = Path("results")


def canonical_dir(task: str) -> Path:
    return DATA / "canonical" / task


def encoder_key(encoder: str) -> str:
    """Aliases are used as they are; a model directory becomes '<name>-<hash of its path>'."""
    if re.fullmatch(r"[a-z0-9][a-z0-9._-]*", encoder):
        return encoder
    path = str(Path(encoder).resolve())
    return f"{Path(path).name.lower()}-{hashlib.sha256(path.encode()).hexdigest()[:8]}"


def tokenized_dir(encoder: str, max_len: int, task: str) -> Path:
    return DATA / "tokenized" / f"{encoder_key(encoder)}-L{max_len}" / task
