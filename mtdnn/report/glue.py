"""`mtdnn report glue`: tables from cell JSONs: results/glue.csv (+ Markdown) and flat metrics for `dvc exp show`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mtdnn.config import BASELINES
from mtdnn.errors import MtdnnError
from mtdnn.fileio import atomic_path, read_json, write_json, write_text
from mtdnn.paper import GLUE_DEV
from mtdnn.report.degenerate import degenerate_cells
from mtdnn.report.forest import Panel, forest_rows, write_forest
from mtdnn.report.intervals import load_devsets, missing_note, missing_predictions
from mtdnn.report.seeds import interval_metrics, interval_summary, mean_std, paired_summary
from mtdnn.report.significance import GLUE_ROW, REPLICATES, DevSet, paired_bootstrap

MODEL_LABELS = {
    "base": "ours: standard fine-tuning",
    "equal": "ours: equal exposure",
    "mtl": "ours: MT-DNN, no fine-tuning",
    "mtdnn": "ours: MT-DNN",
}
# Column order of the paper's Table 3; a split suffix tells MNLI's matched from mismatched.
SPLIT_ALIAS = {"dev_matched": "-m", "dev_mismatched": "-mm", "dev": ""}


TASK_NAMES = {
    "cola": "CoLA",
    "sst2": "SST-2",
    "mrpc": "MRPC",
    "stsb": "STS-B",
    "qqp": "QQP",
    "mnli-m": "MNLI-m",
    "mnli-mm": "MNLI-mm",
    "mnli": "MNLI",
    "qnli": "QNLI",
    "rte": "RTE",
    "wnli": "WNLI",
    "ax": "AX",
}
METRIC_NAMES = {"accuracy": "acc", "f1": "F1", "mcc": "MCC", "pearson": "P", "spearman": "S"}
# What follows a table in its Markdown: a title and a table, or a notice alone (no table).
Section = tuple[str, pd.DataFrame | None]


def display(key: str) -> str:
    """'mrpc/f1' → 'MRPC F1' (the paper's headers)."""
    column, metric = key.split("/")
    return f"{TASK_NAMES.get(column, column)} {METRIC_NAMES.get(metric, metric)}"


def load_cells(files: list[Path]) -> pd.DataFrame:
    """One row per (model, task column, metric, seed), with the cell's file and split (where the
    bootstrap finds the cell's predictions)."""
    rows = []
    for f in files:
        doc = read_json(f)
        cell = doc["cell"]
        for split, metrics in doc["metrics"].items():
            where = {"column": cell["task"] + SPLIT_ALIAS.get(split, f"-{split}"), "split": split}
            rows += [
                {**cell, **where, "metric": m, "value": v, "file": str(f)}
                for m, v in metrics.items()
            ]
    if not rows:
        raise MtdnnError("report: no metrics found in the given cells")
    return pd.DataFrame(rows)


def glue_columns(frame: pd.DataFrame) -> list[str]:
    """Paper's columns first (in its order), then any others we have (WNLI, AX, custom tasks)."""
    have = set(frame["key"])
    order = [c for c in GLUE_DEV if c in have]
    return order + sorted(have - set(order))


def glue_task(column: str) -> str:
    """The GLUE task a table column belongs to: MNLI-m and MNLI-mm are one task."""
    return "mnli" if column in ("mnli-m", "mnli-mm") else column


def glue_score(values: dict[str, float]) -> float:
    """GLUE's score from ``{"column/metric": value}``: each column's metrics averaged first
    (MRPC F1/acc, STS-B P/S, QQP F1/acc), MNLI-m/mm averaged into one task, then the mean over
    tasks. Counting MNLI-m and -mm as two tasks reproduces neither published score."""
    frame = pd.DataFrame(
        [(k.split("/")[0], v) for k, v in values.items()], columns=["column", "value"]
    )
    per_col = frame.groupby("column")["value"].mean()
    return float(per_col.groupby(glue_task).mean().mean())


def _task_means(frame: pd.DataFrame) -> pd.Series:
    """GLUE score per seed (``glue_score`` of that seed's cells)."""
    keys = frame["column"] + "/" + frame["metric"]
    return (
        frame.assign(key=keys)
        .groupby("seed")[["key", "value"]]
        .apply(lambda g: glue_score(dict(zip(g["key"], g["value"], strict=True))))
    )


def glue_table(frame: pd.DataFrame, decimals: int) -> tuple[pd.DataFrame, dict]:
    frame = frame.assign(key=frame["column"] + "/" + frame["metric"])
    frame = frame[~frame["key"].isin(["cola/accuracy", "ax/accuracy"])]  # GLUE reports MCC there
    cols = glue_columns(frame)
    scored = frame[frame["column"].isin({k.split("/")[0] for k in GLUE_DEV})]
    rows, flat = [], {}
    for label, idx in (("paper: BERT-large", 0), ("paper: MT-DNN", 1)):
        row = {"model": label} | {c: f"{GLUE_DEV[c][idx]:.1f}" for c in cols if c in GLUE_DEV}
        row["GLUE score"] = f"{_paper_score(scored, idx):.1f}"
        rows.append(row)
    for model in [m for m in MODEL_LABELS if m in set(frame["model"])]:
        sub = frame[frame["model"] == model]
        row = {"model": MODEL_LABELS[model], "seeds": str(sub["seed"].nunique())}
        for c in cols:
            vals = sub[sub["key"] == c].sort_values("seed")["value"]
            if len(vals):
                row[c] = mean_std(vals, decimals)
                flat[f"{c}/{model}"] = round(float(vals.mean()), 4)
        score = _task_means(scored[scored["model"] == model])
        row["GLUE score"] = mean_std(score, decimals)
        flat[f"glue_score/{model}"] = round(float(score.mean()), 4)
        rows.append(row)
    table = pd.DataFrame(rows, columns=["model", "seeds", *cols, "GLUE score"])
    return table.rename(columns={c: display(c) for c in cols}), flat


# A model that is neither MT-DNN nor its no-fine-tuning row counts as a baseline, the known ones
# (config.BASELINES) first, in the table's order; any other by its name.
NOT_BASELINES = ("mtdnn", "mtl")


def present_baselines(models: set[str]) -> list[str]:
    """The baselines among ``models``, known ones first, in the table's order."""
    order = dict.fromkeys([*BASELINES, *sorted(models)])
    return [m for m in order if m in models and m not in NOT_BASELINES]


def model_name(model: str) -> str:
    """How titles name a model: its table label without "ours: " (an unknown one by its name)."""
    return MODEL_LABELS.get(model, model).removeprefix("ours: ")


def paired_differences(frame: pd.DataFrame, decimals: int) -> tuple[list[Section], dict]:
    """MT-DNN − each baseline per seed, per column and for the GLUE score: the paired comparison
    (same seed, same rows), which the two means alone hide. One section per baseline."""
    frame = frame.assign(key=frame["column"] + "/" + frame["metric"])
    frame = frame[~frame["key"].isin(["cola/accuracy", "ax/accuracy"])]
    scored = frame[frame["column"].isin({k.split("/")[0] for k in GLUE_DEV})]
    sections, flat = [], {}
    ours = _seed_table(frame, scored, "mtdnn")
    for base in present_baselines(set(frame["model"])):
        diff = (ours - _seed_table(frame, scored, base)).dropna(how="all", axis=1)
        rows = []
        for key in [*(c for c in glue_columns(frame) if c in diff), "GLUE score"]:
            vals = diff[key].dropna()
            rows.append(
                {"column": display(key) if "/" in key else key} | paired_summary(vals, decimals)
            )
            flat[f"delta/{base}/{key}"] = round(float(vals.mean()), 4)
        sections.append((f"MT-DNN − {model_name(base)}, paired by seed:", pd.DataFrame(rows)))
    return sections, flat


def _seed_table(frame: pd.DataFrame, scored: pd.DataFrame, model: str) -> pd.DataFrame:
    """``model``'s values per seed (rows) and column/metric key (columns), GLUE score included."""
    wide = frame[frame["model"] == model].pivot_table(index="seed", columns="key", values="value")
    wide["GLUE score"] = _task_means(scored[scored["model"] == model])
    return wide


def glue_intervals(
    frame: pd.DataFrame, decimals: int, replicates: int = REPLICATES
) -> tuple[list[Section], dict, list[Panel]]:
    """MT-DNN − each baseline present, per GLUE task (its metrics averaged, MNLI-m/-mm as one
    task) and for the GLUE score: the paired bootstrap over dev examples, one section each, and
    the same rows as one forest-plot panel each."""
    frame = frame[~(frame["column"] + "/" + frame["metric"]).isin(["cola/accuracy", "ax/accuracy"])]
    present = set(frame["model"])
    baselines = present_baselines(present)
    if "mtdnn" not in present or not baselines:
        return [], {}, []
    missing = missing_predictions(frame, "model", ["mtdnn", *baselines])
    if missing:
        return [(missing_note(missing), None)], {}, []
    keys = glue_columns(frame.assign(key=frame["column"] + "/" + frame["metric"]))
    order = list(dict.fromkeys(k.split("/")[0] for k in keys))
    frame = frame.assign(row=frame["column"].map(glue_task))
    frame = frame.sort_values("column", key=lambda c: c.map(order.index), kind="stable")
    devsets = load_devsets(frame, "model", ["mtdnn", *baselines])
    scored = {glue_task(k.split("/")[0]) for k in GLUE_DEV}
    sections, flat, panels = [], {}, []

    for base in baselines:
        paired = [d for d in devsets if {"mtdnn", base} <= {m for m, _ in d.preds}]
        if not paired:
            continue
        result = paired_bootstrap(paired, "mtdnn", base, scored, replicates)
        rows = [_interval_row(r, paired, decimals) for _, r in result.iterrows()]
        name = model_name(base)
        sections.append((_interval_title(name, replicates), pd.DataFrame(rows)))
        panels.append((f"MT-DNN − {name}", forest_rows(result, [r["task"] for r in rows])))
        for _, r in result.iterrows():
            key = "glue_score" if r["row"] == GLUE_ROW else r["row"]
            flat |= interval_metrics(r, f"bootstrap/{base}/{key}")
    section, counts = degenerate_section(devsets, ["mtdnn", *baselines])
    return [*sections, section], flat | counts, panels


def degenerate_section(devsets: list[DevSet], models: list[str]) -> tuple[Section, dict]:
    """The cells at or below the majority-class predictor on their dev rows (a table, or a line
    saying there are none), and how many dev columns each model has such a seed in."""
    names = {m: model_name(m) for m in models}
    low = degenerate_cells(devsets, names)
    counts = {f"degenerate/{m}": int((low["model"] == names[m]).sum()) for m in models}
    if low.empty:
        return ("Every cell beats the majority-class predictor on its dev rows.", None), counts
    low["column"] = low["column"].map(lambda c: TASK_NAMES.get(c, c))
    title = (
        "Cells at or below the majority-class predictor on their dev rows (score: the column's "
        "metrics averaged, as the GLUE score counts them; a constant has correlation 0). A model "
        "listed here learned little on that task, so a difference against it says that the other "
        "model learned, more than how much better it is:"
    )
    return (title, low), counts


def _interval_title(baseline: str, replicates: int) -> str:
    return (
        f"MT-DNN − {baseline}, paired bootstrap over dev examples ({replicates:,} resamples, the "
        "same rows for both models and every seed): difference of seed means, 95 % percentile "
        "interval, p-value and Holm-adjusted p over the rows below:"
    )


def _interval_row(result: pd.Series, devsets: list[DevSet], decimals: int) -> dict[str, str]:
    """A task's label and the metric its difference is on (as the GLUE score counts it)."""
    row = result["row"]
    mine = [d for d in devsets if d.row == row]
    metric = "/".join(METRIC_NAMES.get(m, m) for m in mine[0].metrics) if mine else ""
    if len(mine) > 1:
        metric += ", mean of " + " and ".join(TASK_NAMES.get(d.name, d.name) for d in mine)
    label = row if row == GLUE_ROW else TASK_NAMES.get(row, row)
    return {"task": label, "metric": metric} | interval_summary(result, decimals)


def _paper_score(scored: pd.DataFrame, idx: int) -> float:
    """The paper's dev score over the same task columns that we report, for a like-for-like mean,
    computed by the same rule as ours."""
    keys = set(scored["column"] + "/" + scored["metric"]) & set(GLUE_DEV)
    return glue_score({k: GLUE_DEV[k][idx] for k in keys}) if keys else float("nan")


FOREST_XLABEL = {
    "glue": "MT-DNN − baseline, difference of seed means (metric ×100)",
    "adapt": "MT-DNN init − base init, difference of seed means (accuracy ×100)",
}
# Why the forest plot has no intervals when the cells hold no pair to compare at all.
NO_PAIR = {
    "glue": "These cells hold no MT-DNN and baseline pair to compare.",
    "adapt": "These cells hold no MT-DNN-init and base-init pair to compare.",
}

ADAPT_PAIRED_TITLE = "MT-DNN init − base init, paired by seed:"


def write_table(
    table: pd.DataFrame,
    csv: Path,
    markdown: Path | None,
    sections: list[Section] | None = None,
    footnote: str | None = None,
) -> None:
    """The table as CSV; as Markdown, followed by each section (a title and a table, or a notice
    alone: the paired per-seed differences, the bootstrap intervals), and by the footnote (tasks
    the profile names that were left out)."""
    with atomic_path(csv) as tmp:
        table.to_csv(tmp, index=False)
    if markdown is not None:
        text = to_markdown(table) + "\n"
        for title, body in sections or []:
            text += f"\n{title}\n" + ("" if body is None else "\n" + to_markdown(body) + "\n")
        if footnote:
            text += f"\n{footnote}\n"
        write_text(markdown, text)


def skipped_note(skipped: list[str]) -> str | None:
    """The footnote for tasks left out by ``data.optional_tasks`` (no training split here)."""
    if not skipped:
        return None
    names = ", ".join(TASK_NAMES.get(t, t) for t in skipped)
    return f"Not in this table: {names} (no training split here; left out by data.optional_tasks)."


def to_markdown(table: pd.DataFrame) -> str:
    """Plain pipe table (no tabulate dependency)."""
    cells = table.astype(object).fillna("").astype(str)
    lines = ["| " + " | ".join(cells.columns) + " |", "|" + "---|" * len(cells.columns)]
    lines += ["| " + " | ".join(r) + " |" for r in cells.itertuples(index=False)]
    return "\n".join(lines)


def build(
    table: str,
    cells: list[Path],
    csv: Path,
    markdown: Path | None,
    metrics: Path | None,
    plot: Path | None,
    decimals: int,
    skipped: list[str] | None = None,
    replicates: int = REPLICATES,
    forest: Path | None = None,
) -> None:
    """The table (CSV, Markdown, flat metrics) of ``cells``; with ``forest``, the forest plot of
    its bootstrap rows, or a figure saying why there are none (the Markdown's notice)."""
    frame = load_cells(cells)
    sections: list[Section] = []
    if table == "glue":
        out, flat = glue_table(frame, decimals)
        if "mtdnn" in set(frame["model"]):
            sections, deltas = paired_differences(frame, decimals)
            flat |= deltas
        intervals = glue_intervals
    else:
        from mtdnn.report.adapt import adapt_intervals, adapt_paired_differences, adapt_table

        out, flat = adapt_table(frame, decimals, plot)
        if {"mtdnn", "base"} <= set(frame["init"]):
            diffs, deltas = adapt_paired_differences(frame, decimals)
            sections, flat = [(ADAPT_PAIRED_TITLE, diffs)], flat | deltas
        intervals = adapt_intervals
    boot, boot_flat, panels = intervals(frame, decimals, replicates)
    write_table(out, csv, markdown, sections + boot, skipped_note(skipped or []))
    if metrics is not None:
        write_json(metrics, flat | boot_flat)
    if forest is not None:
        notice = next((title for title, body in boot if body is None), None)
        write_forest(forest, panels, FOREST_XLABEL[table], notice or NO_PAIR[table])
