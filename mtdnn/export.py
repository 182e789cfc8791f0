"""`mtdnn export`: a trained model's shared encoder as a plain ``save_pretrained`` directory."""

from __future__ import annotations

from pathlib import Path

from transformers import AutoConfig, AutoModel

from mtdnn.errors import MtdnnError
from mtdnn.fileio import atomic_dir
from mtdnn.model.checkpoint import WEIGHTS, load_weights, read_config
from mtdnn.tokenize import load_tokenizer


def export_encoder(model_dir: Path, out: Path) -> None:
    """Write the shared encoder (with its pooler) as a ``save_pretrained`` directory that
    ``AutoModel.from_pretrained`` loads anywhere, plus the tokenizer."""
    cfg = read_config(model_dir)
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
    with atomic_dir(out) as tmp:
        encoder.save_pretrained(str(tmp), safe_serialization=True)
        load_tokenizer(str(model_dir)).save_pretrained(str(tmp))
