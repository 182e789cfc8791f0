"""The forest plots of the tables' bootstrap differences (mtdnn/report/forest.py): each point and
bar is a row the table prints, one axis per baseline with its zero line, the PNG is the same bytes
for the same rows, a notice replaces the plot when there are no intervals, and a changed cell
redraws it (in `mtdnn report`, and in the plan Snakemake makes)."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import REPO
from smoke_workflow import SNAKEMAKE, smoke_workflow

from mtdnn.report import forest
from mtdnn.report.forest import ALPHA, forest_figure, forest_rows, row_positions, write_forest

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def result(rows: dict[str, tuple[float, float, float, float]]) -> pd.DataFrame:
    """A paired_bootstrap result: ``{row: (delta, ci_low, ci_high, p_holm)}``."""
    values = [(row, d, lo, hi, p, p) for row, (d, lo, hi, p) in rows.items()]
    return pd.DataFrame(values, columns=["row", "delta", "ci_low", "ci_high", "p", "p_holm"])


SINGLE = result(
    {
        "cola": (0.8, -1.5, 3.0, 0.61),
        "rte": (6.2, 2.9, 9.6, 0.002),
        "GLUE score": (2.1, 0.4, 3.9, 0.03),
        "mrpc": (-1.0, -2.5, 0.4, 0.4),
    }
)
OTHER = result({"rte": (1.0, -0.5, 2.5, 0.2), "GLUE score": (1.0, -0.5, 2.5, 0.2)})


def panels() -> list:
    return [
        ("MT-DNN − single-task", forest_rows(SINGLE, ["CoLA", "RTE", "GLUE score", "MRPC"])),
        ("MT-DNN − other", forest_rows(OTHER, ["RTE", "GLUE score"])),
    ]


def points(ax) -> dict[str, tuple[float, float, bool]]:
    """{row label: (x, y, filled)} of the markers drawn."""
    found = {}
    for line in ax.lines:
        if line.get_gid():
            filled = line.get_markerfacecolor() not in ("white", (1.0, 1.0, 1.0, 1.0))
            found[line.get_gid()] = (line.get_xdata()[0], line.get_ydata()[0], filled)
    return found


def bars(ax) -> dict[float, tuple[float, float]]:
    """{y: (low, high)} of the interval bars."""
    (collection,) = ax.collections
    return {seg[0][1]: (seg[0][0], seg[1][0]) for seg in collection.get_segments()}


def zero_lines(ax) -> list:
    return [
        line
        for line in ax.lines
        if list(line.get_xdata()) == [0, 0] and list(line.get_ydata()) == [0, 1]
    ]


def test_each_point_and_bar_is_a_rows_difference_and_interval():
    fig = forest_figure(panels(), "MT-DNN − baseline")
    assert len(fig.axes) == 2  # one axis per baseline: no legend or twin axes added
    expected = [("single-task", SINGLE), ("other", OTHER)]
    for ax, (title, frame) in zip(fig.axes, expected, strict=True):
        assert ax.get_title() == f"MT-DNN − {title}"
        assert len(zero_lines(ax)) == 1
        drawn, intervals = points(ax), bars(ax)
        labels = [t.get_text() for t in ax.get_yticklabels()]
        assert sorted(drawn) == sorted(labels) and len(labels) == len(frame)
        for label, row in zip(labels, forest_rows(frame, labels).itertuples(), strict=True):
            x, y, filled = drawn[label]
            assert x == row.delta and intervals[y] == (row.ci_low, row.ci_high)
            assert filled == (row.p_holm < ALPHA)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    # the GLUE score comes last (lowest on the inverted axis), bold, after a wider gap
    assert labels == ["CoLA", "RTE", "MRPC", "GLUE score"]
    ys = [points(ax)[label][1] for label in labels]
    assert ax.yaxis_inverted() and ys == sorted(ys) and ys[3] - ys[2] > ys[1] - ys[0]
    assert ax.get_yticklabels()[3].get_fontweight() == "bold"
    assert ax.get_yticklabels()[0].get_fontweight() == "normal"
    assert {t.get_text() for t in ax.texts} >= {"Holm p 0.002", "Holm p 0.610"}


def test_the_zero_line_is_in_view_when_no_interval_reaches_it():
    rows = forest_rows(result({"rte": (6.0, 3.0, 9.0, 0.01)}), ["RTE"])
    (ax,) = forest_figure([("MT-DNN − single-task", rows)], "difference").axes
    low, high = ax.get_xlim()
    assert low < 0 < 3 < 9 < high and len(zero_lines(ax)) == 1


def test_groups_are_set_apart():
    frame = result({f"r{i}": (1.0, 0.0, 2.0, 0.5) for i in range(4)})
    rows = forest_rows(frame, ["a", "b", "c", "d"], ["X", "X", "Y", "Y"])
    ys = row_positions(rows)
    assert ys[1] - ys[0] == ys[3] - ys[2] == 1 and ys[2] - ys[1] > 1


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_the_png_is_the_same_bytes_for_the_same_rows(tmp_path):
    one, two, moved = tmp_path / "1.png", tmp_path / "2.png", tmp_path / "3.png"
    write_forest(one, panels(), "difference")
    write_forest(two, panels(), "difference")
    width, height = png_size(one.read_bytes())
    assert 800 <= width <= 3000 and 250 <= height <= 1500, (width, height)
    assert len(one.read_bytes()) > 10_000
    assert one.read_bytes() == two.read_bytes()
    assert b"Matplotlib" not in one.read_bytes()  # no version key: an upgrade alone changes nothing
    shifted = SINGLE.assign(delta=SINGLE["delta"] + 0.5)
    write_forest(moved, [("MT-DNN − single-task", forest_rows(shifted, list("abcd")))], "d")
    assert moved.read_bytes() != one.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1.png", "2.png", "3.png"]  # no temp


# The report verb on tiny cells with their predictions -----------------------------------------
TASKS = ("rte", "sst2", "qnli")


def write_cell(root: Path, coords: dict, splits: dict) -> Path:
    """A cell JSON with the accuracy of ``splits`` ({split: (labels, predictions)}), and its
    predictions file beside it, as evaluate_cell writes them."""
    from mtdnn.cellpreds import predictions_path, write_predictions
    from mtdnn.fileio import write_json

    cell = root / "-".join(str(v) for v in coords.values()) / "seed.json"
    metrics = {s: {"accuracy": 100 * float(np.mean(y == p))} for s, (y, p) in splits.items()}
    uids = {s: ([f"{s}-{i}" for i in range(len(y))], y, p) for s, (y, p) in splits.items()}
    write_predictions(predictions_path(cell), uids)
    write_json(cell, {"cell": coords, "metrics": metrics})
    return cell


def guess(y: np.ndarray, right: float, rng) -> np.ndarray:
    return np.where(rng.random(len(y)) < right, y, 1 - y)


@pytest.fixture
def glue_cells(tmp_path) -> list[Path]:
    """base and MT-DNN, two seeds, three binary tasks; MT-DNN clearly better on RTE alone."""
    rng = np.random.default_rng(0)
    gold = {t: rng.integers(0, 2, 200) for t in TASKS}
    cells = []
    for model in ("base", "mtdnn"):
        for seed in (1, 2):
            for task in TASKS:
                right = 0.9 if (model, task) == ("mtdnn", "rte") else 0.7
                coords = {"table": "glue", "model": model, "seed": seed, "task": task}
                split = {"dev": (gold[task], guess(gold[task], right, rng))}
                cells.append(write_cell(tmp_path / "cells", coords, split))
    return cells


@pytest.fixture
def drawn(monkeypatch) -> list:
    """Every figure the report saves, kept for its artists (and still written)."""
    figures, save = [], forest.save_png
    monkeypatch.setattr(forest, "save_png", lambda fig, out: (figures.append(fig), save(fig, out)))
    return figures


def report(cli, tmp_path, table: str, cells) -> tuple[dict, Path]:
    out = tmp_path / f"{table}_forest.png"
    argv = ["report", table, *cells, "--csv", tmp_path / "t.csv", "--markdown", tmp_path / "t.md"]
    argv += ["--metrics", tmp_path / "m.json", "--forest", out, "--replicates", "300"]
    r = cli(argv, tmp_path)
    assert r.returncode == 0, r.stderr
    return json.loads((tmp_path / "m.json").read_text()), out


def test_the_glue_plot_draws_the_rows_its_table_prints(cli, tmp_path, glue_cells, drawn):
    flat, out = report(cli, tmp_path, "glue", glue_cells)
    png_size(out.read_bytes())
    (fig,) = drawn
    (ax,) = fig.axes
    assert ax.get_title() == "MT-DNN − standard fine-tuning" and len(zero_lines(ax)) == 1
    table = (tmp_path / "t.md").read_text().split("paired bootstrap over dev examples")[1]
    shown = {line.split(" | ")[0].strip("| "): line for line in table.splitlines()[3:] if line}
    intervals = bars(ax)
    for label, (x, y, filled) in points(ax).items():
        key = "glue_score" if label == "GLUE score" else label.lower().replace("-", "")
        stats = {k: flat[f"bootstrap/base/{key}/{k}"] for k in ("delta", "ci_low", "ci_high")}
        assert x == pytest.approx(stats["delta"], abs=1e-4)
        assert intervals[y] == pytest.approx((stats["ci_low"], stats["ci_high"]), abs=1e-4)
        assert filled == (flat[f"bootstrap/base/{key}/p_holm"] < ALPHA)
        assert f"| {x:+.1f} | [{intervals[y][0]:+.1f}, {intervals[y][1]:+.1f}] |" in shown[label]
    assert points(ax)["RTE"][2] and not points(ax)["SST-2"][2]  # the one real gap holds


def test_a_changed_cell_moves_its_point(cli, tmp_path, glue_cells, drawn):
    before, out = report(cli, tmp_path, "glue", glue_cells)
    old_png = out.read_bytes()
    from mtdnn.cellpreds import predictions_path, read_predictions

    cell = next(c for c in glue_cells if "glue-mtdnn-1-sst2" in str(c))
    rows = read_predictions(predictions_path(cell))
    coords = {"table": "glue", "model": "mtdnn", "seed": 1, "task": "sst2"}
    assert write_cell(cell.parent.parent, coords, {"dev": (rows["label"].to_numpy(),) * 2}) == cell
    after, _ = report(cli, tmp_path, "glue", glue_cells)
    moved = points(drawn[1].axes[0])["SST-2"][0]
    assert moved == pytest.approx(after["bootstrap/base/sst2/delta"], abs=1e-4)
    assert moved > points(drawn[0].axes[0])["SST-2"][0] + 5  # seed 1 now perfect: a real move
    assert out.read_bytes() != old_png


def test_without_predictions_the_plot_says_why(cli, tmp_path, glue_cells, drawn):
    from mtdnn.cellpreds import predictions_path

    Path(predictions_path(glue_cells[0])).unlink()
    _, out = report(cli, tmp_path, "glue", glue_cells)
    png_size(out.read_bytes())
    (text,) = [t.get_text() for t in drawn[0].axes[0].texts]
    assert text.startswith("No forest plot: the paired-bootstrap intervals are unavailable.")
    assert "1 cell(s) have no dev predictions" in text and "seed.preds.parquet" in text
    base_only = [c for c in glue_cells[1:] if "-base-" in str(c)]
    report(cli, tmp_path, "glue", base_only)
    (text,) = [t.get_text() for t in drawn[1].axes[0].texts]
    assert "These cells hold no MT-DNN and baseline pair" in text


def test_the_adaptation_plot_has_a_row_per_split_and_size(cli, tmp_path, drawn):
    rng = np.random.default_rng(1)
    gold = {s: rng.integers(0, 2, 200) for s in ("dev", "test")}
    cells = []
    for init in ("base", "mtdnn"):
        for n in (549, 5493):
            for seed in (1, 2):
                right = 0.9 if (init, n) == ("mtdnn", 549) else 0.7
                split = {s: (y, guess(y, right, rng)) for s, y in gold.items()}
                info = {"table": "adapt", "task": "snli", "init": init, "size": f"n{n}", "n": n}
                cells.append(write_cell(tmp_path / "cells", info | {"seed": seed}, split))
    flat, out = report(cli, tmp_path, "adapt", cells)
    png_size(out.read_bytes())
    (ax,) = drawn[0].axes
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [f"SNLI {s}, {n} examples" for s in ("dev", "test") for n in ("549", "5,493")]
    x, _, filled = points(ax)["SNLI test, 549 examples"]
    assert x == pytest.approx(flat["adapt_bootstrap/snli-test/n549/delta"], abs=1e-4) and filled
    ys = [points(ax)[label][1] for label in labels]
    assert ys[2] - ys[1] > ys[1] - ys[0]  # dev and test set apart


# Snakemake: a changed cell owes the table job, and the plot is among what it makes ----------
def plan(cwd: Path, glue_dir: Path, *args: str) -> str:
    """`snakemake -n -p ARGS` in ``cwd``: the jobs it would run, with their shell commands."""
    env = os.environ | {"GLUE_DIR": str(glue_dir), "HF_HUB_OFFLINE": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.pop("SNAKEMAKE_PROFILE", None)
    run = subprocess.run([*SNAKEMAKE, "-n", "-p", *args], cwd=cwd, env=env, text=True,
                         capture_output=True, timeout=120)  # fmt: skip
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    return run.stdout + run.stderr


def job_fields(text: str, rule: str) -> dict[str, str]:
    """The indented ``key: value`` lines of ``rule``'s job block, and its shell command."""
    block = text.split(f"\nrule {rule}:\n", 1)[1].splitlines()
    indented = itertools.takewhile(lambda line: line.startswith("    "), block)
    fields = dict(re.match(r"^ {4}(\w+): (.*)$", line).groups() for line in indented)
    return fields | {"shell": next(x for x in block if x.startswith("Shell command:"))}


