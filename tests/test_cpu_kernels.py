"""CPU training's cheap dropout masks and attention (mtdnn.model.dropout, mtdnn.model.attention):
the same math as transformers' own attention, the advertised drop rate, masked gradients, torch's
RNG stream, and checkpoints unchanged."""

from __future__ import annotations

import pytest
import torch
from scipy.stats import binomtest
from tiny_runs import tiny_bert_config
from transformers import BertConfig, BertModel

from mtdnn.model.attention import NAME, score_bias, use_cpu_attention
from mtdnn.model.dropout import (
    CheapDropout,
    cheap_dropout,
    drop_mask,
    effective_rate,
    use_cheap_dropout,
)

torch.set_num_threads(1)


def tiny_bert(seed: int = 0, dropout: float = 0.1) -> BertModel:
    torch.manual_seed(seed)
    return BertModel(tiny_bert_config(dropout, vocab_size=100, heads=4))


def padded_batch():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1, 100, (4, 12), generator=g)
    mask = torch.ones(4, 12, dtype=torch.long)
    mask[1, 7:] = 0
    mask[3, 3:] = 0
    return ids, mask


@pytest.mark.parametrize("p", [0.1, 0.3, 0.05])
def test_the_mask_drops_at_the_advertised_rate(p):
    torch.manual_seed(0)
    mask = drop_mask((256, 1001), p, torch.device("cpu"))
    assert mask.shape == (256, 1001) and mask.dtype == torch.bool
    assert abs(effective_rate(p) - p) <= 2**-17
    test = binomtest(int(mask.sum()), mask.numel(), effective_rate(p))
    assert test.pvalue > 1e-4  # 256k draws: a wrong rate (or constant bits) fails by far
    # the four 16-bit draws of one word are not tied to each other
    cols = mask.view(-1)[: 4 * (mask.numel() // 4)].view(-1, 4).float()
    assert abs(torch.corrcoef(cols.T)[0, 1:].max().item()) < 0.01


def test_masks_follow_torchs_generator_whatever_the_thread_count():
    torch.manual_seed(5)
    a = drop_mask((97, 33), 0.1, torch.device("cpu"))
    state = torch.get_rng_state()
    b = drop_mask((97, 33), 0.1, torch.device("cpu"))
    torch.set_num_threads(2)
    try:
        torch.manual_seed(5)
        assert torch.equal(drop_mask((97, 33), 0.1, torch.device("cpu")), a)
        torch.set_rng_state(state)  # a resumed run continues the same stream
        assert torch.equal(drop_mask((97, 33), 0.1, torch.device("cpu")), b)
    finally:
        torch.set_num_threads(1)
    assert not torch.equal(a, b)


def test_cheap_dropout_scales_the_kept_values_and_masks_the_gradient():
    x = torch.rand(64, 50, requires_grad=True)
    torch.manual_seed(3)
    y = cheap_dropout(x, 0.25)
    kept = y != 0
    scale = 1 / (1 - effective_rate(0.25))
    assert torch.allclose(y[kept], x[kept] * scale)
    y.sum().backward()
    assert torch.equal(x.grad, kept.float() * scale)
    assert torch.count_nonzero(cheap_dropout(x, 1.0)) == 0


def test_swapped_dropout_keeps_the_weights_and_evaluates_as_before():
    model, ref = tiny_bert(), tiny_bert()
    assert use_cheap_dropout(model) == sum(isinstance(m, torch.nn.Dropout) for m in ref.modules())
    assert all(type(m) is not torch.nn.Dropout for m in model.modules())
    assert any(isinstance(m, CheapDropout) for m in model.modules())
    assert model.state_dict().keys() == ref.state_dict().keys()
    ids, mask = padded_batch()
    model.eval(), ref.eval()
    with torch.no_grad():
        assert torch.equal(model(ids, mask).last_hidden_state, ref(ids, mask).last_hidden_state)


def test_training_attention_equals_transformers_sdpa_without_dropout():
    """Dropout 0 isolates the math: the output and every gradient match SDPA's on a padded batch
    (so the padding mask, the scale and the head layout are right)."""
    model, ref = tiny_bert(dropout=0.0), tiny_bert(dropout=0.0)
    assert use_cpu_attention(model) and model.config._attn_implementation == NAME
    ids, mask = padded_batch()
    model.train(), ref.train()
    out, want = model(ids, mask).last_hidden_state, ref(ids, mask).last_hidden_state
    real = mask.bool()
    assert torch.allclose(out[real], want[real], atol=1e-5)
    # a random readout: a sum of squares of LayerNorm outputs is constant, its gradient all noise
    readout = torch.randn(out.shape[-1], generator=torch.Generator().manual_seed(2))
    (out[real] @ readout).sum().backward()
    (want[real] @ readout).sum().backward()
    for (name, p), q in zip(model.named_parameters(), ref.parameters(), strict=True):
        if q.grad is not None:
            assert torch.allclose(p.grad, q.grad, atol=1e-5, rtol=1e-4), name


def test_training_attention_drops_probabilities_and_stays_finite():
    model = tiny_bert(dropout=0.3)
    use_cpu_attention(model), use_cheap_dropout(model)
    ids, mask = padded_batch()
    model.train()
    torch.manual_seed(0)
    a = model(ids, mask).last_hidden_state
    torch.manual_seed(0)
    b = model(ids, mask).last_hidden_state
    torch.manual_seed(1)
    c = model(ids, mask).last_hidden_state
    assert torch.isfinite(a).all()
    assert torch.equal(a, b) and not torch.equal(a, c)  # seeded, and dropout is on


def test_score_bias_masks_padded_keys_only():
    mask = torch.ones(2, 1, 5, 5, dtype=torch.bool)
    mask[1, :, :, 3:] = False
    bias = score_bias(mask, heads=3, dtype=torch.float32)
    assert bias.shape == (6, 1, 5)  # one row per sequence and head, broadcast over queries
    assert (bias[:3] == 0).all() and (bias[3:, :, :3] == 0).all()
    assert (bias[3:, :, 3:] < -1e38).all()
    mask[0, :, 2, 1] = False  # a query-dependent mask keeps every row
    assert score_bias(mask, heads=3, dtype=torch.float32).shape == (6, 5, 5)


def test_an_encoder_without_the_attention_interface_is_left_alone():
    class Plain(torch.nn.Module):
        config = BertConfig()

    assert not use_cpu_attention(Plain())
