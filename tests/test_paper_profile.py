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
def test_no_weight_decay_as_in_the_paper(paper, stage, task):
    """Section 4.2 states none, and the authors' code defaults to --weight_decay 0; torch's Adamax
    would apply any as coupled L2."""
    cfg = TrainConfig.from_dict(stage_config(paper, stage, task))
    assert cfg.optimizer == "adamax" and cfg.weight_decay == 0.0
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    optimizer = make_optimizer(model, cfg, torch.device("cpu"))
    assert isinstance(optimizer, torch.optim.Adamax)
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.0, 0.0]


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
