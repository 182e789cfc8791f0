"""Task heads (paper §3): a linear layer on the pooled [CLS] vector, or the SAN answer module.

Heads are picked from ``HEADS`` by (task type, head kind); there is no class per task. Losses and
prediction rules live here too, beside the heads whose outputs they interpret.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mtdnn.errors import MtdnnError
from mtdnn.tasks import HeadKind, TaskSpec, TaskType


class ClassificationHead(nn.Module):
    """dropout → Linear on the pooled vector: logits, a regression value or a relevance score."""

    uses_tokens = False
    returns_log_probs = False

    def __init__(self, hidden: int, num_outputs: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, num_outputs)

    def forward(self, pooled: Tensor) -> Tensor:
        return self.out(self.dropout(pooled))  # (B, num_outputs)


def _masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """Softmax over the last dim where mask is 1 (finfo.min, not -inf: an all-masked row stays finite)."""
    return scores.masked_fill(mask == 0, torch.finfo(scores.dtype).min).softmax(-1)


def _san_memories(attention_mask: Tensor, segment_ids: Tensor | None) -> tuple[Tensor, Tensor]:
    """Premise and hypothesis masks (B, T); a single-sentence row uses its whole input for both."""
    mask = attention_mask.bool()
    if segment_ids is None:
        return mask, mask
    premise = mask & (segment_ids == 0)
    hypothesis = mask & (segment_ids == 1)
    single = ~hypothesis.any(-1, keepdim=True)  # (B, 1): no second sentence in this row
    return torch.where(single, mask, premise), torch.where(single, mask, hypothesis)


class SANHead(nn.Module):
    """Stochastic answer network (Liu et al. 2018): MT-DNN's answer module for pairwise tasks.

    Returns log-probabilities (B, C), the log of the mean step distribution: the loss is NLL.
    """

    uses_tokens = True
    returns_log_probs = True

    def __init__(
        self,
        hidden: int,
        num_labels: int,
        dropout: float,
        steps: int = 5,
        prediction_dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if steps < 1:
            raise MtdnnError(f"SAN needs at least one reasoning step, got {steps}")
        self.steps = steps
        self.prediction_dropout = prediction_dropout
        self.dropout = nn.Dropout(dropout)
        self.summary = nn.Linear(hidden, 1)  # self-attentive summary of the hypothesis → s0
        self.bilinear = nn.Linear(hidden, hidden, bias=False)  # W in softmax(s W M_p^T)
        self.gru = nn.GRUCell(hidden, hidden)
        self.classifier = nn.Linear(4 * hidden, num_labels)

    def initial_state(self, hyp: Tensor, hyp_mask: Tensor) -> Tensor:
        alpha = _masked_softmax(self.summary(hyp).squeeze(-1), hyp_mask)  # (B, T)
        return torch.bmm(alpha.unsqueeze(1), hyp).squeeze(1)  # (B, H)

    def attend(self, state: Tensor, premise: Tensor, premise_mask: Tensor) -> Tensor:
        scores = torch.bmm(premise, self.bilinear(state).unsqueeze(-1)).squeeze(-1)  # (B, T)
        beta = _masked_softmax(scores, premise_mask)
        return torch.bmm(beta.unsqueeze(1), premise).squeeze(1)  # (B, H)

    def step_logits(
        self, hidden: Tensor, attention_mask: Tensor, segment_ids: Tensor | None = None
    ) -> Tensor:
        """Logits of every reasoning step, (B, K, C), before any averaging."""
        premise_mask, hyp_mask = _san_memories(attention_mask, segment_ids)
        memory = self.dropout(hidden)  # (B, T, H): both memories are slices of the same tokens
        state = self.initial_state(memory, hyp_mask)
        logits = []
        for _ in range(self.steps):
            x = self.attend(state, memory, premise_mask)  # x_k from s_{k-1}
            state = self.gru(x, state)  # s_k
            features = torch.cat([state, x, (state - x).abs(), state * x], dim=-1)  # (B, 4H)
            logits.append(self.classifier(self.dropout(features)))
        return torch.stack(logits, dim=1)

    def step_mask(self, batch: int, like: Tensor) -> Tensor:
        """(B, K) 0/1 mask of kept steps: all ones at eval; in training each step is dropped with
        p=prediction_dropout per example, and a row that lost every step gets one back at random."""
        if not self.training or self.prediction_dropout == 0:
            return like.new_ones(batch, self.steps)
        mask = torch.bernoulli(like.new_full((batch, self.steps), 1 - self.prediction_dropout))
        rescue = F.one_hot(torch.randint(self.steps, (batch,), device=like.device), self.steps)
        return torch.where(mask.sum(-1, keepdim=True) == 0, rescue.to(mask.dtype), mask)

    def forward(
        self, hidden: Tensor, attention_mask: Tensor, segment_ids: Tensor | None = None
    ) -> Tensor:
        logits = self.step_logits(hidden, attention_mask, segment_ids)  # (B, K, C)
        step_logp = logits.log_softmax(-1)
        mask = self.step_mask(hidden.size(0), step_logp)  # (B, K)
        # log(mean of kept p_k) via logsumexp, so tiny probabilities never underflow to log(0)
        kept = step_logp + mask.log().unsqueeze(-1)
        return kept.logsumexp(dim=1) - mask.sum(-1, keepdim=True).log()  # (B, C)


HeadFactory = Callable[..., nn.Module]


def _linear(task: TaskSpec, hidden: int, dropout: float, **_: object) -> nn.Module:
    return ClassificationHead(hidden, task.num_outputs, dropout)


def _san(
    task: TaskSpec, hidden: int, dropout: float, san_steps: int, prediction_dropout: float
) -> nn.Module:
    return SANHead(hidden, task.num_outputs, dropout, san_steps, prediction_dropout)


HEADS: dict[tuple[TaskType, HeadKind], HeadFactory] = {
    (TaskType.CLASSIFICATION, HeadKind.LINEAR): _linear,
    (TaskType.CLASSIFICATION, HeadKind.SAN): _san,
    (TaskType.REGRESSION, HeadKind.LINEAR): _linear,
    (TaskType.RANKING, HeadKind.LINEAR): _linear,
}


def build_head(
    task: TaskSpec,
    hidden: int,
    kind: HeadKind = HeadKind.LINEAR,
    san_steps: int = 5,
    prediction_dropout: float = 0.1,
    dropout: float | None = None,
) -> nn.Module:
    """The head for ``task``; ``dropout`` overrides the task's own task-layer dropout."""
    factory = HEADS.get((task.type, HeadKind(kind)))
    if factory is None:
        raise MtdnnError(
            f"task {task.name}: a {HeadKind(kind).value} head is not available for "
            f"{task.type.value} tasks (SAN is for classification only)"
        )
    rate = task.dropout if dropout is None else dropout
    return factory(task, hidden, rate, san_steps=san_steps, prediction_dropout=prediction_dropout)


