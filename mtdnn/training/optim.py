"""Optimizers (AdamW, Adamax) with the usual no-decay groups, and a linear warmup/decay schedule."""

from __future__ import annotations

import torch
from torch.optim.lr_scheduler import LambdaLR

from mtdnn.config import TrainConfig


def _groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    # Biases and LayerNorm weights are not decayed (BERT's recipe).
    decay, plain = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (
                plain if p.ndim < 2 or "LayerNorm" in name or "norm" in name.lower() else decay
            ).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]


class DecoupledAdamax(torch.optim.Adamax):
    """Adamax with decoupled weight decay, as the MT-DNN authors' optimizer applies it
    (namisan/mt-dnn ``module/bert_optim.py``: ``update += weight_decay * p`` beside the Adamax
    step, both scaled by the scheduled learning rate). Plain ``torch.optim.Adamax`` would add the
    decay to the gradient instead (coupled L2), where the infinity norm rescales it."""

    def __init__(self, groups: list[dict], lr: float) -> None:
        # The decay is kept under its own key so that Adamax's coupled decay stays off.
        groups = [g | {"decoupled_decay": g["weight_decay"], "weight_decay": 0.0} for g in groups]
        super().__init__(groups, lr=lr, foreach=True)

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001, ANN201 (torch's signature)
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if group["decoupled_decay"] and params:
                torch._foreach_mul_(params, 1.0 - group["lr"] * group["decoupled_decay"])
        return super().step(closure)


def make_optimizer(
    model: torch.nn.Module, cfg: TrainConfig, device: torch.device
) -> torch.optim.Optimizer:
    groups = _groups(model, cfg.weight_decay)
    if cfg.optimizer == "adamax":  # the paper's optimizer, with its authors' decoupled decay
        return DecoupledAdamax(groups, lr=cfg.lr)
    # The fused kernel updates all parameters in one pass; available on CPU and CUDA.
    return torch.optim.AdamW(groups, lr=cfg.lr, fused=device.type in ("cpu", "cuda"))


def linear_schedule(
    optimizer: torch.optim.Optimizer, total_updates: int, warmup: float
) -> LambdaLR:
    """Linear warmup over ``warmup`` × total updates, then linear decay to zero."""
    warm = max(int(round(warmup * total_updates)), 0)

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return max(0.0, (total_updates - step) / max(1, total_updates - warm))

    return LambdaLR(optimizer, factor)
