"""Snakemake and DVC together (DESIGN §3), end to end on the smoke profile.

One smoke project is built per module, in a temporary copy of the repository made into its own git
repository, because a build takes minutes. The behaviours then run against it: build and no-op,
`dvc repro`, experiments, one task's knob, push/wipe/pull, and a rerun of training that must give
the same bytes. Wall times (the no-op calls among them) are printed at the end, not asserted.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from helpers import REPO, ci_report, subprocess_env
from smoke_workflow import clean_checkout

GLUE = REPO.parent / "shared" / "data" / "glue"
CORES = "2"

# Directory outputs, then the table files, that DVC versions (metrics.json is tracked by git).
DVC_DIRS = ("data", "models", "results/cells")
TABLES = ("glue.csv", "glue.md", "domain_adaptation.csv", "domain_adaptation.md")
TABLES += ("domain_adaptation.png", "glue_forest.png", "domain_adaptation_forest.png")


def tool_env(package: Path, glue: Path | None) -> dict[str, str]:
    """The copy's package runs, so DVC's `mtdnn` dependency is exactly the code that ran; git
    commits (experiments are commits) get an identity of their own."""
    extra: dict[str, object | None] = {"GLUE_DIR": glue, "DVC_NO_ANALYTICS": "1"}
    for role in ("AUTHOR", "COMMITTER"):
        extra |= {f"GIT_{role}_NAME": "mtdnn tests", f"GIT_{role}_EMAIL": "tests@mtdnn.invalid"}
    return subprocess_env(extra, package=package)


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def text(self) -> str:
        return self.stdout + self.stderr


@dataclass
class Project:
    root: Path
    env: dict[str, str]
    timings: dict[str, float] = field(default_factory=dict)

    def run(self, *cmd: str, check: bool = True, timeout: int = 1200) -> Result:
        start = time.perf_counter()
        proc = subprocess.run(
            cmd, cwd=self.root, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        result = Result(proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - start)
        if check and result.returncode != 0:
            pytest.fail(f"`{' '.join(cmd)}` exited {result.returncode}:\n{result.text[-6000:]}")
        return result

    def commit(self, message: str) -> None:
        self.run("git", "add", "-A")
        self.run("git", "commit", "-q", "--allow-empty", "-m", message)

    def path(self, rel: str) -> Path:
        return self.root / rel


# --- Reading Snakemake's output -----------------------------------------------------------------
JOB = re.compile(r"^(?:local)?rule (\w+):\n((?:[ \t]+\S.*\n)*)", re.MULTILINE)


def jobs(text: str) -> list[tuple[str, dict[str, str]]]:
    """Every job a Snakemake run (or dry run) printed: (rule, wildcards)."""
    out = []
    for match in JOB.finditer(text):
        wildcards = re.search(r"^\s+wildcards: (.*)$", match.group(2), re.MULTILINE)
        pairs = wildcards.group(1).split(", ") if wildcards else []
        out.append((match.group(1), dict(p.split("=", 1) for p in pairs)))
    return out


def job_counts(text: str) -> Counter:
    """Jobs per rule, without the aggregate targets (`all`, `data`) that run no command."""
    return Counter(rule for rule, _ in jobs(text) if rule not in {"all", "data"})


def nothing_owed(project: Project, *targets: str) -> Result:
    dry = project.run("snakemake", "-n", *targets)
    assert "Nothing to be done" in dry.text, dry.text[-4000:]
    assert jobs(dry.text) == []
    return dry


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- The smoke project, built once --------------------------------------------------------------


@pytest.fixture(scope="module")
def project(glue_dir, derived_dir, tmp_path_factory):
    if shutil.which("git") is None:
        pytest.skip("git not found: DVC projects and experiments need a git repository")
    root = clean_checkout(tmp_path_factory.mktemp("smoke") / "project")
    proj = Project(root, tool_env(root, glue_dir))
    proj.run(sys.executable, "-m", "mtdnn", "profile", "smoke")
    proj.run("git", "init", "-q")
    # Experiments are git commits: give this repository an identity of its own.
    proj.run("git", "config", "user.name", proj.env["GIT_AUTHOR_NAME"])
    proj.run("git", "config", "user.email", proj.env["GIT_AUTHOR_EMAIL"])
    proj.commit("smoke profile")
    yield proj
    report = ", ".join(f"{k} {v:.2f} s" for k, v in proj.timings.items())
    if report:
        ci_report("test_workflow timings", report)


@pytest.fixture(scope="module")
def built(project: Project) -> Result:
    """`snakemake results/glue.csv` on a clean copy."""
    build = project.run("snakemake", "--cores", CORES, "results/glue.csv")
    project.timings["snakemake build (results/glue.csv)"] = build.seconds
    return build


@pytest.fixture(scope="module")
def reproduced(built: Result, project: Project) -> tuple[Result, Result]:
    """`dvc repro` twice after the Snakemake build, then a commit (the experiments' baseline)."""
    first = project.run("dvc", "repro")
    second = project.run("dvc", "repro")
    project.timings["dvc repro (rest of the pipeline)"] = first.seconds
    project.timings["dvc repro no-op"] = second.seconds
    project.commit("pipeline built")
    return first, second


# --- 1. Snakemake builds, then does nothing -----------------------------------------------------


@pytest.mark.slow
def test_snakemake_builds_then_does_nothing(project: Project, built: Result) -> None:
    # smoke: 4 tasks (rte, mrpc, stsb, cola), 1 seed, fine-tuning on rte and stsb from MT-DNN and
    # under both baselines (standard fine-tuning and equal exposure)
    assert job_counts(built.text) == {
        "prepare": 4,
        "tokenize": 4,
        "train_mtl": 1,
        "finetune": 6,  # each also writes its cell; train_mtl writes the two "no fine-tuning" cells
        "glue_table": 1,
    }
    for name in ("glue.csv", "glue.md", "metrics.json"):
        assert project.path(f"results/{name}").stat().st_size > 0, name

    again = project.run("snakemake", "--cores", CORES, "results/glue.csv")
    assert "Nothing to be done" in again.text, again.text[-4000:]
    assert jobs(again.text) == []
    project.timings["snakemake no-op"] = again.seconds
    dry = nothing_owed(project, "results/glue.csv")
    project.timings["snakemake -n"] = dry.seconds


# --- 2. dvc repro ------------------------------------------------------------------------------


@pytest.mark.slow
def test_dvc_repro_completes_then_is_up_to_date(
    project: Project, reproduced: tuple[Result, Result]
) -> None:
    first, second = reproduced
    for stage in ("data", "glue", "adapt"):
        assert f"Running stage '{stage}'" in first.text, first.text[-4000:]
    # Outputs persist across `dvc repro`, so work Snakemake already did is not repeated: only the
    # SNLI data and the adaptation cells are new (and the tables DVC removes before a stage).
    ran = job_counts(first.text)
    assert ran["adapt"] == 8 and ran["prepare"] == ran["tokenize"] == 1
    assert not {"train_mtl", "finetune"} & set(ran), ran
    assert "Data and pipelines are up to date." in second.text, second.text
    assert "Running stage" not in second.text
    nothing_owed(project)
    assert "up to date" in project.run("dvc", "status").text
    tracked = project.run("git", "ls-files").stdout.split()
    assert {"dvc.lock", "results/metrics.json", "results/adapt_metrics.json"} <= set(tracked)


# --- 7. The domain-adaptation outputs ------------------------------------------------------------


@pytest.mark.slow
def test_domain_adaptation_outputs(project: Project, reproduced) -> None:
    with project.path("results/domain_adaptation.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert {(r["dataset"], int(r["n_train"]), r["init"]) for r in rows} == {
        ("snli", n, init) for n in (6, 24) for init in ("base", "mtdnn")
    }
    assert len(rows) == 4
    for row in rows:
        assert row["split"] == "dev" and row["seeds"] == "2"
        assert 0.0 <= float(row["mean"]) <= 100.0 and math.isfinite(float(row["std"]))

    png = project.path("results/domain_adaptation.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert width >= 300 and height >= 200, (width, height)
    assert len(png) > 10_000


# --- 4. One task's knob reruns that task's cells and the table, nothing else ---------------------


@pytest.mark.slow
def test_one_task_knob_reruns_only_its_cells(project: Project, reproduced) -> None:
    params_file = project.path("params.yaml")
    original = params_file.read_text()
    params = yaml.safe_load(original)
    params["finetune"].setdefault("per_task", {}).setdefault("rte", {})["lr"] = 2.0e-4
    try:
        params_file.write_text(yaml.safe_dump(params, sort_keys=False))
        dry = project.run("snakemake", "-n")
        planned = jobs(dry.text)
        assert job_counts(dry.text) == {"finetune": 3, "glue_table": 1}, dry.text
        assert {(w["init"], w["task"]) for r, w in planned if r == "finetune"} == {
            ("base", "rte"),
            ("equal", "rte"),
            ("mtdnn", "rte"),
        }
        # DVC agrees at the stage level: only the GLUE stage is stale.
        status = json.loads(project.run("dvc", "status", "--json").stdout)
        assert set(status) == {"glue"}, status
    finally:
        params_file.write_text(original)
    nothing_owed(project)


# --- 3. Experiments side by side ----------------------------------------------------------------


# --- 3b. Queued and temporary experiments train their own cells ---------------------------------
# Cells are keyed by their knobs (a hash in their paths), so a DVC workspace that has no Snakemake
# metadata (a temp or queued run) still rebuilds exactly the cells its knobs change.
QUEUED = {"q-hi": 1e-3, "q-lo": 1e-6}


def wait_for_queue(project: Project, timeout: float = 1200) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = project.run("dvc", "queue", "status").text
        if not re.search(r"\b(Queued|Running)\b", status):
            return status
        time.sleep(5)
    pytest.fail(f"dvc queue still busy after {timeout} s:\n{status}")


@pytest.fixture(scope="module")
def queued(project: Project, reproduced) -> dict[str, str]:
    """Two queued experiments and one temp experiment from the committed baseline: {name: log}."""
    for name, lr in QUEUED.items():
        project.run("dvc", "exp", "run", "--queue", "-n", name, "-S", f"finetune.lr={lr}")
    start = time.perf_counter()
    project.run("dvc", "queue", "start", "-j", "1")
    status = wait_for_queue(project)
    project.timings["dvc queue (2 experiments)"] = time.perf_counter() - start
    assert "Failed" not in status, status
    logs = {name: project.run("dvc", "queue", "logs", name).text for name in QUEUED}
    temp = project.run("dvc", "exp", "run", "--temp", "-n", "t-mid", "-S", "finetune.lr=2e-4")
    project.timings["dvc exp run --temp"] = temp.seconds
    return logs | {"t-mid": temp.text}


@pytest.mark.slow
def test_queued_and_temp_experiments_rerun_exactly_their_cells(project: Project, queued) -> None:
    for name, log in queued.items():
        # fine-tuning knobs: the six fine-tuned cells and the table; multi-task training is reused
        assert job_counts(log) == {"finetune": 6, "glue_table": 1}, (name, log[-4000:])
        retrained = {(w["init"], w["task"]) for r, w in jobs(log) if r == "finetune"}
        inits = ("base", "equal", "mtdnn")
        assert retrained == {(i, t) for i in inits for t in ("rte", "stsb")}, name
    show = project.run("dvc", "exp", "show", "--csv")
    rows = list(csv.DictReader(io.StringIO(show.stdout)))
    by_name = {row["Experiment"]: row for row in rows if row["Experiment"]}
    baseline = next(row for row in rows if row["typ"] == "baseline" and row["rev"] != "workspace")
    runs = [baseline] + [by_name[name] for name in queued]
    # Each run has its own numbers. Continuous metrics: the smoke profile scores RTE on 64 dev rows,
    # where a collapsed model ties the baseline's accuracy (35/64 at lr 1e-3 and 2e-4 alike).
    for column in ("stsb/pearson/mtdnn", "stsb/pearson/base"):
        values = [float(row[column]) for row in runs]
        assert len(set(values)) == len(runs), (column, values)
    for row in runs[1:]:
        for column in ("glue_score/mtl", "rte/accuracy/mtl", "stsb/pearson/mtl"):
            assert row[column] == baseline[column], column  # the same multi-task model
    assert [float(by_name[n]["finetune.lr"]) for n in QUEUED] == list(QUEUED.values())


@pytest.fixture(scope="module")
def experiments(project: Project, reproduced) -> dict[str, tuple[float, Result]]:
    """Two fine-tuning learning rates, each different from the committed one."""
    runs = {}
    for name, lr in {"lr-1e-4": 1e-4, "lr-2e-4": 2e-4}.items():
        runs[name] = (lr, project.run("dvc", "exp", "run", "-n", name, "-S", f"finetune.lr={lr}"))
        project.timings[f"dvc exp run {name}"] = runs[name][1].seconds
    return runs


@pytest.mark.slow
def test_dvc_experiments_show_glue_metrics(project: Project, experiments) -> None:
    for name, (_, run) in experiments.items():
        # A fine-tuning knob: the fine-tuned cells and the table rerun; MTL, data, adaptation don't.
        assert job_counts(run.text) == {"finetune": 6, "glue_table": 1}, run.text
        assert "Stage 'data' didn't change" in run.text, name
        assert "Stage 'adapt' didn't change" in run.text, name

    show = project.run("dvc", "exp", "show", "--csv")
    rows = list(csv.DictReader(io.StringIO(show.stdout)))
    by_name = {row["Experiment"]: row for row in rows if row["Experiment"]}
    assert set(experiments) <= set(by_name), show.stdout
    baseline = next(row for row in rows if row["typ"] == "baseline" and row["rev"] != "workspace")
    metrics = ["glue_score/base", "glue_score/equal", "glue_score/mtl", "glue_score/mtdnn"]
    inits = ("base", "equal", "mtdnn")
    metrics += [f"{t}/{m}" for t in ("rte/accuracy", "stsb/pearson") for m in inits]
    for name, (lr, _) in experiments.items():
        row = by_name[name]
        assert float(row["finetune.lr"]) == pytest.approx(lr)
        for column in metrics:
            assert math.isfinite(float(row[column])), (name, column, row[column])
        # The MT-DNN model without fine-tuning was not retrained.
        assert row["glue_score/mtl"] == baseline["glue_score/mtl"]
    assert_training_summaries_listed(baseline, [by_name[name] for name in experiments])
    assert_curves_of_both_experiments(project, list(experiments))


SUMMARIES = "results/plots/training/summary"  # each model's DVCLive metrics.json (dvc.yaml)


def assert_training_summaries_listed(baseline: dict, runs: list[dict]) -> None:
    """`dvc exp show` lists every model's DVCLive summary: the fine-tuned models' last losses
    differ between the two learning rates, the multi-task model's is the baseline's."""
    models = {f"{i}-{t}-seed1" for i in ("mtdnn", "base", "equal") for t in ("rte", "stsb")}
    for model in models | {"mtl-seed1"}:
        for key in ("train.loss", "step"):
            column = f"{SUMMARIES}/{model}.json:{key}"
            assert all(math.isfinite(float(row[column])) for row in [baseline, *runs]), column
    column = f"{SUMMARIES}/mtdnn-rte-seed1.json:dev.rte.dev.accuracy"  # the last epoch's
    assert all(0 <= float(row[column]) <= 100 for row in [baseline, *runs]), column
    for model in models:
        losses = {float(row[f"{SUMMARIES}/{model}.json:train.loss"]) for row in runs}
        assert len(losses) == len(runs), (model, losses)
    mtl = f"{SUMMARIES}/mtl-seed1.json:train.loss"
    assert {row[mtl] for row in runs} == {baseline[mtl]}


def assert_curves_of_both_experiments(project: Project, names: list[str]) -> None:
    """`dvc plots diff` between the two experiments draws every model's curves from DVCLive's
    files, a line per experiment (the files it read are the keys of its JSON)."""
    shown = json.loads(project.run("dvc", "plots", "diff", *names, "--json").stdout)
    assert not shown.get("errors"), shown["errors"]
    curves = "results/plots/training/dvclive"
    for model in ("mtl-seed1", "mtdnn-rte-seed1", "base-stsb-seed1", "equal-rte-seed1"):
        (plot,) = shown["data"][f"{curves}/{model}/train/loss.tsv"]
        values = plot["content"]["data"]["values"]
        assert {v["rev"] for v in values} == set(names), model
        per_rev = [[v["loss"] for v in values if v["rev"] == n] for n in names]
        assert len(per_rev[0]) == len(per_rev[1]) > 0, model
        assert (per_rev[0] == per_rev[1]) == (model == "mtl-seed1"), model
    assert f"{curves}/mtdnn-rte-seed1/dev/rte/dev/accuracy.tsv" in shown["data"]


# --- 5. Push, wipe, pull: nothing owed ----------------------------------------------------------


def wipe_outputs(root: Path, cache_backup: Path) -> None:
    """Removes every DVC output and moves the cache aside (the clone test after this one pushes
    every commit's outputs, which only this cache still holds)."""
    for rel in DVC_DIRS:
        shutil.rmtree(root / rel, ignore_errors=True)
    for name in TABLES:
        (root / "results" / name).unlink(missing_ok=True)
    shutil.move(root / ".dvc" / "cache", cache_backup)


@pytest.mark.slow
def test_push_wipe_pull_owes_nothing(project: Project, reproduced, tmp_path: Path) -> None:
    project.run("dvc", "remote", "add", "-d", "-f", "local", str(tmp_path / "remote"))
    project.run("dvc", "push")
    hashes = {p: sha256(p) for p in sorted(project.path("models").rglob("*.safetensors"))}
    cache = project.path(".dvc/cache")
    wipe_outputs(project.root, tmp_path / "cache")
    try:
        assert not project.path("models").exists() and not project.path("data").exists()
        assert not cache.exists()

        project.run("dvc", "pull")
        for name in TABLES:
            assert project.path(f"results/{name}").is_file(), name
        assert {p: sha256(p) for p in hashes} == hashes
        assert "up to date" in project.run("dvc", "status").text
        nothing_owed(project)
    finally:
        # The workspace's outputs were pulled; the committed baseline's live only in the old cache.
        shutil.rmtree(cache, ignore_errors=True)
        shutil.move(tmp_path / "cache", cache)


@pytest.mark.slow
def test_fresh_clone_after_pull_reruns_exactly_a_changed_task(
    project: Project, reproduced, tmp_path: Path
) -> None:
    """A clone has no Snakemake metadata: only the knob keys in the paths can tell it what is
    stale. Changing one task's fine-tuning lr there owes that task's two cells and the tables."""
    remote = tmp_path / "remote"
    # --local: `--all-commits` reads each commit's own .dvc/config, and a remote added to the
    # workspace's config exists in none of them, so DVC would skip every commit ("failed to
    # collect") and push only the workspace, which earlier experiments have moved on.
    project.run("dvc", "remote", "add", "--local", "-d", "-f", "clone-remote", str(remote))
    project.run("dvc", "push", "--all-commits")
    clone = tmp_path / "clone"
    project.run("git", "clone", "-q", str(project.root), str(clone))
    proj = Project(clone, tool_env(clone, GLUE))
    proj.run("dvc", "remote", "add", "-d", "-f", "clone-remote", str(remote))
    proj.run("dvc", "pull")
    params = yaml.safe_load(proj.path("params.yaml").read_text())
    params["finetune"].setdefault("per_task", {}).setdefault("stsb", {})["lr"] = 3.0e-4
    proj.path("params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    dry = proj.run("snakemake", "-n", "results/glue.csv", "results/domain_adaptation.csv")
    planned = jobs(dry.text)
    assert {(r, w.get("init"), w.get("task")) for r, w in planned if r == "finetune"} == {
        ("finetune", "base", "stsb"),
        ("finetune", "equal", "stsb"),
        ("finetune", "mtdnn", "stsb"),
    }, dry.text[-4000:]
    counts = job_counts(dry.text)
    # That task's three cells and the tables; nothing upstream. (The adaptation table may be owed
    # too: DVC restores its cell files after the table, so their mtimes are newer.)
    assert counts["finetune"] == 3 and counts["glue_table"] == 1, dry.text[-4000:]
    assert set(counts) <= {"finetune", "glue_table", "adapt_table"}, counts


# --- 8. Training again gives the same bytes ------------------------------------------------------


@pytest.mark.slow
def test_retraining_gives_identical_bytes(project: Project, reproduced) -> None:
    metrics = project.path("results/metrics.json").read_bytes()
    # The models the rerun will rewrite, read from its plan: their paths hold knob keys.
    plan = jobs(project.run("snakemake", "-n", "results/glue.csv", "--forcerun", "train_mtl").text)
    models = [
        project.path(f"models/mtl/{w['enc']}/{w['key']}/seed{w['seed']}")
        if rule == "train_mtl"
        else project.path(
            f"models/finetune/{w['init']}/{w['enc']}/{w['task']}/{w['key']}/seed{w['seed']}"
        )
        for rule, w in plan
        if rule in ("train_mtl", "finetune")
    ]
    weights = {m: sha256(m / "model.safetensors") for m in models}
    assert len(weights) == 3
    # Multi-task training again, and everything in the GLUE table that depends on it.
    run = project.run("snakemake", "--cores", CORES, "results/glue.csv", "--forcerun", "train_mtl")
    assert job_counts(run.text) == {"train_mtl": 1, "finetune": 2, "glue_table": 1}
    project.timings["rerun of train_mtl and its dependants"] = run.seconds
    assert {m: sha256(m / "model.safetensors") for m in models} == weights
    assert project.path("results/metrics.json").read_bytes() == metrics


# --- 6. Lint and format -------------------------------------------------------------------------


def test_workflow_lint_and_format(tmp_path: Path) -> None:
    shutil.copytree(REPO / "workflow", tmp_path / "workflow")
    shutil.copyfile(REPO / "params.yaml", tmp_path / "params.yaml")
    proj = Project(tmp_path, tool_env(REPO, GLUE if GLUE.is_dir() else None))
    lint = proj.run("snakemake", "--lint", check=False)
    assert lint.returncode == 0, lint.text
    if shutil.which("snakefmt", path=proj.env["PATH"]) is None:
        pytest.skip("snakefmt not installed (it comes with the `dev` dependency group)")
    fmt = proj.run("snakefmt", "--check", "workflow", check=False)
    assert fmt.returncode == 0, fmt.text
