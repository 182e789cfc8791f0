"""The job spec (mtdnn.jobspec): the one record a training rule hands to `mtdnn run --spec`. It
round-trips through JSON, refuses unknown or missing fields with one line, and a job trains with
exactly the knobs its key was hashed from: a spec whose knobs differ from its key is refused."""

from __future__ import annotations

import argparse
import dataclasses
import json

import pytest
from helpers import REPO, one_line_error

from mtdnn.config import TrainConfig, read_yaml, validate
from mtdnn.errors import MtdnnError
from mtdnn.grid import Grid
from mtdnn.job import spec_config
from mtdnn.jobspec import JobSpec, knob_key
from mtdnn.rulespecs import rule_spec
from mtdnn.subsample import size_label


@pytest.fixture
def grid(monkeypatch, glue_dir, derived_dir) -> Grid:
    """The default profile's grid over the real GLUE copy, Hub offline."""
    monkeypatch.setenv("GLUE_DIR", str(glue_dir))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = REPO / "mtdnn" / "profiles" / "default.yaml"
    return Grid(validate(read_yaml(path), "default.yaml"))


def every_job(grid: Grid) -> list[tuple[str, argparse.Namespace]]:
    """(stage, wildcards) of every training job behind the default profile's two tables."""
    wc = argparse.Namespace
    seeds = [str(s) for s in grid.seeds]
    jobs = [("mtl", wc(enc=grid.enc, key=grid.mtl_key, seed=s)) for s in seeds]
    jobs += [
        ("finetune", wc(init=i, enc=grid.enc, task=t, key=grid.finetune_key(t, i), seed=s))
        for i in grid.finetune_inits
        for t in grid.model_tasks(i)
        for s in seeds
    ]
    sizes = [size_label(n) for n in grid.adapt["sizes"]]
    jobs += [
        ("adapt", wc(init=i, enc=grid.adapt_enc, task=d, size=n, key=grid.adapt_key(i), seed=s))
        for i in ("base", "mtdnn")
        for d in grid.adapt_datasets
        for n in sizes
        for s in map(str, grid.adapt["seeds"])
    ]
    return jobs


def test_a_job_trains_with_the_knobs_its_key_was_hashed_from(grid):
    jobs = every_job(grid)
    assert {stage for stage, _ in jobs} == {"mtl", "finetune", "adapt"} and len(jobs) == 92
    for stage, wc in jobs:
        spec = JobSpec.from_json(rule_spec(grid, stage, wc))
        assert spec.key == wc.key  # the key in the job's output paths ...
        key = knob_key(stage, spec.knobs, spec.encoder, spec.max_len, spec.upstream, spec.tasks)
        assert key == wc.key  # ... is the hash of the knobs the spec carries ...
        assert spec_config(spec) == TrainConfig.from_dict(spec.knobs)  # ... which train the job
        assert all(p.endswith(f"/{wc.key}/seed{wc.seed}.json") for p in spec.cells.values())


def test_the_cells_coordinates_come_from_the_spec(grid):
    """GLUE and adaptation cells alike: built with the spec, from its own fields."""
    wc = argparse.Namespace
    key = grid.finetune_key("rte", "equal")
    ft = JobSpec.from_json(rule_spec(grid, "finetune", wc(init="equal", enc="minilm", task="rte",
                                                          key=key, seed="2")))  # fmt: skip
    assert ft.cell == {"table": "glue", "model": "equal", "seed": "2", "encoder": "minilm"}
    mtl = JobSpec.from_json(rule_spec(grid, "mtl", wc(enc="minilm", key=grid.mtl_key, seed="1")))
    assert mtl.cell["model"] == "mtl" and set(mtl.cells) == set(grid.mtl_cell_tasks)
    ad = wc(init="mtdnn", enc="minilm", task="snli", size="n549", key=grid.adapt_key("mtdnn"),
            seed="3")  # fmt: skip
    spec = JobSpec.from_json(rule_spec(grid, "adapt", ad))
    assert spec.cell == {"table": "adapt", "init": "mtdnn", "size": "n549", "seed": 3}
    assert spec.init_dir == grid.mtl_model(grid.adapt_mtl_seed) and spec.out is None


def test_a_stale_target_is_refused(grid):
    wc = argparse.Namespace(init="base", enc="minilm", task="rte", key="0" * 10, seed="1")
    with pytest.raises(MtdnnError, match="knob key 0000000000: the current params.yaml gives"):
        rule_spec(grid, "finetune", wc)


def finetune_spec(grid: Grid) -> JobSpec:
    key = grid.finetune_key("rte", "base")
    wc = argparse.Namespace(init="base", enc="minilm", task="rte", key=key, seed="1")
    return JobSpec.from_json(rule_spec(grid, "finetune", wc))


def test_the_json_round_trips(grid):
    spec = finetune_spec(grid)
    assert JobSpec.from_json(spec.to_json()) == spec


@pytest.mark.parametrize(
    "edit, fragments",
    [
        (lambda d: d.update(lr=1e-5), ["--spec", "unknown field 'lr'"]),
        (lambda d: d.pop("knobs"), ["--spec", "missing field 'knobs'"]),
        (lambda d: d.update(stage="train"), ["--spec", "stage 'train'"]),
    ],
)
def test_a_malformed_spec_is_one_line(grid, tmp_path, cli, edit, fragments):
    doc = json.loads(finetune_spec(grid).to_json())
    edit(doc)
    one_line_error(cli(["run", "--spec", json.dumps(doc)], tmp_path), *fragments)


def test_a_spec_that_is_not_json_is_one_line(tmp_path, cli):
    one_line_error(cli(["run", "--spec", '{"stage": '], tmp_path), "--spec", "invalid JSON")
    one_line_error(cli(["run", "--spec", "[1]"], tmp_path), "--spec", "expected a JSON object")


def test_a_spec_whose_knobs_differ_from_its_key_is_refused(grid, tmp_path, run_cli):
    """The real process: exit 2, one line, before anything is read or written."""
    spec = finetune_spec(grid)
    edited = dataclasses.replace(spec, knobs=spec.knobs | {"lr": spec.knobs["lr"] * 10})
    r = run_cli(["run", "--spec", edited.to_json()], tmp_path)
    one_line_error(r, "--spec", f"key {spec.key} does not match the spec's knobs")
    assert not list(tmp_path.rglob("*.json")) and not (tmp_path / "models").exists()
    # A knob the schema refuses, with its key recomputed to match, is one line too.
    bad = dataclasses.replace(spec, knobs=spec.knobs | {"lr": "fast"})
    key = knob_key("finetune", bad.knobs, bad.encoder, bad.max_len, bad.upstream, bad.tasks)
    r = run_cli(["run", "--spec", dataclasses.replace(bad, key=key).to_json()], tmp_path)
    one_line_error(r, "--spec", "finetune.lr", "'fast' is not of type 'number'")
