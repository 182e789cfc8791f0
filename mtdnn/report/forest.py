"""Forest plots of the tables' paired-bootstrap differences: results/glue_forest.png and
results/domain_adaptation_forest.png.

One panel per comparison (MT-DNN − each baseline), one row per table row: the observed
difference as a point and its 95 % percentile interval as a bar, a vertical line at 0. The rows
are the bootstrap's own result rows, labelled as the table labels them, so the figure and the
table cannot disagree. A difference that holds after Holm's adjustment gets a filled marker.
"""

from __future__ import annotations

import textwrap
from os import PathLike
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mtdnn.fileio import atomic_path
from mtdnn.report.seeds import p_value
from mtdnn.report.significance import GLUE_ROW

if TYPE_CHECKING:  # matplotlib takes a second to import: only a report that draws pays for it
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

# The level of the 95 % intervals: a filled point is one whose Holm-adjusted p is below it.
ALPHA = 0.05
# A panel: its title and its rows (label, group, summary, delta, ci_low, ci_high, p_holm).
Panel = tuple[str, pd.DataFrame]
# Vertical room between rows, and the extra gap before a new group or a summary row.
GROUP_GAP, SUMMARY_GAP = 0.5, 0.9
DPI = 120


def forest_rows(
    result: pd.DataFrame, labels: list[str], groups: list[str] | None = None
) -> pd.DataFrame:
    """A panel's rows from ``significance.paired_bootstrap``'s result, in its order, labelled as
    the table labels them. ``groups`` sets rows apart (a dataset and split); the GLUE score, the
    summary of the others, is set apart and drawn last."""
    rows = result.reset_index(drop=True).assign(
        label=labels,
        group=groups if groups is not None else [""] * len(result),
        summary=result["row"].to_numpy() == GLUE_ROW,
    )
    return pd.concat([rows[~rows["summary"]], rows[rows["summary"]]], ignore_index=True)


def row_positions(rows: pd.DataFrame) -> np.ndarray:
    """y of each row, top to bottom (the axis is inverted): one unit apart, with extra room
    where the group changes and before a summary row."""
    ys, y = [], 0.0
    for i, (group, summary) in enumerate(zip(rows["group"], rows["summary"], strict=True)):
        if i:
            y += 1 + (SUMMARY_GAP if summary else GROUP_GAP if group != rows["group"][i - 1] else 0)
        ys.append(y)
    return np.asarray(ys)


def forest_figure(panels: list[Panel], xlabel: str) -> Figure:
    """The figure, not yet saved (tests read its artists): one axis per panel. A bare Figure,
    not pyplot's: it renders with Agg whatever the backend, and no global figure is left open."""
    from matplotlib.figure import Figure

    height = max(len(rows) + 2 for _, rows in panels) * 0.42 + 1.2
    fig = Figure(figsize=(6.0 * len(panels), height), dpi=DPI)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, rows) in zip(axes, panels, strict=True):
        _panel(ax, title, rows, xlabel)
    fig.legend(
        handles=[_key(True), _key(False)],
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=2,
        fontsize=8,
        frameon=False,
    )
    fig.tight_layout()
    return fig


def _key(holds: bool) -> Line2D:
    from matplotlib.lines import Line2D

    label = f"Holm p {'<' if holds else '≥'} {ALPHA} (" + ("holds)" if holds else "does not)")
    return Line2D([], [], ls="none", marker="o", color="black", mfc=_face(holds), label=label)


def _face(holds: bool) -> str:
    return "black" if holds else "white"


def _panel(ax, title: str, rows: pd.DataFrame, xlabel: str) -> None:
    ys = row_positions(rows)
    # Behind the points: the line a difference has to clear.
    ax.axvline(0.0, color="0.4", lw=1.0, zorder=0)
    ax.hlines(ys, rows["ci_low"], rows["ci_high"], color="black", lw=1.6)
    for y, r in zip(ys, rows.itertuples(index=False), strict=True):
        holds = bool(r.p_holm < ALPHA)  # NaN (an undefined metric) compares False: hollow
        ax.plot(
            [r.delta],
            [y],
            ls="none",
            marker="D" if r.summary else "o",
            ms=8 if r.summary else 6,
            color="black",
            mfc=_face(holds),
            gid=r.label,
        )
        ax.annotate(
            f"Holm p {p_value(r.p_holm)}",
            (1.02, y),
            xycoords=ax.get_yaxis_transform(),
            va="center",
            fontsize=8,
        )
    summary = ys[rows["summary"].to_numpy()]
    if len(summary):  # a dashed rule between the tasks and their summary
        ax.axhline(summary[0] - (1 + SUMMARY_GAP) / 2, color="0.6", lw=0.8, ls="--")
    ax.set_yticks(ys, rows["label"])
    for tick, summary_row in zip(ax.get_yticklabels(), rows["summary"], strict=True):
        tick.set_fontweight("bold" if summary_row else "normal")
    ax.set_ylim(ys[-1] + 0.8, -0.8)  # first row on top
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", color="0.9", lw=0.6)
    ax.set_axisbelow(True)


def notice_figure(reason: str) -> Figure:
    """What the plot says when the table has no intervals, so that the declared output exists
    and says why (cells built before they kept their predictions, or no pair to compare)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, 2.5), dpi=DPI)
    ax = fig.subplots()
    ax.set_axis_off()
    text = "No forest plot: the paired-bootstrap intervals are unavailable.\n\n"
    text += textwrap.fill(reason, 90)
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=9)
    return fig


def save_png(fig: Figure, out: str | PathLike) -> None:
    """Atomically, and the same bytes for the same figure: matplotlib's PNG carries no date, and
    its one default metadata key (Software, naming the matplotlib version) is dropped so that an
    upgrade alone does not make DVC see a changed plot."""
    with atomic_path(out, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})


def write_forest(
    out: str | PathLike, panels: list[Panel], xlabel: str, unavailable: str | None = None
) -> None:
    """The forest plot of ``panels``, or, with none, a figure saying ``unavailable``."""
    if panels:
        save_png(forest_figure(panels, xlabel), out)
    else:
        save_png(notice_figure(unavailable or "no pair of models to compare in these cells"), out)
