"""The experiment grid (mtdnn.grid), the dry-run DAG Snakemake builds from it, and the nested,
stratified subsamples of domain adaptation. Fast: nothing is trained."""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO, job_stats

from mtdnn.config import read_yaml, validate
from mtdnn.errors import MtdnnError
from mtdnn.grid import Grid
from mtdnn.jobspec import JobSpec
from mtdnn.subsample import parse_size, resolve_size, size_label, subsample

PROFILES = REPO / "mtdnn" / "profiles"
MODELS = ("base", "equal", "mtl", "mtdnn")
# The local GLUE copy has QNLI's dev and test, but no train.tsv: QNLI cannot be trained there.
NO_LOCAL_TRAIN = {"qnli"}


def load_profile(name: str) -> dict:
    return validate(read_yaml(PROFILES / f"{name}.yaml"), f"{name}.yaml")


@pytest.fixture
def local_data(monkeypatch, glue_dir, derived_dir):
    """The environment of CI: the real GLUE copy (and the derived rows beside it), Hub offline."""
    monkeypatch.setenv("GLUE_DIR", str(glue_dir))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def cell_key(grid: Grid, model: str, task: str) -> str:
    """The knob key in a cell's path (tested on its own in test_knob_keys_*)."""
    return grid.mtl_key if model == "mtl" else grid.finetune_key(task, model)


def glue_product(params: dict, finetune: list[str], mtl: list[str]) -> set[str]:
    enc, grid = params["encoder"], Grid(params)
    return {
        f"results/cells/glue/{model}/{enc}/{task}/{cell_key(grid, model, task)}/seed{seed}.json"
        for seed, model, task in itertools.product(params["seeds"], MODELS, finetune)
        if model not in ("mtl", "equal") or task in mtl
    }


def adapt_product(params: dict, datasets: list[str]) -> set[str]:
    a, enc, grid = params["adapt"], params["encoder"], Grid(params)
    return {
        f"results/cells/adapt/{init}/{enc}/{d}/n{size}/{grid.adapt_key(init)}/seed{seed}.json"
        for d, size, seed, init in itertools.product(
            datasets, a["sizes"], a["seeds"], ("base", "mtdnn")
        )
    }


def test_knob_keys_follow_the_knobs_that_decide_each_cell(local_data) -> None:
    params = load_profile("smoke")
    grid = Grid(params)
    keys = {(t, i): grid.finetune_key(t, i) for t in ("rte", "stsb") for i in ("base", "mtdnn")}
    assert all(len(k) == 10 and set(k) <= set("0123456789abcdef") for k in keys.values())
    assert keys[("rte", "base")] != keys[("rte", "mtdnn")]  # the MT-DNN run has an upstream
    changed = copy.deepcopy(params)
    changed["finetune"].setdefault("per_task", {})["rte"] = {"lr": 3e-4}
    other = Grid(changed)
    assert other.finetune_key("rte", "mtdnn") != keys[("rte", "mtdnn")]
    assert other.finetune_key("stsb", "mtdnn") == keys[("stsb", "mtdnn")]  # only RTE's cells move
    assert other.mtl_key == grid.mtl_key
    changed["mtl"]["lr"] = 1e-4  # an upstream knob moves every MT-DNN cell, not the baseline's
    upstream = Grid(changed)
    assert upstream.finetune_key("stsb", "mtdnn") != keys[("stsb", "mtdnn")]
    assert upstream.finetune_key("stsb", "base") == keys[("stsb", "base")]
    assert Grid(copy.deepcopy(params)).finetune_key("rte", "base") == keys[("rte", "base")]
    # The two baselines are two cells: equal exposure has its own schedule, so its own key, and
    # it follows the multi-task schedule it matches (its epochs) where standard fine-tuning does not.
    equal = grid.finetune_key("stsb", "equal")
    assert equal not in (keys[("stsb", "base")], keys[("stsb", "mtdnn")])
    assert upstream.finetune_key("stsb", "equal") == equal  # mtl.lr is not part of its schedule
    changed["mtl"]["epochs"] = 2
    longer = Grid(changed)
    assert longer.finetune_key("stsb", "equal") != equal
    assert longer.finetune_key("stsb", "base") == keys[("stsb", "base")]


