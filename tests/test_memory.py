"""Memory knobs and weight precision: gradient checkpointing really recomputes the encoder and trains
alike; encoders and checkpoints always load as float32 master weights."""

from __future__ import annotations

import json

import numpy as np
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


def rte_run(encoder, cfg, out):
    """A run of ``cfg`` on the tiny project's RTE rows (max_len 64, seed 7)."""
    return build_run([TASKS["rte"]], str(encoder), 64, cfg, 7, out)


def test_gradient_checkpointing_recomputes_layers_and_trains_alike(project):
    root, encoder = project
    cfg = TINY.with_overrides(epochs=1, eval_each_epoch=False)
    losses, calls = {}, {}
    for on in (False, True):
        run = rte_run(encoder, cfg.with_overrides(gradient_checkpointing=on), root / f"ckpt-{on}")
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


def test_padding_to_a_multiple_changes_shapes_not_the_loss(project, tmp_path, glue_dir):
    root, _ = project
    # No dropout anywhere: the masks are drawn over the padded shape, so they would differ.
    encoder = tiny_encoder(tmp_path / "no-dropout", dropout=0.0)
    build_project(root, glue_dir, encoder, tasks=("rte",))
    cfg = TINY.with_overrides(epochs=1, eval_each_epoch=False, dropout=0.0)
    losses, widths = {}, {}
    for multiple in (1, 8):
        run = rte_run(
            encoder, cfg.with_overrides(pad_to_multiple_of=multiple), tmp_path / f"pad-{multiple}"
        )
        seen = widths.setdefault(multiple, [])
        run.model.encoder.embeddings.register_forward_pre_hook(
            lambda _, args, kwargs, seen=seen: seen.append(kwargs["input_ids"].shape[1]),
            with_kwargs=True,
        )
        losses[multiple] = fit(run)["losses"]
    assert len(set(widths[1])) > 2 and any(w % 8 for w in widths[1])  # ragged widths unpadded
    assert all(w % 8 == 0 for w in widths[8]) and max(widths[8]) <= 64
    # The padded keys get zero attention and the mean readout skips them: the same losses.
    assert losses[8] == pytest.approx(losses[1], rel=1e-4)


def test_collate_pads_to_the_multiple_with_the_pad_id_and_a_zero_mask(project):
    from mtdnn import paths
    from mtdnn.runtime.batching import collate, load_task_data

    _, encoder = project
    data = load_task_data(TASKS["rte"], paths.tokenized_dir(str(encoder), 64, "rte"), "train")
    short = np.flatnonzero(data.lengths % 16)  # rows whose length is not a multiple of 16
    order = short[np.argsort(data.lengths[short], kind="stable")]
    rows = order[[0, len(order) // 4, len(order) // 2]]  # the last of them sets the width
    plain, padded = collate(data, rows), collate(data, rows, pad_id=0, multiple=16)
    width = plain["input_ids"].shape[1]
    assert width % 16 and len(set(data.lengths[rows])) > 1
    assert padded["input_ids"].shape[1] == -(-width // 16) * 16 >= width
    assert torch.equal(padded["input_ids"][:, :width], plain["input_ids"])
    assert torch.equal(padded["attention_mask"][:, :width], plain["attention_mask"])
    assert not padded["attention_mask"][:, width:].any()
    assert not padded["input_ids"][:, width:].any()
