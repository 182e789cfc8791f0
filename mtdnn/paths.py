"""Where each stage writes. One place, so the CLI defaults and the workflow agree."""

from __future__ import annotations

import hashlib
import json
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
    return tokenized_path(encoder_key(encoder), max_len, task)


def tokenized_path(enc: str, max_len: int | str, task: str) -> Path:
    """By the encoder's path component (``encoder_key``, or a Snakemake wildcard)."""
    return DATA / "tokenized" / f"{enc}-L{max_len}" / task


# Trained models and table cells live under a key: a short hash of the knobs that made them (and of
# their upstream's key). Whether a cell must be built is then decided by whether its path exists,
# never by local Snakemake metadata, so a DVC temp or queued workspace, or a fresh clone after
# `dvc pull`, reruns exactly the cells a knob change affects, and going back to earlier knobs
# finds the cells already built.
KEY_LEN = 10


def knob_key(doc: dict) -> str:
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:KEY_LEN]


def mtl_dir(enc: str, key: str, seed: int | str) -> str:
    return f"{MODELS}/mtl/{enc}/{key}/seed{seed}"


def finetune_dir(init: str, enc: str, task: str, key: str, seed: int | str) -> str:
    return f"{MODELS}/finetune/{init}/{enc}/{task}/{key}/seed{seed}"


# A model directory's stable name: its place in the layout without the encoder and knob key, which
# `dvc plots diff` pairs across experiments (the key changes with every knob).
_MODELS_DIR = re.escape(MODELS.as_posix())
_MODEL_NAMES = (
    (re.compile(rf"(?:^|/){_MODELS_DIR}/mtl/[^/]+/[^/]+/seed([^/]+)$"), "mtl-seed{0}"),
    (
        re.compile(rf"(?:^|/){_MODELS_DIR}/finetune/([^/]+)/[^/]+/([^/]+)/[^/]+/seed([^/]+)$"),
        "{0}-{1}-seed{2}",
    ),
)


def model_name(model_dir: str | Path) -> str | None:
    """``mtl-seed<S>`` for ``mtl_dir(...)``, ``<init>-<task>-seed<S>`` for ``finetune_dir(...)``
    (relative or absolute), None for a directory outside the layout."""
    text = Path(model_dir).as_posix()  # no trailing slash: Path drops it
    for pattern, name in _MODEL_NAMES:
        if match := pattern.search(text):
            return name.format(*match.groups())
    return None


def glue_cell(model: str, enc: str, task: str, key: str, seed: int | str) -> str:
    return f"{RESULTS}/cells/glue/{model}/{enc}/{task}/{key}/seed{seed}.json"


def adapt_cell(init: str, enc: str, task: str, size: str, key: str, seed: int | str) -> str:
    return f"{RESULTS}/cells/adapt/{init}/{enc}/{task}/{size}/{key}/seed{seed}.json"
