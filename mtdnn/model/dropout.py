"""Dropout with cheap masks on the CPU.

``torch.nn.functional.dropout`` on a CPU tensor draws one Bernoulli sample per element from the
serial Mersenne Twister; in a MiniLM training step that was a quarter of the time (the attention
probabilities alone are 32 × 12 × 128 × 128 elements per layer). Here one 64-bit draw of the same
generator gives the masks of four elements (16 random bits each), compared with one scalar, so the
stream stays torch's own: seeded by ``torch.manual_seed``, saved and restored with the RNG state
on resume, and independent of the thread count. The drop rate is ``p`` rounded to a multiple of
2⁻¹⁶ (0.1 → 0.100006), and the kept elements are scaled by the inverse of that rate's complement,
so the expectation is unchanged. Other devices keep torch's fused kernels.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

RESOLUTION = 1 << 16  # the drop rate is a multiple of 2^-16: 16 random bits per element


def effective_rate(p: float) -> float:
    """The drop rate the masks realise for a requested ``p``."""
    return round(p * RESOLUTION) / RESOLUTION


def drop_mask(shape: torch.Size | tuple[int, ...], p: float, device: torch.device) -> Tensor:
    """A bool tensor of ``shape``, True where an element is dropped (rate ``effective_rate(p)``)."""
    n, k = math.prod(shape), round(p * RESOLUTION)
    if k >= RESOLUTION:
        return torch.ones(shape, dtype=torch.bool, device=device)
    words = -(-n // 4)
    # All 64 bits random (the bare ``random_()`` of int64 leaves the sign bit 0); the one value of
    # 2^64 that [-2^63, 2^63 - 1) leaves out biases a chunk by 2^-64.
    bits = torch.empty(words, dtype=torch.int64, device=device).random_(-(1 << 63), (1 << 63) - 1)
    chunks = bits.view(torch.int16)  # four 16-bit draws per word, each uniform on [-2^15, 2^15)
    return (chunks < k - (1 << 15))[:n].view(shape)


def cheap_dropout(x: Tensor, p: float) -> Tensor:
    """Training-mode dropout of ``x`` with a ``drop_mask``; the gradient is masked the same way."""
    q = effective_rate(p)
    if q >= 1.0:
        return torch.zeros_like(x)
    return x.masked_fill(drop_mask(x.shape, p, x.device), 0).mul(1.0 / (1.0 - q))


class CheapDropout(nn.Dropout):
    """``nn.Dropout`` whose CPU training path draws its mask with ``drop_mask``."""

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0 or x.device.type != "cpu":
            return super().forward(x)
        return cheap_dropout(x, self.p)


def use_cheap_dropout(model: nn.Module) -> int:
    """Swap every ``nn.Dropout`` in ``model`` for a ``CheapDropout`` of the same rate, in place;
    how many were swapped. Dropout holds no weights, so checkpoints are unchanged."""
    swapped = 0
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if type(child) is nn.Dropout:
                setattr(module, name, CheapDropout(child.p, child.inplace))
                swapped += 1
    return swapped
