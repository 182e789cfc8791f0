"""Heads, losses and prediction rules on real task specs, without an encoder."""

import math

import pytest
import torch

from mtdnn.errors import MtdnnError
from mtdnn.model.heads import (
    HEADS,
    ClassificationHead,
    SANHead,
    build_head,
    predictions,
    rank_predictions,
    ranking_loss,
    relevance_labels,
    task_loss,
)
from mtdnn.tasks import HeadKind, TaskType, load_tasks

torch.set_num_threads(1)
H, B, T = 16, 6, 9
TASKS = load_tasks()


def pair_batch(seed: int = 0):
    """Token states plus masks for B pairs: [CLS] premise [SEP] | hypothesis [SEP] | padding."""
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(B, T, H, generator=g)
    lengths = torch.tensor([9, 8, 7, 9, 6, 5])
    split = torch.tensor([4, 3, 4, 5, 3, 2])  # first segment-1 position per row
    pos = torch.arange(T)
    mask = (pos < lengths[:, None]).long()
    segments = ((pos >= split[:, None]) & (mask == 1)).long()
    return hidden, mask, segments


def train_steps(head, forward, loss_fn, steps: int = 30, lr: float = 0.1):
    opt = torch.optim.SGD(head.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = loss_fn(forward())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_heads_table_covers_every_task_type():
    assert {t for t, _ in HEADS} == set(TaskType)
    assert (TaskType.CLASSIFICATION, HeadKind.SAN) in HEADS


@pytest.mark.parametrize(
    ("name", "kind", "width"),
    [
        ("rte", "linear", 2),
        ("mnli", "linear", 3),
        ("stsb", "linear", 1),
        ("qnli-rank", "linear", 1),
    ],
)
def test_linear_head_shapes_and_learns(name, kind, width):
    task = TASKS[name]
    head = build_head(task, H, HeadKind(kind))
    assert isinstance(head, ClassificationHead)
    assert head.out.out_features == width
    pooled = torch.randn(B, H, generator=torch.Generator().manual_seed(1))
    if task.type is TaskType.REGRESSION:
        labels = torch.linspace(0, 5, B)
    elif task.type is TaskType.RANKING:
        labels = torch.tensor([1, 0, 0, 0, 1, 0])
    else:
        labels = torch.arange(B) % width
    groups = torch.tensor([7, 7, 7, 3, 3, 3])
    head.eval()  # no dropout noise: the loss on a fixed batch must then fall
    assert head(pooled).shape == (B, width)
    losses = train_steps(
        head, lambda: head(pooled), lambda out: task_loss(task, out, labels, groups), lr=0.05
    )
    assert all(math.isfinite(x) for x in losses)
    assert losses[-1] < 0.7 * losses[0]


def test_task_dropout_and_override_reach_the_head():
    assert build_head(TASKS["mnli"], H).dropout.p == 0.3
    assert build_head(TASKS["cola"], H).dropout.p == 0.05
    assert build_head(TASKS["cola"], H, dropout=0.2).dropout.p == 0.2


def test_san_only_for_classification():
    assert isinstance(build_head(TASKS["rte"], H, HeadKind.SAN, san_steps=3), SANHead)
    for name in ("stsb", "qnli-rank"):
        with pytest.raises(MtdnnError, match="SAN is for classification only"):
            build_head(TASKS[name], H, HeadKind.SAN)


def test_san_returns_normalised_log_probs_and_learns():
    task = TASKS["mnli"]
    head = build_head(task, H, HeadKind.SAN, san_steps=4)
    assert head.returns_log_probs
    hidden, mask, segments = pair_batch()
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    out = head(hidden, mask, segments)
    assert out.shape == (B, 3)
    assert torch.allclose(out.exp().sum(-1), torch.ones(B), atol=1e-5)
    torch.manual_seed(0)
    losses = train_steps(
        head,
        lambda: head(hidden, mask, segments),
        lambda o: task_loss(task, o, labels, log_probs=True),
        steps=40,
    )
    assert all(math.isfinite(x) for x in losses)
    assert losses[-1] < 0.5 * losses[0]


def test_san_prediction_dropout_is_stochastic_in_train_and_off_in_eval():
    head = SANHead(H, 3, dropout=0.0, steps=5, prediction_dropout=0.5)
    hidden, mask, segments = pair_batch()
    head.train()
    torch.manual_seed(1)
    a = head(hidden, mask, segments)
    torch.manual_seed(2)
    b = head(hidden, mask, segments)
    assert not torch.allclose(a, b)  # only the step mask is random here (dropout=0)
    head.eval()
    torch.manual_seed(1)
    c = head(hidden, mask, segments)
    torch.manual_seed(2)
    d = head(hidden, mask, segments)
    assert torch.equal(c, d)


def test_san_step_mask_keeps_at_least_one_step():
    head = SANHead(H, 3, dropout=0.0, steps=3, prediction_dropout=0.9).train()
    torch.manual_seed(0)
    mask = head.step_mask(2000, torch.zeros(1))
    assert mask.sum(-1).min() == 1
    assert 0.1 < mask.mean() < 0.5  # most steps really are dropped at p=0.9


def test_san_eval_averages_all_k_step_distributions():
    head = SANHead(H, 3, dropout=0.1, steps=5).eval()
    hidden, mask, segments = pair_batch()
    steps = head.step_logits(hidden, mask, segments)  # (B, K, C)
    assert steps.shape == (B, 5, 3)
    manual = steps.softmax(-1).mean(1).log()
    assert torch.allclose(head(hidden, mask, segments), manual, atol=1e-6)
    first_four = steps[:, :4].softmax(-1).mean(1).log()
    assert not torch.allclose(manual, first_four, atol=1e-4)  # the K-th step really counts


def test_san_attends_only_to_its_own_memories():
    """Changing a padded token or a hypothesis-only token must act through the right memory."""
    head = SANHead(H, 3, dropout=0.0, steps=2).eval()
    hidden, mask, segments = pair_batch()
    base = head(hidden, mask, segments)
    padded = hidden.clone()
    padded[5, -1] += 100.0  # row 5 has length 5: position 8 is padding
    assert torch.allclose(head(padded, mask, segments), base)
    changed = hidden.clone()
    changed[0, 6] += 1.0  # a hypothesis token of row 0
    assert not torch.allclose(head(changed, mask, segments)[0], base[0])


def test_san_single_sentence_falls_back_to_whole_sequence():
    head = SANHead(H, 2, dropout=0.0, steps=3).eval()
    hidden, mask, _ = pair_batch()
    no_second = torch.zeros_like(mask)
    out = head(hidden, mask, no_second)
    assert out.shape == (B, 2) and torch.isfinite(out).all()
    assert torch.allclose(out, head(hidden, mask, None))


def test_classification_loss_is_nll_for_log_probs_and_ce_for_logits():
    task = TASKS["rte"]
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.5]])
    labels = torch.tensor([0, 1])
    expected = -(logits.log_softmax(-1)[[0, 1], [0, 1]]).mean()
    assert torch.isclose(task_loss(task, logits, labels), expected)
    logp = logits.log_softmax(-1)
    assert torch.isclose(task_loss(task, logp, labels, log_probs=True), expected)


