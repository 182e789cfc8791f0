"""The `paper` profile against the paper's section 4.2 (and 4.4), knob by knob."""

from __future__ import annotations

import pytest
import torch
from helpers import REPO

from mtdnn.config import TrainConfig, read_yaml, stage_config, validate
from mtdnn.training.optim import make_optimizer


@pytest.fixture(scope="module")
def paper() -> dict:
    path = REPO / "mtdnn" / "profiles" / "paper.yaml"
    return validate(read_yaml(path), str(path))


@pytest.mark.parametrize(("stage", "task"), [("mtl", None), ("finetune", "rte"), ("adapt", None)])
def test_decoupled_weight_decay_as_in_the_authors_adamax(paper, stage, task):
    """The paper states no decay, but the authors' Adamax (module/bert_optim.py) adds 0.01 x the
    weight to its update, beside the gradient step (decoupled), on every weight but biases and
    LayerNorm. With zero gradients the Adamax step is zero, so one step must shrink a decayed
    weight by exactly (1 - lr x 0.01) and leave the LayerNorm untouched; coupled L2 (torch's
    Adamax weight_decay) would instead move it by lr x sign, through the infinity norm."""
    cfg = TrainConfig.from_dict(stage_config(paper, stage, task))
    assert cfg.optimizer == "adamax" and cfg.weight_decay == 0.01
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    with torch.no_grad():
        model[1].weight.uniform_(0.5, 1.5)
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = make_optimizer(model, cfg, torch.device("cpu"))
    assert isinstance(optimizer, torch.optim.Adamax)
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.0, 0.0]  # not coupled
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    weight, bias, norm_w, norm_b = (p.detach() for p in model.parameters())
    torch.testing.assert_close(weight, before[0] * (1 - cfg.lr * 0.01), rtol=0, atol=1e-9)
    assert not torch.equal(weight, before[0])
    for after, b in zip((bias, norm_w, norm_b), before[1:], strict=True):
        assert torch.equal(after, b)


def test_domain_adaptation_uses_bert_base_with_a_real_schedule(paper):
    assert paper["encoder"] == "bert-large" and paper["adapt"]["encoder"] == "bert-base"
    cfg = TrainConfig.from_dict(stage_config(paper, "adapt"))
    assert "encoder" not in stage_config(paper, "adapt")  # which encoder is not a training knob
    assert (cfg.head, cfg.batch_size, cfg.epochs, cfg.min_steps) == ("linear", 32, 5, 200)


def test_the_rest_of_section_4_2(paper):
    mtl = TrainConfig.from_dict(stage_config(paper, "mtl"))
    rte = TrainConfig.from_dict(stage_config(paper, "finetune", "rte"))
    cola = TrainConfig.from_dict(stage_config(paper, "finetune", "cola"))
    for cfg in (mtl, rte, cola):
        assert (cfg.batch_size, cfg.epochs, cfg.warmup, cfg.clip_norm) == (32, 5, 0.1, 1.0)
    assert (mtl.lr, cola.lr, rte.lr) == (5e-5, 5e-5, 2e-5)  # RTE: the paper-era code
    assert (mtl.head, cola.head) == ("san", "linear")  # SAN off in fine-tuning: the code too
    assert paper["tokenize"]["max_len"] == 512 and paper["seeds"] == [2018]
