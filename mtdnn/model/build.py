"""Build an MT-DNN model from a pre-trained encoder or from one of our checkpoints."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

import torch
from transformers import AutoConfig, AutoModel
from transformers.utils import logging as hf_logging

from mtdnn.errors import MtdnnError
from mtdnn.model.attention import use_cpu_attention
from mtdnn.model.checkpoint import CONFIG, WEIGHTS, load_weights, read_config
from mtdnn.model.dropout import use_cheap_dropout
from mtdnn.model.network import MTDNN
from mtdnn.tasks import HeadKind, TaskSpec, TaskType

log = logging.getLogger(__name__)
hf_logging.disable_progress_bar()  # per-tensor "Loading weights" bars only clutter job logs


class HeadKnobs(Protocol):
    """The knobs that shape the heads (a ``TrainConfig`` has them): the model layer reads these
    few and never imports the configuration layer above it."""

    head: str
    dropout: float | None
    san_steps: int
    prediction_dropout: float


def model_options(tasks: list[TaskSpec], cfg: HeadKnobs, pooling: str = "cls") -> dict:
    """Constructor options recorded in the checkpoint so that it can be rebuilt exactly.

    ``pooling`` is the resolved readout (``cls`` or ``mean``, never ``auto``)."""
    own = [t for t in tasks if not t.predict_with]  # AX borrows MNLI's head
    # SAN is the pairwise-classification answer module; every other task keeps a linear head
    kinds = {t.name: "san" if cfg.head == "san" and _pairwise(t) else "linear" for t in own}
    dropout = {t.name: cfg.dropout for t in own if cfg.dropout is not None}
    return {
        "head_kinds": kinds,
        "dropout_override": dropout,
        "san_steps": cfg.san_steps,
        "prediction_dropout": cfg.prediction_dropout,
        "pooling": pooling,
    }


def _pairwise(task: TaskSpec) -> bool:
    if task.type is not TaskType.CLASSIFICATION:
        return False
    local = task.local.splits.values() if task.local else ()
    hub = [task.hub] if task.hub else []
    return any("text_b" in s.columns for s in [*local, *hub])


def _build(encoder, tasks: list[TaskSpec], opts: dict) -> MTDNN:
    kinds = {k: HeadKind(v) for k, v in opts["head_kinds"].items()}
    model = MTDNN(
        encoder,
        tasks,
        head_kinds=kinds,
        dropout_override=opts["dropout_override"],
        san_steps=opts["san_steps"],
        prediction_dropout=opts["prediction_dropout"],
        pooling=opts.get("pooling", "cls"),  # checkpoints from before the knob used [CLS]
    )
    # CPU training's cheap dropout masks and attention; no weights change, other devices and
    # evaluation run as before (mtdnn.model.dropout, mtdnn.model.attention).
    use_cheap_dropout(model)
    use_cpu_attention(model.encoder)
    return model


def from_pretrained(encoder_path: str, tasks: list[TaskSpec], opts: dict) -> MTDNN:
    # float32 master weights, always: transformers 5 loads in the checkpoint's own dtype by default
    # (dtype="auto"), and training fp16 weights directly loses small updates. Autocast does the rest.
    encoder = AutoModel.from_pretrained(encoder_path, dtype=torch.float32)
    return _build(encoder, tasks, opts)


def _encoder_from_config(cfg: dict):
    enc_cfg = AutoConfig.for_model(**cfg["encoder_config"])
    # A config recorded from a half-precision encoder says dtype float16; our weights are float32.
    return AutoModel.from_config(enc_cfg, dtype=torch.float32)


def load_model(
    ckpt: Path, tasks: dict[str, TaskSpec], extra: list[TaskSpec] = ()
) -> tuple[MTDNN, dict]:
    """Rebuild exactly the model saved in ``ckpt`` (no network, no pickles).

    ``extra`` adds head-less tasks that borrow a trained head (AX is predicted by MNLI's).
    """
    cfg = read_config(ckpt)
    specs = [_spec(tasks, n, ckpt) for n in cfg["tasks"]]
    for t in extra:
        if t.name not in cfg["tasks"]:
            if not t.predict_with:
                raise MtdnnError(
                    f"{ckpt}: model has no head for task '{t.name}' (has: {', '.join(cfg['tasks'])})"
                )
            specs.append(t)
    model = _build(_encoder_from_config(cfg), specs, cfg["model_options"])
    state = load_weights(ckpt / WEIGHTS)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise MtdnnError(
            f"{ckpt / WEIGHTS}: weights do not match {ckpt / CONFIG} (missing {missing[:2]}, unexpected {unexpected[:2]})"
        )
    return model, cfg


def _spec(tasks: dict[str, TaskSpec], name: str, ckpt: Path) -> TaskSpec:
    if name not in tasks:
        raise MtdnnError(f"{ckpt / CONFIG}: checkpoint task '{name}' is not a known task")
    return tasks[name]


def check_encoder(ckpt: Path, encoder: str) -> dict:
    """A checkpoint only initialises runs of the encoder it was trained with."""
    cfg = read_config(ckpt)
    if cfg["encoder"] != encoder:
        raise MtdnnError(
            f"{ckpt}: checkpoint was trained with encoder '{cfg['encoder']}', not '{encoder}'"
        )
    return cfg


def init_from_checkpoint(
    ckpt: Path, tasks: list[TaskSpec], opts: dict, encoder: str, keep_head: bool
) -> MTDNN:
    """Fine-tuning start: the checkpoint's shared encoder, and its head for a task when asked and compatible."""
    cfg = check_encoder(ckpt, encoder)
    model = _build(_encoder_from_config(cfg), tasks, opts)
    state = load_weights(ckpt / WEIGHTS)
    model.load_encoder_state({k: v for k, v in state.items() if not k.startswith("heads.")})
    for t in tasks:
        _maybe_keep_head(
            model,
            state,
            t.name,
            keep_head
            and cfg["model_options"]["head_kinds"].get(t.name) == opts["head_kinds"].get(t.name),
        )
    return model


def _maybe_keep_head(model: MTDNN, state: dict, task: str, keep: bool) -> None:
    prefix = f"heads.{task}."
    head_state = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
    if keep and head_state and task in model.heads:
        model.heads[task].load_state_dict(head_state)
        model.fresh_heads.discard(task)
        log.info("%s: head kept from the multi-task checkpoint", task)
    else:
        log.info("%s: head freshly initialised", task)
