"""The command line says what it does: help texts, `--cfg` merged over params key by key and
validated, and `encoder:` as a local model directory."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import yaml
from fixtures import make_rte
from helpers import REPO, one_line_error
from tiny_runs import tiny_encoder

from mtdnn.cli import build_parser
from mtdnn.config import TrainConfig, stage_config
from mtdnn.grid import Grid
from mtdnn.job import spec_config
from mtdnn.jobspec import JobSpec
from mtdnn.paths import tokenized_dir
from mtdnn.rulespecs import rule_spec

PIPELINE = ["prepare", "tokenize", "train-mtl", "finetune", "evaluate", "report"]


def smoke_params(tmp: Path, edit=None) -> Path:
    params = yaml.safe_load((REPO / "mtdnn/profiles/smoke.yaml").read_text())
    if edit:
        edit(params)
    path = tmp / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_help_names_snakemake_and_lists_verbs_in_pipeline_order(tmp_path, run_cli):
    r = run_cli(["--help"], tmp_path)
    assert r.returncode == 0
    assert "Snakemake" in r.stdout and "snakemake --cores all" in r.stdout
    verbs = r.stdout[r.stdout.index("verbs, in pipeline order") :]
    where = [verbs.index(f"\n    {v} ") for v in PIPELINE]
    assert where == sorted(where), verbs
    assert "adapt" in verbs and verbs.index("\n    adapt ") > verbs.index("\n    finetune ")


def test_every_option_of_every_verb_has_help():
    parser = build_parser()
    verbs = subparsers(parser)
    assert set(PIPELINE) <= set(verbs)
    missing = []
    for name, sub in [("mtdnn", parser), *verbs.items()]:
        for action in sub._actions:
            if action.help == argparse.SUPPRESS or isinstance(action, argparse._SubParsersAction):
                continue  # hidden on purpose (test-only flags); verbs are checked one by one
            if not (action.help or "").strip():
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []


def hand_spec_of(argv: list[str], monkeypatch) -> JobSpec:
    """The job spec a hand-typed verb builds (the job itself is not run)."""
    from mtdnn import job
    from mtdnn.cli import main

    specs = []
    monkeypatch.setattr(job, "run_job", lambda spec, registry, stop_after=None: specs.append(spec))
    assert main(argv) == 0
    return specs[0]


def _finetune_argv(params: Path, cfg: str | None) -> list[str]:
    argv = ["finetune", "--task", "rte", "--seed", "1", "--out", "m", "--params", str(params)]
    return argv + (["--cfg", cfg] if cfg is not None else [])


def test_cfg_overrides_the_profile_key_by_key(tmp_path, monkeypatch):
    """The README's `--cfg '{"lr": 2e-5}'` changes lr and keeps every other knob of the profile
    (caps, epochs, and the task's own per_task block)."""
    params = smoke_params(
        tmp_path, lambda p: p["finetune"].update(per_task={"rte": {"dropout": 0.2, "lr": 1e-4}})
    )
    cfg = spec_config(hand_spec_of(_finetune_argv(params, '{"lr": 2e-5}'), monkeypatch))
    doc = yaml.safe_load(params.read_text())
    profile = doc["finetune"]
    assert cfg.lr == 2e-5
    assert cfg.dropout == 0.2  # per_task survives an override of another key
    assert cfg.max_train_examples == doc["mtl"]["max_train_examples"] == 64  # the multi-task rows
    assert cfg.epochs == profile["epochs"] and cfg.batch_size == profile["batch_size"]
    assert cfg != TrainConfig(lr=2e-5)  # not the bare defaults plus lr


def test_the_workflow_and_a_hand_run_build_the_same_spec(tmp_path, monkeypatch):
    """One code path: the rule's spec for a baseline cell and `mtdnn finetune` typed with that
    cell's paths are the same record, and the trainer gets exactly the params' knobs."""
    params = smoke_params(tmp_path, lambda p: p["finetune"].update(per_task={"rte": {"lr": 1e-4}}))
    from mtdnn import paths
    from mtdnn.config import load_params

    loaded = load_params(params)
    grid = Grid(loaded)
    key = grid.finetune_key("rte", "base")
    wc = argparse.Namespace(init="base", enc="minilm", task="rte", key=key, seed="1")
    via_rule = JobSpec.from_json(rule_spec(grid, "finetune", wc))
    argv = ["finetune", "--task", "rte", "--seed", "1", "--params", str(params),
            "--out", paths.finetune_dir("base", "minilm", "rte", key, 1),
            "--cell-out", paths.glue_cell("base", "minilm", "rte", key, 1)]  # fmt: skip
    by_hand = hand_spec_of(argv, monkeypatch)
    assert via_rule == by_hand
    want = TrainConfig.from_dict(stage_config(loaded, "finetune", "rte", "base"))
    assert spec_config(via_rule) == want and want.lr == 1e-4


@pytest.mark.parametrize(
    "cfg, fragments",
    [
        ('{"lr": "fast"}', ["--cfg", "finetune.lr", "'fast' is not of type 'number'"]),
        ('{"epochs": 0}', ["--cfg", "finetune.epochs", "0"]),
        ('{"batch_size": 2.5}', ["--cfg", "finetune.batch_size", "integer"]),
        ('{"lr2": 1e-5}', ["--cfg", "finetune.lr2", "unknown key", "lr"]),
        ('{"tasks": ["rte"]}', ["--cfg", "finetune.tasks", "unknown key"]),
        ("[1e-5]", ["--cfg", "expected a JSON object"]),
        ('{"lr": 1e-5', ["--cfg", "invalid JSON"]),
    ],
)
def test_bad_cfg_is_one_line_naming_the_key(tmp_path, cli, cfg, fragments):
    smoke_params(tmp_path)
    argv = ["finetune", "--task", "rte", "--seed", "1", "--out", "m", "--cfg", cfg]
    one_line_error(cli(argv, tmp_path), *fragments)
    assert not (tmp_path / "m").exists()


def test_cfg_with_a_wrong_type_exits_2(tmp_path, run_cli):
    """The real process: exit status 2, one line naming the key, no traceback, nothing written."""
    smoke_params(tmp_path)
    argv = [
        "train-mtl",
        "--tasks",
        "rte",
        "--seed",
        "1",
        "--out",
        "m",
        "--cfg",
        '{"epochs": "two"}',
    ]
    one_line_error(run_cli(argv, tmp_path), "--cfg", "mtl.epochs", "'two' is not of type 'number'")
    assert not (tmp_path / "m").exists()


def test_encoder_may_be_a_local_model_directory(tmp_path, run_cli):
    """`encoder: <dir>` in params: check accepts it, tokenize and train-mtl use it, and --cfg
    on top of the profile keeps the profile's caps."""
    encoder = tiny_encoder(tmp_path / "encoders" / "tiny-bert")
    glue = make_rte(tmp_path / "glue")

    def edit(p: dict) -> None:
        p.update(encoder=str(encoder))
        p["data"].update(glue_dir=str(glue), sources={})
        p["mtl"].update(tasks=["rte"], max_train_examples=3, precision="fp32")
        p["adapt"].update(datasets=[])

    smoke_params(tmp_path, edit)
    r = run_cli(["check"], tmp_path)
    assert r.returncode == 0, r.stderr
    for verb in ("prepare", "tokenize"):
        r = run_cli([verb, "--task", "rte"], tmp_path)
        assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / tokenized_dir(str(encoder), 64, "rte") / "manifest.json").is_file()
    r = run_cli(["train-mtl", "--tasks", "rte", "--seed", "1", "--cfg", '{"lr": 1e-3}', "--out", "m"],
                tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["encoder"] == str(encoder)
    assert config["train_config"]["lr"] == 1e-3
    assert config["train_config"]["max_train_examples"] == 3  # from the profile, not dropped


def test_encoder_directory_that_does_not_exist_is_named(tmp_path, run_cli):
    missing = tmp_path / "no-such-model"
    smoke_params(tmp_path, lambda p: p.update(encoder=str(missing)))
    r = run_cli(["check"], tmp_path)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "encoder" in lines[0] and str(missing) in lines[0], r.stderr
    assert "local model directory" in lines[0]
