"""MT-DNN: one shared pre-trained encoder and pooler, one head per task (paper §3)."""

from __future__ import annotations

from os import PathLike

from torch import Tensor, nn
from transformers import AutoModel, PretrainedConfig, PreTrainedModel

from mtdnn.errors import MtdnnError
from mtdnn.model.heads import build_head
from mtdnn.tasks import HeadKind, TaskSpec

POOLING_MODES = ("cls", "mean")


class Pooler(nn.Module):
    """The sentence (pair) vector the heads read.

    ``cls``: tanh(W x + b) on the first ([CLS]) token, as in BERT's pooler (the paper's readout).
    ``mean``: the attention-masked mean of the token states, for encoders trained that way
    (sentence-transformers models such as all-MiniLM-L6-v2, whose BERT pooler was never trained).
    """

    def __init__(self, hidden: int, dense: nn.Linear | None = None, mode: str = "cls") -> None:
        super().__init__()
        if mode not in POOLING_MODES:
            raise MtdnnError(f"pooling '{mode}' is not one of {', '.join(POOLING_MODES)}")
        self.mode = mode
        if mode == "cls":
            self.dense = dense if dense is not None else nn.Linear(hidden, hidden)
            self.activation = nn.Tanh()

    def forward(self, hidden_states: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        if self.mode == "cls":
            return self.activation(self.dense(hidden_states[:, 0]))  # (B, H)
        mask = attention_mask.unsqueeze(-1).to(hidden_states.dtype)  # (B, T, 1)
        return (hidden_states * mask).sum(1) / mask.sum(1).clamp(min=1.0)  # (B, H)


def _take_pretrained_pooler(encoder: PreTrainedModel) -> nn.Linear | None:
    """Detach the encoder's own pooler Linear, if any, so its trained weights move to our Pooler.

    Removing it from the encoder (BERT/RoBERTa/ALBERT skip a ``None`` pooler) means it is neither
    computed twice nor saved under two names.
    """
    pooler = getattr(encoder, "pooler", None)
    dense = getattr(pooler, "dense", pooler)  # BertPooler.dense, or ALBERT's bare Linear
    if not isinstance(dense, nn.Linear):
        return None
    encoder.pooler = None
    return dense


class MTDNN(nn.Module):
    """Shared encoder + pooler; ``heads`` is an ``nn.ModuleDict`` keyed by task name."""

    def __init__(
        self,
        encoder: PreTrainedModel,
        tasks: list[TaskSpec],
        head_kinds: dict[str, HeadKind] | None = None,
        san_steps: int = 5,
        prediction_dropout: float = 0.1,
        dropout_override: dict[str, float] | None = None,
        pooling: str = "cls",
    ) -> None:
        super().__init__()
        self.encoder = encoder
        hidden = encoder.config.hidden_size
        # The encoder's own pooler is detached either way: mean pooling never computes it.
        self.pooler = Pooler(hidden, _take_pretrained_pooler(encoder), pooling)
        self.tasks = {t.name: t for t in tasks}
        kinds, rates = head_kinds or {}, dropout_override or {}
        _check_names(self.tasks, kinds, rates)
        own = [t for t in tasks if not t.predict_with]  # AX borrows MNLI's head
        opts = {"san_steps": san_steps, "prediction_dropout": prediction_dropout}
        self.heads = nn.ModuleDict({t.name: _head(t, hidden, kinds, rates, opts) for t in own})
        self.fresh_heads = set(self.heads)  # heads not loaded from a checkpoint (yet)

    @classmethod
    def from_encoder(cls, name_or_path: str | PathLike, tasks: list[TaskSpec], **kw) -> MTDNN:
        """Pre-trained encoder from a Hub id or a local directory (a local path needs no network)."""
        return cls(AutoModel.from_pretrained(str(name_or_path)), tasks, **kw)

    @classmethod
    def from_config(cls, config: PretrainedConfig, tasks: list[TaskSpec], **kw) -> MTDNN:
        """Randomly initialised encoder; for tests and smoke runs."""
        return cls(AutoModel.from_config(config), tasks, **kw)

    def head_for(self, task: str) -> nn.Module:
        if task not in self.tasks:
            raise MtdnnError(f"model has no task '{task}' (has: {', '.join(sorted(self.tasks))})")
        return self.heads[self.tasks[task].head_task]

    def returns_log_probs(self, task: str) -> bool:
        """Whether ``forward(task, ...)`` gives log-probabilities (SAN), not logits or scores."""
        return getattr(self.head_for(task), "returns_log_probs", False)

    def encode(
        self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor | None = None
    ) -> Tensor:
        """Token states (B, T, H) from the shared encoder."""
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        # Encoders with one or no token type (RoBERTa, DeBERTa-v3) would reject segment 1 ids
        if token_type_ids is not None and getattr(self.encoder.config, "type_vocab_size", 0) > 1:
            kwargs["token_type_ids"] = token_type_ids
        return self.encoder(**kwargs).last_hidden_state

    def forward(
        self,
        task: str,
        input_ids: Tensor,
        attention_mask: Tensor,
        token_type_ids: Tensor | None = None,
        segment_ids: Tensor | None = None,
    ) -> Tensor:
        """Logits (B, C), SAN log-probs (B, C), or a regression value / relevance score (B, 1)."""
        head = self.head_for(task)
        hidden = self.encode(input_ids, attention_mask, token_type_ids)  # (B, T, H)
        if getattr(head, "uses_tokens", False):
            # SAN needs to know premise from hypothesis even when the encoder has no token types
            segments = segment_ids if segment_ids is not None else token_type_ids
            return head(hidden, attention_mask, segments)
        return head(self.pooler(hidden, attention_mask))

    def encoder_state(self) -> dict[str, Tensor]:
        """Encoder and pooler weights without the heads: what fine-tuning/adaptation starts from."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("heads.")}

    def load_encoder_state(self, state: dict[str, Tensor]) -> None:
        """Load ``encoder_state()`` output; heads keep their (fresh) initialisation."""
        missing, unexpected = self.load_state_dict(state, strict=False)
        shared_missing = [k for k in missing if not k.startswith("heads.")]
        if shared_missing or unexpected:
            raise MtdnnError(
                f"encoder state does not fit this model: missing {shared_missing[:3]}, "
                f"unexpected {list(unexpected)[:3]}"
            )


def _head(task: TaskSpec, hidden: int, kinds: dict, rates: dict, opts: dict) -> nn.Module:
    kind = kinds.get(task.name, HeadKind.LINEAR)
    return build_head(task, hidden, kind, dropout=rates.get(task.name), **opts)


def _check_names(tasks: dict[str, TaskSpec], kinds: dict, rates: dict) -> None:
    for t in tasks.values():
        if t.predict_with and t.predict_with not in tasks:
            raise MtdnnError(
                f"task {t.name} is predicted with '{t.predict_with}', which is not in the model"
            )
    for what, names in (("head_kinds", kinds), ("dropout_override", rates)):
        unknown = sorted(set(names) - set(tasks))
        if unknown:
            raise MtdnnError(f"{what}: unknown task '{unknown[0]}'")