def test_regression_loss_is_mse():
    out = torch.tensor([[1.0], [3.0]])
    assert torch.isclose(task_loss(TASKS["stsb"], out, torch.tensor([2, 3])), torch.tensor(0.5))


def test_listwise_loss_matches_hand_computation():
    scores = torch.tensor([2.0, 0.0, -1.0, 1.0, 3.0])
    labels = torch.tensor([1, 0, 0, 0, 1])
    groups = torch.tensor([10, 10, 10, 4, 4])  # arbitrary, non-contiguous ids
    g1 = -(2.0 - math.log(math.exp(2.0) + math.exp(0.0) + math.exp(-1.0)))
    g2 = -(3.0 - math.log(math.exp(1.0) + math.exp(3.0)))
    expected = (g1 + g2) / 2
    loss = task_loss(TASKS["qnli-rank"], scores[:, None], labels, groups)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    gamma = 2.0
    g1 = -(4.0 - math.log(math.exp(4.0) + math.exp(0.0) + math.exp(-2.0)))
    g2 = -(6.0 - math.log(math.exp(2.0) + math.exp(6.0)))
    loss = task_loss(TASKS["qnli-rank"], scores, labels, groups, ranking_gamma=gamma)
    assert loss.item() == pytest.approx((g1 + g2) / 2, rel=1e-6)


def test_listwise_loss_skips_groups_without_positive_and_is_stable():
    scores = torch.tensor([500.0, -500.0, 7.0], requires_grad=True)
    labels = torch.tensor([0, 1, 0])
    groups = torch.tensor([0, 0, 1])  # group 1 has no positive: no target, left out
    loss = ranking_loss(scores, labels, groups)
    assert loss.item() == pytest.approx(1000.0)
    loss.backward()
    assert scores.grad[2] == 0 and torch.isfinite(scores.grad).all()
    none = ranking_loss(scores, torch.zeros(3), groups)
    assert none.item() == 0.0 and none.requires_grad


def test_ranking_loss_needs_groups():
    with pytest.raises(MtdnnError, match="group ids"):
        task_loss(TASKS["qnli-rank"], torch.zeros(3, 1), torch.tensor([1, 0, 0]))


def test_rank_predictions_pick_each_groups_best_candidate():
    scores = torch.tensor([[0.1], [0.9], [0.3], [-2.0], [-1.0], [5.0]])
    groups = torch.tensor([3, 3, 3, 8, 8, 1])
    pred = rank_predictions(scores, groups)
    assert pred.tolist() == [0, 1, 0, 0, 1, 1]
    assert pred.sum() == 3  # one per group, never all zeros
    tied = rank_predictions(torch.tensor([1.0, 1.0, 0.0]), torch.tensor([0, 0, 0]))
    assert tied.tolist() == [1, 0, 0]


def test_predictions_per_task_type():
    assert predictions(TASKS["mnli"], torch.tensor([[0.0, 2.0, 1.0]])).tolist() == [1]
    assert predictions(TASKS["stsb"], torch.tensor([[2.5]])).tolist() == [2.5]
    ranked = predictions(TASKS["qnli-rank"], torch.tensor([[0.0], [1.0]]), torch.tensor([0, 0]))
    assert ranked.tolist() == [0, 1]


def test_relevance_labels_follow_positive_label():
    task = TASKS["qnli-rank"]  # labels [entailment, not_entailment], positive = entailment = 0
    assert relevance_labels(task, torch.tensor([0, 1, 0])).tolist() == [1, 0, 1]