# --- The grid -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "n_glue", "n_adapt"),
    [
        ("smoke", 1 * (2 + 2 + 2 + 2), 1 * 2 * 2 * 2),
        # 3 seeds x (8 fine-tuned tasks x {base, mtdnn} + 7 MTL tasks x {equal, mtl});
        # SNLI x 2 sizes x 5 seeds x 2 inits
        ("default", 3 * (8 + 7 + 7 + 8), 1 * 2 * 5 * 2),
    ],
)
def test_cells_are_the_configured_product(local_data, name, n_glue, n_adapt) -> None:
    params = load_profile(name)
    grid = Grid(params)
    finetune = [t for t in params["finetune"]["tasks"] if t not in NO_LOCAL_TRAIN]
    mtl = [t for t in params["mtl"]["tasks"] if t not in NO_LOCAL_TRAIN]
    assert grid.finetune_tasks == finetune
    assert grid.mtl_tasks == mtl
    assert grid.adapt_datasets == params["adapt"]["datasets"]

    cells = grid.glue_cells()
    assert len(cells) == len(set(cells)) == n_glue
    assert set(cells) == glue_product(params, finetune, mtl)
    # The MT-DNN model without fine-tuning, and the equal-exposure baseline, are cells only for
    # tasks multi-task training has.
    assert not [c for c in cells if "/mtl/" in c and c.split("/")[-3] not in mtl]
    assert not [c for c in cells if "/equal/" in c and c.split("/")[-3] not in mtl]
    assert {c.split("/")[3] for c in cells} == {"base", "equal", "mtl", "mtdnn"}

    adapt = grid.adapt_cells()
    assert len(adapt) == len(set(adapt)) == n_adapt
    assert set(adapt) == adapt_product(params, params["adapt"]["datasets"])


def test_default_profile_skips_qnli_under_the_local_copy(local_data, monkeypatch) -> None:
    params = load_profile("default")
    assert "qnli" in params["mtl"]["tasks"] and "qnli" in params["finetune"]["tasks"]
    # A task whose folder is in the local copy is read there, even where the Hub could be used.
    for hub_offline in ("1", None):
        if hub_offline is None:
            monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        grid = Grid(params)
        assert "qnli" not in grid.finetune_tasks
        assert "qnli" not in grid.mtl_tasks
        assert not grid.has_train("qnli")
        assert not [c for c in grid.glue_cells() if "/qnli/" in c]


def test_default_profile_has_every_task_from_the_hub(monkeypatch, hub_online) -> None:
    monkeypatch.delenv("GLUE_DIR", raising=False)
    params = load_profile("default")
    grid = Grid(params)
    assert grid.glue_dir is None
    assert grid.finetune_tasks == params["finetune"]["tasks"]
    assert grid.mtl_tasks == params["mtl"]["tasks"]
    assert grid.adapt_datasets == ["snli"]
    cells = grid.glue_cells()
    assert set(cells) == glue_product(params, grid.finetune_tasks, grid.mtl_tasks)
    assert len(cells) == 3 * (9 + 8 + 8 + 9)
    qnli = {
        m: f"results/cells/glue/{m}/minilm/qnli/{cell_key(grid, m, 'qnli')}/seed1.json"
        for m in MODELS
    }
    assert {m for m in MODELS if qnli[m] in cells} == {"base", "equal", "mtl", "mtdnn"}


def test_size_labels() -> None:
    assert size_label(549) == "n549" and parse_size("n549") == 549
    assert size_label(0.001) == "p0.001" and parse_size("p0.001") == 0.001
    assert size_label(1) == "p1"  # 1 means the whole pool, not one example


