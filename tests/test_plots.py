"""Training curves for `dvc plots`: logged through DVCLive with every model, collected under
stable names, and rendered by DVC across two revisions with the project's own `plots:`
declarations."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from helpers import REPO
from tiny_runs import tiny_encoder

from mtdnn import paths

CFG = {"max_train_examples": 48, "max_eval_examples": 32, "batch_size": 8, "epochs": 2,
       "eval_each_epoch": True, "precision": "fp32"}  # fmt: skip


@pytest.fixture(scope="module")
def rte(tmp_path_factory, glue_dir):
    """Real RTE prepared and tokenized for the tiny encoder; returns (root, encoder)."""
    from mtdnn.cli import main

    root = tmp_path_factory.mktemp("plots")
    encoder = tiny_encoder(root / "tiny-bert")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        assert main(["prepare", "--task", "rte", "--glue-dir", str(glue_dir)]) == 0
        assert (
            main(["tokenize", "--task", "rte", "--encoder", str(encoder), "--max-len", "64"]) == 0
        )
    return root, encoder


def finetune(cli, root: Path, encoder: Path, out: str, **knobs) -> Path:
    cfg = json.dumps(CFG | knobs)
    r = cli(["finetune", "--task", "rte", "--encoder", encoder, "--max-len", "64", "--seed", "1",
             "--cfg", cfg, "--out", out, "--threads", "1"], root)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    return root / out


CURVES = Path("dvclive/plots/metrics")


def test_every_model_has_its_loss_and_dev_curves(rte, cli):
    root, encoder = rte
    model = finetune(cli, root, encoder, "m-curves")
    summary = json.loads((model / "train_summary.json").read_text())
    loss = pd.read_csv(model / CURVES / "train/loss.tsv", sep="\t")
    assert list(loss.columns) == ["step", "loss"]
    assert loss["step"].tolist() == list(range(1, len(summary["losses"]) + 1))
    assert loss["loss"].tolist() == summary["losses"]
    assert len(loss) == 2 * 6  # 48 rows in batches of 8, two epochs
    dev = pd.read_csv(model / CURVES / "dev/rte/dev/accuracy.tsv", sep="\t")
    history = summary["history"]
    assert len(dev) == len(history) == 2
    assert dev["step"].tolist() == [e["batches"] for e in history] == [6, 12]
    assert dev["accuracy"].tolist() == [e["dev"]["rte/dev"]["accuracy"] for e in history]


def test_training_curves_collects_them_under_stable_names(rte, cli, caplog):
    root, encoder = rte
    model = finetune(cli, root, encoder, "m-collect")
    r = cli(["training-curves", f"mtdnn-rte-seed1={model}", "--out", "curves",
             "--summaries", "summary"], root)  # fmt: skip
    assert r.returncode == 0, r.stderr
    # DVCLive's plot files, byte for byte, under the stable name; its metrics.json goes apart
    copied = {p.relative_to(root / "curves") for p in (root / "curves").rglob("*") if p.is_file()}
    assert copied == {Path("mtdnn-rte-seed1/train/loss.tsv"),
                      Path("mtdnn-rte-seed1/dev/rte/dev/accuracy.tsv")}  # fmt: skip
    for name in copied:
        source = model / CURVES / name.relative_to("mtdnn-rte-seed1")
        assert (root / "curves" / name).read_bytes() == source.read_bytes()
    assert [p.name for p in (root / "summary").iterdir()] == ["mtdnn-rte-seed1.json"]
    summary = (root / "summary/mtdnn-rte-seed1.json").read_bytes()
    assert summary == (model / "dvclive/metrics.json").read_bytes()
    last = json.loads(summary)  # the last batch's loss and the last epoch's accuracy, at step 12
    assert last["step"] == 12 and "loss" in last["train"], last
    assert last["dev"]["rte"]["dev"]["accuracy"] == read_last(
        model / CURVES / "dev/rte/dev/accuracy.tsv"
    )
    for bad in (f"{model}", f"a/b={model}"):
        r = cli(["training-curves", bad, "--out", "curves2"], root)
        assert r.returncode == 2 and "NAME=DIR" in r.stderr
    r = cli(["training-curves", f"x={root / 'no-model'}", "--out", "curves2"], root)
    assert r.returncode == 2 and "not a model directory" in r.stderr
    assert not (root / "curves2").exists()
    # A model without DVCLive curves (trained before them) is left out with a warning, not fatal.
    with caplog.at_level("WARNING", logger="mtdnn.plots"):
        r = cli(
            ["training-curves", f"old={root / 'tiny-bert'}", f"new={model}", "--out", "c3"], root
        )
    assert r.returncode == 0, r.stderr
    assert [m for m in caplog.messages if "dvclive" in m and m.endswith("no curves for old")]
    assert sorted(p.name for p in (root / "c3").iterdir()) == ["new"]
    # A directory of the models/ layout is named by its place there (how the table's job calls it)
    placed = root / paths.finetune_dir("mtdnn", "minilm", "rte", "0123456789", 1)
    shutil.copytree(model, placed)
    r = cli(["training-curves", placed, "--out", "c4"], root)
    assert r.returncode == 0, r.stderr
    assert [p.name for p in (root / "c4").iterdir()] == ["mtdnn-rte-seed1"]
    r = cli(["training-curves", placed, f"mtdnn-rte-seed1={model}", "--out", "c5"], root)
    assert r.returncode == 2 and "two models named 'mtdnn-rte-seed1'" in r.stderr
    assert not (root / "c5").exists()


def test_curves_and_summaries_are_swapped_in_together_or_not_at_all(rte, cli, tmp_path):
    root, encoder = rte
    model = finetune(cli, root, encoder, "m-together")
    r = cli(["training-curves", f"m={model}", "--out", tmp_path / "curves"], root)
    assert r.returncode == 0, r.stderr
    before = sorted(p.relative_to(tmp_path) for p in (tmp_path / "curves").rglob("*"))
    (tmp_path / "blocker").write_text("a file, not a directory")
    r = cli(["training-curves", f"n={model}", "--out", tmp_path / "curves",
             "--summaries", tmp_path / "blocker/summary"], root)  # fmt: skip
    assert r.returncode != 0
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "curves").rglob("*")) == before
    # Without --summaries, a model's curves do not need its DVCLive summary.
    bare = tmp_path / "bare"
    shutil.copytree(model, bare)
    (bare / "dvclive/metrics.json").unlink()
    r = cli(["training-curves", f"bare={bare}", "--out", tmp_path / "c2"], root)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "c2/bare/train/loss.tsv").is_file()


def test_a_model_is_named_by_its_place_in_the_layout():
    assert paths.model_name(paths.mtl_dir("minilm", "0123456789", 2)) == "mtl-seed2"
    for init in ("mtdnn", "base", "equal"):
        placed = paths.finetune_dir(init, "minilm", "stsb", "0123456789", 3)
        assert paths.model_name(placed) == f"{init}-stsb-seed3"
        assert paths.model_name(Path("/abs/project") / placed) == f"{init}-stsb-seed3"
        assert paths.model_name(placed + "/") == f"{init}-stsb-seed3"
    for outside in ("m-collect", "models/finetune/base/minilm/rte/seed1", "models/mtl/x/seed1"):
        assert paths.model_name(outside) is None, outside


def read_last(tsv: Path) -> float:
    """The last value of a DVCLive series file."""
    frame = pd.read_csv(tsv, sep="\t")
    return float(frame.iloc[-1, -1])


def dvc(repo: Path, *args: str) -> subprocess.CompletedProcess:
    bin_dir = Path(sys.executable).parent
    env = os.environ | {
        "DVC_NO_ANALYTICS": "1",
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
    }
    env |= {f"GIT_{r}_{k}": v for r in ("AUTHOR", "COMMITTER")
            for k, v in (("NAME", "mtdnn tests"), ("EMAIL", "tests@mtdnn.invalid"))}  # fmt: skip
    proc = subprocess.run(args, cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_dvc_plots_diff_renders_two_experiments(rte, cli, tmp_path):
    """The project's `plots:` declarations, two revisions whose models differ only in lr: DVC
    renders every training curve with both revisions and no error, laid out as the GLUE table's
    job leaves them (Snakemake's timestamp marker in its output directory included)."""
    root, encoder = rte
    repo = tmp_path / "repo"
    repo.mkdir()
    declared = yaml.safe_load((REPO / "dvc.yaml").read_text())["plots"]
    training = [p for p in declared if next(iter(p)).startswith("results/plots/training")]
    assert len(training) == 1
    (curves,) = (next(iter(p)) for p in training)
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"plots": training}))
    dvc(repo, "git", "init", "-q")
    dvc(repo, "dvc", "init", "-q")
    for rev, lr in (("slow", 1e-5), ("fast", 1e-3)):
        model = finetune(cli, root, encoder, f"m-{rev}", lr=lr)
        out = repo / "results/plots/training"  # the glue stage's output, as glue_table writes it
        shutil.rmtree(out, ignore_errors=True)
        r = cli(["training-curves", f"mtdnn-rte-seed1={model}", "--out", out / "dvclive"], root)
        assert r.returncode == 0, r.stderr
        (out / ".snakemake_timestamp").touch()
        dvc(repo, "git", "add", "-A")
        dvc(repo, "git", "commit", "-qm", rev)
        dvc(repo, "git", "tag", rev)
    shown = json.loads(dvc(repo, "dvc", "plots", "diff", "slow", "fast", "--json").stdout)
    assert not shown.get("errors"), shown["errors"]
    assert set(shown["data"]) == {f"{curves}/mtdnn-rte-seed1/{name}" for name in
                                  ("train/loss.tsv", "dev/rte/dev/accuracy.tsv")}  # fmt: skip
    for name, plot in shown["data"].items():
        (plot,) = plot
        values = plot["content"]["data"]["values"]
        assert {v["rev"] for v in values} == {"slow", "fast"}, name
        # x is the batch, y the file's own metric (DVC takes the last column)
        assert plot["content"]["encoding"]["x"]["field"] == "step", name
        assert y_fields(plot["content"]) == {name.rsplit("/", 1)[1].removesuffix(".tsv")}, name
    losses = {rev: [float(v["loss"]) for v in values_of(shown, rev)] for rev in ("slow", "fast")}
    assert len(losses["slow"]) == len(losses["fast"]) == 12
    assert losses["slow"] != losses["fast"]
    dvc(repo, "dvc", "plots", "diff", "slow", "fast", "-o", "out")
    html = (repo / "out/index.html").read_text()
    assert "mtdnn-rte-seed1/train/loss.tsv" in html and "mtdnn-rte-seed1/dev/rte/dev" in html


def values_of(shown: dict, rev: str) -> list[dict]:
    (plot,) = shown["data"]["results/plots/training/dvclive/mtdnn-rte-seed1/train/loss.tsv"]
    return [v for v in plot["content"]["data"]["values"] if v["rev"] == rev]


def y_fields(spec: object) -> set[str]:
    """Every field a Vega-Lite spec's layers put on the y axis."""
    if isinstance(spec, list):
        return set().union(*map(y_fields, spec)) if spec else set()
    if not isinstance(spec, dict):
        return set()
    own = spec.get("encoding", {}).get("y", {}).get("field")
    return ({own} if own else set()) | y_fields([v for k, v in spec.items() if k != "data"])
