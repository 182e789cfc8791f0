"""`mtdnn report adapt`: results/domain_adaptation.csv and its plot: accuracy against training-set size, per init."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mtdnn.paper import ADAPT, ADAPT_SIZES
from mtdnn.report.forest import Panel, forest_rows
from mtdnn.report.intervals import load_devsets, missing_note, missing_predictions
from mtdnn.report.seeds import interval_metrics, interval_summary, paired_summary
from mtdnn.report.significance import REPLICATES, paired_bootstrap

INIT_LABELS = {"base": "base encoder", "mtdnn": "MT-DNN encoder"}


def _paper(dataset: str, n: int, init: str) -> float | None:
    """The paper's number for the same training-set size, when our size is one of its sizes."""
    for frac, count in ADAPT_SIZES.get(dataset, {}).items():
        if count == n:
            return ADAPT[dataset][frac][0 if init == "base" else 1]
    return None


def split_of(task: str, column: str) -> str:
    """``snli`` -> dev, ``snli-test`` -> test: the split a table column holds."""
    return column.removeprefix(f"{task}-") if column != task else "dev"


def adapt_table(frame: pd.DataFrame, decimals: int, plot: Path | None) -> tuple[pd.DataFrame, dict]:
    frame = frame[frame["metric"] == "accuracy"].astype({"n": int})
    rows, flat = [], {}
    keys = ["task", "column", "n", "init"]
    for (task, column, n, init), sub in frame.groupby(keys, sort=True):
        vals = sub["value"]
        std = float(vals.std(ddof=1)) if len(vals) > 1 else float("nan")
        rows.append(
            {
                "dataset": task,
                "split": split_of(task, column),
                "n_train": n,
                "init": init,
                "seeds": len(vals),
                "mean": round(float(vals.mean()), decimals),
                "std": round(std, decimals),
                "paper": _paper(task, n, init) if column == task else None,
            }
        )
        flat[f"adapt/{column}/n{n}/{init}"] = round(float(vals.mean()), 4)
    table = pd.DataFrame(rows)
    if plot is not None:
        plot_curves(frame, plot)
    return table, flat


def adapt_paired_differences(frame: pd.DataFrame, decimals: int) -> tuple[pd.DataFrame, dict]:
    """MT-DNN init − base init per seed, for each dataset, split and training-set size (the same
    seed draws the same rows for both inits)."""
    frame = frame[frame["metric"] == "accuracy"].astype({"n": int})
    keys = ["task", "column", "n"]
    wide = frame.pivot_table(index=[*keys, "seed"], columns="init", values="value")
    diff = (wide["mtdnn"] - wide["base"]).dropna()
    rows, flat = [], {}
    for (task, column, n), vals in diff.groupby(level=keys, sort=True):
        vals = vals.droplevel(keys)
        where = {"dataset": task, "split": split_of(task, column), "n_train": n}
        rows.append(where | paired_summary(vals, decimals))
        flat[f"adapt_delta/{column}/n{n}"] = round(float(vals.mean()), 4)
    return pd.DataFrame(rows), flat


def adapt_intervals(
    frame: pd.DataFrame, decimals: int, replicates: int = REPLICATES
) -> tuple[list[tuple[str, pd.DataFrame | None]], dict, list[Panel]]:
    """MT-DNN init − base init per dataset, split and training-set size: the paired bootstrap
    over the split's examples (both sizes resample the same rows), Holm-adjusted over the rows;
    the same rows as the forest plot's one panel."""
    frame = frame[frame["metric"] == "accuracy"].astype({"n": int})
    if not {"mtdnn", "base"} <= set(frame["init"]):
        return [], {}, []
    missing = missing_predictions(frame, "init", ["mtdnn", "base"])
    if missing:
        return [(missing_note(missing), None)], {}, []
    frame = frame.sort_values(["task", "column", "n"], kind="stable")
    frame = frame.assign(row=frame["column"] + "/n" + frame["n"].astype(str))
    devsets = load_devsets(frame, "init", ["mtdnn", "base"])
    paired = [d for d in devsets if {"mtdnn", "base"} <= {m for m, _ in d.preds}]
    if not paired:
        return [], {}, []
    result = paired_bootstrap(paired, "mtdnn", "base", (), replicates)
    where = frame.drop_duplicates("row").set_index("row")
    rows, flat = [], {}
    for _, r in result.iterrows():
        task, column, n = where.loc[r["row"], ["task", "column", "n"]]
        place = {"dataset": task, "split": split_of(task, column), "n_train": n}
        rows.append(place | interval_summary(r, decimals))
        flat |= interval_metrics(r, f"adapt_bootstrap/{column}/n{n}")
    title = (
        f"MT-DNN init − base init, paired bootstrap over evaluation examples ({replicates:,} "
        "resamples, the same rows for both inits and every seed): difference of seed means, "
        "95 % percentile interval, p-value and Holm-adjusted p over the rows below:"
    )
    return [(title, pd.DataFrame(rows))], flat, [_forest_panel(result, rows)]


def _forest_panel(result: pd.DataFrame, rows: list[dict]) -> Panel:
    """The table's rows as a forest panel: a row per size, grouped by dataset and split."""
    groups = [f"{r['dataset'].upper()} {r['split']}" for r in rows]
    labels = [f"{g}, {r['n_train']:,} examples" for g, r in zip(groups, rows, strict=True)]
    return "MT-DNN init − base init", forest_rows(result, labels, groups)


def plot_curves(frame: pd.DataFrame, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mtdnn.fileio import atomic_path

    dev = frame[~frame["column"].str.endswith("-test")]
    datasets = sorted(dev["task"].unique())
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 4), squeeze=False)
    for ax, dataset in zip(axes[0], datasets, strict=True):
        _panel(ax, dev[dev["task"] == dataset], dataset)
    fig.tight_layout()
    with atomic_path(out, suffix=".png") as tmp:
        # no Software key: a matplotlib upgrade alone must not change the plot DVC tracks
        fig.savefig(tmp, dpi=120, format="png", metadata={"Software": None})
    plt.close(fig)


def _panel(ax, frame: pd.DataFrame, dataset: str) -> None:
    for init, color in (("base", "tab:blue"), ("mtdnn", "tab:red")):
        stats = frame[frame["init"] == init].groupby("n")["value"].agg(["mean", "std"]).fillna(0)
        if len(stats):
            ax.plot(
                stats.index, stats["mean"], "o-", color=color, label=f"ours: {INIT_LABELS[init]}"
            )
            ax.fill_between(
                stats.index,
                stats["mean"] - stats["std"],
                stats["mean"] + stats["std"],
                color=color,
                alpha=0.2,
            )
        paper = [
            (ADAPT_SIZES[dataset][f], v[0 if init == "base" else 1])
            for f, v in ADAPT.get(dataset, {}).items()
        ]
        if paper:
            ax.plot(
                *zip(*paper, strict=True),
                "x--",
                color=color,
                alpha=0.7,
                label=f"paper: {INIT_LABELS[init]}",
            )
    ax.set_xscale("log")
    ax.set_xlabel("training examples (log scale)")
    ax.set_ylabel("dev accuracy (%)")
    ax.set_title(dataset.upper())
    ax.legend(fontsize=8)