def _group_index(groups: Tensor) -> tuple[Tensor, int]:
    """Arbitrary group ids → dense 0..G-1 indices (B,) and G."""
    uniq, index = torch.unique(groups, return_inverse=True)
    return index, uniq.numel()


def _group_logsumexp(scores: Tensor, index: Tensor, n: int) -> Tensor:
    """logsumexp of ``scores`` within each group, (G,), shifted by the group max for stability."""
    top = scores.new_full((n,), float("-inf")).scatter_reduce(0, index, scores.detach(), "amax")
    shifted = (scores - top[index]).exp()
    return scores.new_zeros(n).index_add(0, index, shifted).log() + top


def ranking_loss(scores: Tensor, labels: Tensor, groups: Tensor, gamma: float = 1.0) -> Tensor:
    """Listwise loss (paper eq. 5): mean over groups of -log softmax(γ·score)[positive].

    A group with several positives averages over them; a group with none (common when QNLI v2
    pairs are grouped by question) has no target and is left out.
    """
    z = gamma * scores.reshape(-1)  # (B,)
    index, n = _group_index(groups.reshape(-1))
    positive = (labels.reshape(-1) == 1).to(z.dtype)  # (B,)
    nll = (_group_logsumexp(z, index, n)[index] - z) * positive  # (B,): nonzero on positives only
    per_group = z.new_zeros(n).index_add(0, index, nll)
    n_pos = z.new_zeros(n).index_add(0, index, positive)
    has_pos = n_pos > 0
    if not has_pos.any():
        return z.sum() * 0  # keeps the graph so backward() still works on an all-negative batch
    return (per_group[has_pos] / n_pos[has_pos]).mean()


def task_loss(
    task: TaskSpec,
    output: Tensor,
    labels: Tensor,
    groups: Tensor | None = None,
    ranking_gamma: float = 1.0,
    log_probs: bool = False,
) -> Tensor:
    """The task's training loss. ``log_probs``: the head returned log-probabilities (SAN).

    For ranking, ``labels`` are relevance (1 = the positive candidate) and ``groups`` (B,) holds
    one id per question; see ``relevance_labels`` to convert label indices.
    """
    if task.type is TaskType.REGRESSION:
        return F.mse_loss(output.squeeze(-1), labels.to(output.dtype))
    if task.type is TaskType.RANKING:
        if groups is None:
            raise MtdnnError(f"task {task.name}: the ranking loss needs group ids")
        return ranking_loss(output, labels, groups, ranking_gamma)
    # cross_entropy on log-probs would equal NLL anyway (log_softmax is idempotent on them);
    # nll_loss just says what the SAN head returns
    if log_probs:
        return F.nll_loss(output, labels.long())
    return F.cross_entropy(output, labels.long())


def relevance_labels(task: TaskSpec, label_ids: Tensor) -> Tensor:
    """Label indices → 1 for the task's positive label, else 0 (qnli-rank's positive is index 0)."""
    if task.positive_label is None:
        raise MtdnnError(f"task {task.name}: a ranking task needs positive_label")
    return (label_ids == task.labels.index(task.positive_label)).long()


def rank_predictions(scores: Tensor, groups: Tensor) -> Tensor:
    """1 for each group's highest-scoring candidate (first one on ties), 0 elsewhere; (B,) long."""
    scores = scores.reshape(-1)
    index, n = _group_index(groups.reshape(-1))
    top = scores.new_full((n,), float("-inf")).scatter_reduce(0, index, scores, "amax")
    position = torch.arange(scores.numel(), device=scores.device)
    candidates = torch.where(scores == top[index], position, scores.numel())  # non-max → sentinel
    first = torch.full((n,), scores.numel(), device=scores.device)
    first = first.scatter_reduce(0, index, candidates, "amin")
    return (position == first[index]).long()


def predictions(task: TaskSpec, output: Tensor, groups: Tensor | None = None) -> Tensor:
    """Model output → what ``metrics.compute_metrics`` compares with the labels."""
    if task.type is TaskType.REGRESSION:
        return output.squeeze(-1)
    if task.type is TaskType.RANKING:
        if groups is None:
            raise MtdnnError(f"task {task.name}: ranking predictions need group ids")
        return rank_predictions(output, groups)
    return output.argmax(-1)
