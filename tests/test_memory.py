"""Memory knobs and weight precision: gradient checkpointing really recomputes the encoder and trains
alike; encoders and checkpoints always load as float32 master weights."""

from __future__ import annotations

import json

import pytest
import torch
from tiny_runs import TASKS, TINY, build_project, inside_tiny_project, tiny_encoder
from transformers import BertModel

from mtdnn.model.build import load_model
from mtdnn.train import build_run
from mtdnn.training.loop import fit


@pytest.fixture(scope="module")
def project(tmp_path_factory, glue_dir):
    with inside_tiny_project(tmp_path_factory.mktemp("memory"), glue_dir, tasks=("rte",)) as made:
        yield made


def test_gradient_checkpointing_recomputes_layers_and_trains_alike(project):
    root, encoder = project
    cfg = TINY.with_overrides(epochs=1, eval_each_epoch=False)
    losses, calls = {}, {}
    for on in (False, True):
        run = build_run(
            [TASKS["rte"]],
            str(encoder),
            64,
            cfg.with_overrides(gradient_checkpointing=on),
            7,
            root / f"checkpointing-{on}",
        )
        # Inside the checkpointed layer: the recompute in backward calls it a second time.
        attention = run.model.encoder.encoder.layer[0].attention
        seen = []
        attention.register_forward_hook(lambda *_, seen=seen: seen.append(1))
        losses[on], calls[on] = fit(run)["losses"], len(seen)
    assert calls[False] == len(losses[False]) > 0
    assert calls[True] == 2 * calls[False]  # forward, then again in backward
    assert losses[True] == losses[False]  # the recompute replays the same dropout masks


def test_half_precision_encoder_and_checkpoint_load_as_float32(project, tmp_path, glue_dir):
    root, _ = project
    half = tiny_encoder(tmp_path / "half")
    BertModel.from_pretrained(half).half().save_pretrained(half)  # fp16 on disk, config says so
    assert json.loads((half / "config.json").read_text())["dtype"] == "float16"
    build_project(root, glue_dir, half, tasks=("rte",))
    cfg = TINY.with_overrides(epochs=1, max_train_examples=16, eval_each_epoch=False)
    run = build_run([TASKS["rte"]], str(half), 64, cfg, 7, tmp_path / "model")
    assert {p.dtype for p in run.model.parameters()} == {torch.float32}
    fit(run)
    # A checkpoint written from a half-precision encoder records dtype float16 in its config.
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    config["encoder_config"]["dtype"] = "float16"
    (tmp_path / "model" / "config.json").write_text(json.dumps(config))
    model, _ = load_model(tmp_path / "model", TASKS)
    assert {p.dtype for p in model.parameters()} == {torch.float32}