def test_dry_run_owes_the_whole_default_grid(glue_dir, derived_dir, tmp_path) -> None:
    """`snakemake -n` on a clean copy (workflow and the default profile, no outputs)."""
    shutil.copytree(REPO / "workflow", tmp_path / "workflow")
    shutil.copyfile(PROFILES / "default.yaml", tmp_path / "params.yaml")
    env = dict(os.environ, GLUE_DIR=str(glue_dir), HF_HUB_OFFLINE="1")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        ["snakemake", "-n", "-p"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr

    params = load_profile("default")
    finetune = [t for t in params["finetune"]["tasks"] if t not in NO_LOCAL_TRAIN]  # 8
    mtl = [t for t in params["mtl"]["tasks"] if t not in NO_LOCAL_TRAIN]  # 7
    datasets = set(finetune) | set(mtl) | set(params["adapt"]["datasets"])  # 8 + SNLI
    seeds, a = len(params["seeds"]), params["adapt"]
    assert job_stats(proc.stderr + proc.stdout) == {
        "prepare": len(datasets),
        "tokenize": len(datasets),
        "train_mtl": seeds,
        # MT-DNN and standard fine-tuning for every task, equal exposure for the multi-task ones
        "finetune": (2 * len(finetune) + len(set(finetune) & set(mtl))) * seeds,
        "glue_table": 1,
        "adapt": len(a["datasets"]) * len(a["sizes"]) * len(a["seeds"]) * 2,
        "adapt_table": 1,
        "all": 1,
    }
    # QNLI is left out by the profile's opt-in, said once, and named in the table's footnote.
    text = proc.stderr + proc.stdout
    stats = job_stats(text)
    assert specs_name_the_declared_paths(text) == sum(stats[r] for r in TRAINING_RULES)
    assert text.count("notice: task qnli left out (data.optional_tasks)") == 1
    assert "--skipped 'qnli'" in text


TRAINING_RULES = ("train_mtl", "finetune", "adapt")


def specs_name_the_declared_paths(plan: str) -> int:
    """Every training job of a `snakemake -n -p` plan passes a spec naming only the paths its rule
    declares: its data and init are the job's inputs, its model and cells among its outputs.
    The number of jobs checked."""
    checked = 0
    for block in plan.split("\nrule ")[1:]:
        fields = dict(re.findall(r"^ {4}(\w+): (.*)$", block, re.M))
        if block.split(":", 1)[0] not in TRAINING_RULES:
            continue
        shell = next(x for x in block.splitlines() if x.startswith("Shell command:"))
        spec = JobSpec.from_json(shlex.split(shell.split(" run --spec ", 1)[1])[0])
        inputs = set(spec.data.values()) | ({spec.init_dir} - {None})
        assert inputs == set(fields["input"].split(", ")), block
        assert set(spec.cells.values()) | ({spec.out} - {None}) <= set(fields["output"].split(", "))
        checked += 1
    return checked


def test_a_named_task_without_data_is_an_error(monkeypatch) -> None:
    """Offline with no GLUE_DIR: no task is silently dropped; one error says what to set."""
    monkeypatch.delenv("GLUE_DIR", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    grid = Grid(load_profile("default"))
    with pytest.raises(MtdnnError) as error:
        grid.check()
    message = str(error.value)
    assert message.startswith("task cola: no training data: GLUE_DIR is not set")
    assert "HF_HUB_OFFLINE" in message and "set GLUE_DIR" in message
    assert "data.optional_tasks" in message and "\n" not in message


def test_only_opted_in_tasks_are_left_out(local_data) -> None:
    params = load_profile("default")
    assert params["data"]["optional_tasks"] == ["qnli"]
    grid = Grid(params)
    assert grid.skipped_tasks == ["qnli"]
    assert "qnli" not in grid.mtl_tasks + grid.finetune_tasks
    params["data"]["optional_tasks"] = []
    with pytest.raises(
        MtdnnError, match=r"task qnli: no training data: .*QNLI/train\.tsv not found"
    ):
        Grid(params).check()


def test_the_glue_table_names_left_out_tasks(cli, tmp_path) -> None:
    """`mtdnn report glue --skipped qnli` (what the glue_table rule passes) adds a footnote."""
    cells = []
    for model, acc in (("base", 61.0), ("mtdnn", 66.5)):
        cell = tmp_path / f"{model}.json"
        doc = {
            "cell": {"task": "rte", "model": model, "seed": "1"},
            "metrics": {"dev": {"accuracy": acc}},
        }
        cell.write_text(json.dumps(doc))
        cells.append(cell)
    for skipped, footnote in (
        (
            "qnli",
            "Not in this table: QNLI (no training split here; left out by data.optional_tasks).",
        ),
        ("", None),
    ):
        md = tmp_path / f"glue-{skipped}.md"
        argv = ["report", "glue", *cells, "--csv", tmp_path / "glue.csv", "--markdown", md]
        r = cli([*argv, "--skipped", skipped], tmp_path)
        assert r.returncode == 0, r.stderr
        last = md.read_text().rstrip("\n").splitlines()[-1]
        # without a footnote the file ends with what precedes it (here the notice that these
        # hand-written cells have no predictions for the bootstrap)
        assert last == footnote if footnote else "Not in this table" not in md.read_text(), last


def test_the_adaptation_table_pairs_the_inits_by_seed(cli, tmp_path) -> None:
    """`mtdnn report adapt` follows the table with MT-DNN init − base init per seed, per split and
    size, and records each mean difference in the metrics file."""
    accuracy = {("base", 1): 60.0, ("mtdnn", 1): 66.5, ("base", 2): 62.0, ("mtdnn", 2): 61.0}
    cells = []
    for (init, seed), acc in accuracy.items():
        cell = tmp_path / f"{init}{seed}.json"
        info = {"table": "adapt", "task": "snli", "init": init, "size": "n549", "n": 549}
        doc = {
            "cell": info | {"seed": seed},
            "metrics": {"dev": {"accuracy": acc}, "test": {"accuracy": acc + 1}},
        }
        cell.write_text(json.dumps(doc))
        cells.append(cell)
    md, metrics = tmp_path / "adapt.md", tmp_path / "adapt.json"
    argv = ["report", "adapt", *cells, "--csv", tmp_path / "adapt.csv", "--markdown", md]
    r = cli([*argv, "--metrics", metrics], tmp_path)
    assert r.returncode == 0, r.stderr
    text = md.read_text()
    assert "MT-DNN init − base init, paired by seed:" in text
    assert "| snli | dev | 549 | 1: +6.5, 2: -1.0 | 2.8 ± 5.3 | 1/2 |" in text
    assert "| snli | test | 549 | 1: +6.5, 2: -1.0 | 2.8 ± 5.3 | 1/2 |" in text
    assert json.loads(metrics.read_text())["adapt_delta/snli/n549"] == 2.75


def test_domain_adaptation_has_its_own_encoder_and_init(monkeypatch, hub_online) -> None:
    """The paper adapts bert-base from an MT-DNN init trained with bert-base; null shares GLUE's."""
    monkeypatch.delenv("GLUE_DIR", raising=False)  # the Hub may be used; none is fetched
    grid = Grid(load_profile("paper"))
    assert (grid.encoder, grid.adapt_encoder) == ("bert-large", "bert-base")
    base_init = grid.mtl_model(grid.adapt_mtl_seed, grid.adapt_encoder)
    assert base_init.startswith("models/mtl/bert-base/") and base_init != grid.mtl_model(2018)
    assert all("/bert-base/" in c for c in grid.adapt_cells())
    assert ("bert-base", "snli") in grid.tokenizations()
    assert ("bert-base", "mnli") in grid.tokenizations()  # the init's multi-task data
    assert grid.encoder_of("bert-base") == "bert-base"
    params = load_profile("paper")
    params["adapt"]["encoder"] = None
    same = Grid(params)
    assert same.mtl_model(same.adapt_mtl_seed, same.adapt_encoder) == same.mtl_model(2018)
    assert not [e for e, _ in same.tokenizations() if e != "bert-large"]


# --- Domain-adaptation subsamples ---------------------------------------------------------------


def pool(counts: list[int], seed: int = 0) -> np.ndarray:
    """Shuffled class ids with the given number of rows per class."""
    labels = np.repeat(np.arange(len(counts)), counts)
    return np.random.default_rng(seed).permutation(labels)


SNLI = [183_416, 182_764, 183_187]  # 549,367 training rows (entailment, neutral, contradiction)
SCITAIL = [8_602, 14_994]  # 23,596 training rows (entails, neutral)


def test_subsample_is_the_same_in_another_process() -> None:
    code = (
        "import hashlib, numpy as np; from mtdnn.subsample import subsample;"
        "labels = np.random.default_rng(7).integers(0, 3, 20_000);"
        "print(hashlib.sha256(subsample(labels, 549, 'snli', 3).tobytes()).hexdigest())"
    )
    env = dict(os.environ, PYTHONHASHSEED="12345")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    labels = np.random.default_rng(7).integers(0, 3, 20_000)
    here = subsample(labels, 549, "snli", 3)
    assert proc.stdout.strip() == hashlib.sha256(here.tobytes()).hexdigest()
    assert np.array_equal(here, subsample(labels, 549, "snli", 3))
    assert not np.array_equal(here, subsample(labels, 549, "snli", 4))  # the seed matters
    assert not np.array_equal(here, subsample(labels, 549, "scitail", 3))  # so does the dataset


@pytest.mark.parametrize("seed", [1, 2])
def test_subsamples_are_nested(seed: int) -> None:
    labels = pool(SNLI)
    small, large = subsample(labels, 549, "snli", seed), subsample(labels, 5493, "snli", seed)
    assert len(small) == 549 and len(large) == 5493
    assert np.isin(small, large).all()
    fractions = [subsample(labels, f, "snli", seed) for f in (0.001, 0.01, 0.1)]
    assert [len(d) for d in fractions] == [549, 5493, 54936]
    for inner, outer in itertools.pairwise(fractions):
        assert np.isin(inner, outer).all()
    # A fraction and the count it floors to are the same draw.
    assert np.array_equal(fractions[0], small) and np.array_equal(fractions[1], large)


@pytest.mark.parametrize(
    ("name", "counts", "sizes"),
    [
        ("snli", SNLI, [3, 4, 10, 99, 549, 5493, 54936]),
        ("scitail", SCITAIL, [2, 3, 23, 235, 2359]),
        ("skewed", [900, 50, 50], [20, 21, 57, 100, 333, 999, 1000]),
    ],
)
def test_subsamples_are_stratified(name: str, counts: list[int], sizes: list[int]) -> None:
    labels = pool(counts)
    share = np.array(counts) / sum(counts)
    for size in sizes:
        for seed in (1, 2, 3):
            drawn = np.bincount(labels[subsample(labels, size, name, seed)], minlength=len(counts))
            assert drawn.sum() == size
            # Each class within one example of its share of the pool.
            assert np.abs(drawn - size * share).max() <= 1.0, (size, seed, drawn, size * share)


def test_tiny_subsamples_have_every_class() -> None:
    labels = pool([990, 5, 5])
    for size in range(3, 12):
        for seed in range(5):
            drawn = labels[subsample(labels, size, "tiny", seed)]
            assert set(np.unique(drawn)) == {0, 1, 2}, (size, seed)
    with pytest.raises(MtdnnError, match="at least one example for each of 3 classes"):
        subsample(labels, 2, "tiny", 0)


def test_fractions_round_down() -> None:
    assert resolve_size(0.001, sum(SCITAIL)) == 23  # 23.596
    assert len(subsample(pool(SCITAIL), 0.001, "scitail", 1)) == 23
    assert resolve_size(0.01, sum(SNLI)) == 5493  # 5493.67
    assert resolve_size(0.001, sum(SNLI)) == 549
    assert resolve_size(1, 100) == 100  # 1 is the whole pool
    assert resolve_size(1.0, 100) == 100
    assert resolve_size(100, 100) == 100


@pytest.mark.parametrize(
    ("size", "message"),
    [
        (0, "fraction in \\(0, 1\\] or a count"),
        (-5, "fraction in \\(0, 1\\] or a count"),
        (1.5, "a fraction must be in \\(0, 1\\]"),
        (101, "larger than the training pool \\(100 examples\\)"),
        (True, "fraction in \\(0, 1\\] or a count"),
    ],
)
def test_bad_sizes_fail(size, message: str) -> None:
    with pytest.raises(MtdnnError, match=message):
        subsample(pool([50, 50]), size, "snli", 1)
