"""`mtdnn export` writes a model card: the Hub's metadata header (base model, datasets, license,
pipeline tag, eval results equal to the model's table cells) and the provenance, read back with
``huggingface_hub``'s own parser; a file that is not a cell of the model is refused in one line."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess

import pytest
import torch
from helpers import REPO, one_line_error
from huggingface_hub import ModelCard
from tiny_runs import TASKS, tiny_encoder, train_mtl_args
from transformers import AutoModel

from mtdnn import paths
from mtdnn.card import HUB_METRICS, NO_CELLS, base_model
from mtdnn.cli import main
from mtdnn.model.encoders import ALIASES
from mtdnn.prepare import prepare_task
from mtdnn.tokenize import tokenize_task

KEY, SEED = "0123abcdef", 7
CFG = json.dumps(
    {
        "max_train_examples": 16,
        "max_eval_examples": 16,
        "batch_size": 8,
        "epochs": 1,
        "precision": "fp32",
        "eval_each_epoch": False,
    }
)
MODEL = paths.mtl_dir("minilm", KEY, SEED)
CELL = paths.glue_cell("mtl", "minilm", "{task}", KEY, SEED)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, glue_dir):
    """A tiny multi-task model (RTE + STS-B) trained under the `minilm` alias in the workflow's
    layout, with its two cells written by the training job, in a git checkout: (root, revision).

    The alias points at the tiny encoder while it trains (its tokenizer is MiniLM's own), so
    the model records `minilm` as its encoder as a real one does, in seconds."""
    root = tmp_path_factory.mktemp("card")
    encoder = tiny_encoder(root / "tiny-bert")
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "tiny"], check=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setitem(ALIASES, "minilm", lambda: str(encoder))
        for name in ("rte", "stsb"):
            canonical = root / paths.canonical_dir(name)
            prepare_task(TASKS[name], canonical, str(glue_dir))
            tokenize_task(TASKS[name], canonical, paths.tokenized_dir("minilm", 64, name),
                          str(encoder), 64)  # fmt: skip
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            args = [*train_mtl_args("minilm", SEED, CFG, tasks="rte,stsb"), "--out", MODEL,
                    "--cells", CELL, "--cell", "table=glue", "--cell", "model=mtl"]  # fmt: skip
            assert main(args) == 0
        finally:
            torch.set_num_threads(threads)
    revision = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True)
    return root, revision.stdout.strip()


def cell(root, task: str) -> dict:
    return json.loads((root / CELL.format(task=task)).read_text())


def test_export_writes_a_model_card_the_hub_reads(trained, tmp_path, cli):
    root, revision = trained
    out = tmp_path / "mtdnn-minilm"
    r = cli(["export", "--model", MODEL, "--out", out], root)
    assert r.returncode == 0, r.stderr
    card = ModelCard.load(out / "README.md")  # the library's parser: a bad header raises
    data = card.data
    assert data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert data.datasets == ["nyu-mll/glue"]
    project = re.search(r'^license = "(.+)"$', (REPO / "pyproject.toml").read_text(), re.M)
    assert data.license == project[1].lower() == "mit"
    assert data.pipeline_tag == "feature-extraction" and data.library_name == "transformers"
    assert {"mt-dnn", "multi-task", "text-classification"} <= set(data.tags)
    assert data.model_name == "mtdnn-minilm"
    expected = {
        (task, "validation", HUB_METRICS[m], v)
        for task in ("rte", "stsb")
        for m, v in cell(root, task)["metrics"]["dev"].items()
        if math.isfinite(v)
    }
    got = {(e.task_name, e.dataset_split, e.metric_type, e.metric_value) for e in data.eval_results}
    assert got == expected and ("rte", "validation", "accuracy") in {x[:3] for x in got}
    assert {(e.dataset_type, e.dataset_config) for e in data.eval_results} == {
        ("nyu-mll/glue", "rte"),
        ("nyu-mll/glue", "stsb"),
    }
    assert cell(root, "rte")["provenance"]["git_revision"] == revision
    assert f"Knob key: {KEY}" in card.text and f"Git revision (evaluation): {revision}" in card.text
    assert "apache-2.0" in card.text  # the base model's license, from its bundled card
    # `hf upload <repo> <dir>` sends every file: the folder holds the model and nothing else
    names = {p.name for p in out.iterdir()}
    assert {"README.md", "config.json", "model.safetensors", "tokenizer.json"} <= names
    assert not [n for n in names if n.startswith(".") or n.endswith(".tmp")], names
    assert (
        AutoModel.from_pretrained(out).config.hidden_size == 32
    )  # the card does not get in the way


def test_a_model_outside_the_layout_gets_a_card_without_eval_results(
    trained, tmp_path, cli, caplog
):
    root, _ = trained
    model = shutil.copytree(root / MODEL, tmp_path / "mine" / "model")
    out = tmp_path / "exported"
    with caplog.at_level("WARNING", logger="mtdnn.export"):
        r = cli(["export", "--model", model, "--out", out], root)
    assert r.returncode == 0, r.stderr
    assert [m for m in caplog.messages if NO_CELLS in m]  # the notice
    card = ModelCard.load(out / "README.md")
    assert card.data.eval_results is None and "model-index" not in card.content
    assert "model_name" not in card.data.to_dict()
    assert card.data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert "Knob key: not known" in card.text and NO_CELLS in card.text
    # its cells given by hand put the eval results back
    r = cli(["export", "--model", model, "--out", out, "--cell", CELL.format(task="rte")], root)
    assert r.returncode == 0, r.stderr
    results = ModelCard.load(out / "README.md").data.eval_results
    assert {e.task_name for e in results} == {"rte"}


def test_a_file_that_is_no_cell_of_the_model_is_refused(trained, tmp_path, cli):
    root, _ = trained
    out = tmp_path / "exported"
    config = f"{MODEL}/config.json"
    r = cli(["export", "--model", MODEL, "--out", out, "--cell", config], root)
    one_line_error(r, config, "not a table cell", "cell.task")
    other = cell(root, "rte")
    other["provenance"]["seed"] = SEED + 1
    (tmp_path / "seed8.json").write_text(json.dumps(other))
    r = cli(["export", "--model", MODEL, "--out", out, "--cell", tmp_path / "seed8.json"], root)
    one_line_error(r, "seed8.json", "a cell of another model", f"seed {SEED}")
    assert not out.exists()


def test_base_model_is_the_hub_id_behind_the_alias():
    assert base_model("minilm") == ("sentence-transformers/all-MiniLM-L6-v2", "apache-2.0")
    assert base_model("bert-base")[0] == "bert-base-uncased"
    assert base_model(str(REPO)) == (None, None)  # a local directory is no Hub model
