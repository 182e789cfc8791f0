"""`mtdnn export`: a trained model's shared encoder as a plain ``save_pretrained`` directory, with
a model card (``README.md``), ready for ``hf upload <repo> <dir>``."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from transformers import AutoConfig, AutoModel

from mtdnn.card import NO_CELLS, check_card, find_cells, model_card, read_cell
from mtdnn.errors import MtdnnError
from mtdnn.fileio import atomic_dir
from mtdnn.model.checkpoint import WEIGHTS, load_weights, read_config
from mtdnn.tasks import TaskSpec, load_tasks
from mtdnn.tokenize import load_tokenizer

log = logging.getLogger(__name__)


def export_encoder(
    model_dir: Path,
    out: Path,
    cells: list[Path] | None = None,
    registry: dict[str, TaskSpec] | None = None,
) -> None:
    """Write the shared encoder (with its pooler) as a ``save_pretrained`` directory that
    ``AutoModel.from_pretrained`` loads anywhere, plus the tokenizer and a model card whose eval
    results come from ``cells`` (default: the model's cells by the workflow's path convention).
    ``registry`` must hold the model's tasks (params' custom tasks too)."""
    cfg = read_config(model_dir)
    registry = registry if registry is not None else load_tasks()
    found, key = find_cells(model_dir)
    # Cells are checked before the weights load: bad input fails at once, and writes nothing.
    docs = {path: read_cell(path, cfg, registry) for path in (cells or found)}
    if not docs:
        log.warning("%s: %s (pass them with --cell)", model_dir, NO_CELLS)
    card = model_card(cfg, docs, key, registry, Path(os.path.abspath(out)).name)
    encoder = _encoder(model_dir, cfg)
    with atomic_dir(out) as tmp:
        encoder.save_pretrained(str(tmp), safe_serialization=True)
        load_tokenizer(str(model_dir)).save_pretrained(str(tmp))
        card.save(tmp / "README.md")
        check_card(card, tmp / "README.md")


def _encoder(model_dir: Path, cfg: dict):
    state = load_weights(model_dir / WEIGHTS)
    encoder = AutoModel.from_config(AutoConfig.for_model(**cfg["encoder_config"]))
    mapped = {k.removeprefix("encoder."): v for k, v in state.items() if k.startswith("encoder.")}
    if (
        getattr(encoder, "pooler", None) is not None
    ):  # our shared pooler goes back where BERT keeps it
        mapped |= {k: v for k, v in state.items() if k.startswith("pooler.dense.")}
    missing, unexpected = encoder.load_state_dict(mapped, strict=False)
    if unexpected or [k for k in missing if "position_ids" not in k]:
        raise MtdnnError(
            f"{model_dir}: encoder weights do not fit its config (missing {missing[:2]})"
        )
    return encoder