FORESTS = {"glue_table": "results/glue_forest.png",
           "adapt_table": "results/domain_adaptation_forest.png"}  # fmt: skip


def test_a_changed_cell_owes_the_table_job_that_draws_the_plot(tmp_path, glue_dir):
    root = smoke_workflow(tmp_path)
    # Asking for the plots themselves: a plot that no rule makes fails this plan.
    jobs = {rule: job_fields(plan(root, glue_dir, *FORESTS.values()), rule) for rule in FORESTS}
    for rule, fields in jobs.items():
        assert FORESTS[rule] in fields["output"].split(", ")
        assert f"--forest {FORESTS[rule]}" in fields["shell"]  # made by the job, not just declared
        # The job's inputs (cells, predictions, model directories) and then its outputs, older.
        for paths, stamp in ((fields["input"], 1e9), (fields["output"], 1.5e9)):
            for path in map(root.joinpath, paths.split(", ")):
                path.parent.mkdir(parents=True, exist_ok=True)
                # model directories and results/plots/training are directories
                path.mkdir() if not path.suffix else path.write_text("")
                os.utime(path, (stamp, stamp))
    owed = ["--allowed-rules", *FORESTS]  # the cells are given: their rules are not asked
    assert "Nothing to be done" in plan(root, glue_dir, *FORESTS.values(), *owed)
    cell = next(p for p in jobs["glue_table"]["input"].split(", ") if "/mtdnn/" in p)
    os.utime(root / cell)  # a rebuilt cell
    again = plan(root, glue_dir, *FORESTS.values(), *owed)
    assert "rule glue_table:" in again and "rule adapt_table:" not in again
    assert cell in job_fields(again, "glue_table")["reason"]
    assert FORESTS["glue_table"] in job_fields(again, "glue_table")["output"].split(", ")
