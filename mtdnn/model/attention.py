"""Self-attention for CPU training, registered with transformers' attention interface.

In training, SDPA cannot use its fused CPU kernel (that kernel has no dropout), so it falls back
to its math path, and the attention-probability dropout draws 32 × 12 × 128² Bernoulli samples per
layer with the serial Mersenne Twister. The fused kernel without dropout is no way out either:
its backward pass on CPU is several times slower than the math path at these shapes (head size
32). So CPU training runs the math of HF's eager BERT attention (scores, mask, softmax, dropout,
values) with as few passes over the (B·heads, T, T) tensors as it allows: element-wise passes
there cost more than the GEMMs. The scale and the padding mask ride in the score GEMM
(``baddbmm``), the dropout masks are the cheap ones of ``mtdnn.model.dropout``, and 1/(1 - p) is
applied after the value product, to a tensor T/d times smaller. Evaluation and other devices go
to SDPA unchanged (its fused forward is the fast one for inference).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

from mtdnn.model.dropout import drop_mask, effective_rate

NAME = "mtdnn_cpu"
# What masked scores become: finite in bf16 and fp32 alike, so a masked score never turns a row NaN.
MASKED = torch.finfo(torch.bfloat16).min


def attention(
    module: nn.Module,
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attention_mask: Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs,
) -> tuple[Tensor, None]:
    """``sdpa_attention_forward``'s contract: (B, T, heads, d) output and no weights."""
    if not module.training or query.device.type != "cpu":
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    b, h, t, d = query.shape
    scaling = d**-0.5 if scaling is None else scaling
    q, k, v = (x.reshape(b * h, x.shape[2], d) for x in (query, key, value))  # (B·h, T, d)
    bias = score_bias(attention_mask, h, query.dtype)
    scores = torch.baddbmm(bias, q, k.transpose(1, 2), beta=1.0, alpha=scaling)  # (B·h, T, T)
    probs = torch.softmax(scores, dim=-1)
    rate = effective_rate(dropout)
    if 0 < rate < 1:
        probs = probs.masked_fill(drop_mask(probs.shape, dropout, probs.device), 0)
    out = torch.bmm(probs, v).view(b, h, t, d)
    if rate > 0:
        out = out * (0.0 if rate >= 1 else 1.0 / (1.0 - rate))
    return out.transpose(1, 2).contiguous(), None


def score_bias(mask: Tensor | None, heads: int, dtype: torch.dtype) -> Tensor:
    """``sdpa_mask``'s bool mask (B, 1, Tq, Tk), True where a key may be attended, as an additive
    bias that broadcasts over the (B·heads, Tq, Tk) scores: one row per sequence when every query
    sees the same keys (padding, as in an encoder), else the full mask."""
    if mask is None:
        return torch.zeros((1, 1, 1), dtype=dtype)
    row = mask[:, :, :1, :]  # (B, 1, 1, Tk)
    if mask.shape[2] > 1 and not torch.equal(mask, row.expand_as(mask)):
        row = mask
    b, _, tq, tk = row.shape
    bias = torch.zeros(row.shape, dtype=dtype, device=mask.device).masked_fill_(~row, MASKED)
    return bias.expand(b, heads, tq, tk).reshape(b * heads, tq, tk)


AttentionInterface.register(NAME, attention)
AttentionMaskInterface.register(NAME, sdpa_mask)  # the bool masks SDPA gets, for both paths


def use_cpu_attention(encoder: nn.Module) -> bool:
    """Route ``encoder``'s self-attention through ``attention`` when it uses transformers'
    attention interface (BERT, RoBERTa, ELECTRA do; DeBERTa has its own); whether it does. The
    encoder config's recorded form is not affected: models are saved from the config taken at
    build time, and the implementation is chosen anew whenever a model is loaded."""
    config = encoder.config
    if not getattr(encoder, "_supports_attention_backend", False):
        return False
    if config._attn_implementation not in ("sdpa", "eager"):
        return False
    config._attn_implementation = NAME
    return True
