"""How the tables summarise a cell over seeds: mean ± std, and paired per-seed differences."""

from __future__ import annotations

import pandas as pd


def mean_std(values: pd.Series, decimals: int) -> str:
    """``mean ± std`` (sample std) over seeds; the value alone for a single seed."""
    if len(values) == 1:
        return f"{values.iloc[0]:.{decimals}f}"
    return f"{values.mean():.{decimals}f} ± {values.std(ddof=1):.{decimals}f}"


def paired_summary(diffs: pd.Series, decimals: int) -> dict[str, str]:
    """One row of a paired table: each seed's difference, their mean ± std, and how many are
    positive (the paired comparison that two means alone hide)."""
    return {
        "per seed": ", ".join(f"{s}: {v:+.{decimals}f}" for s, v in diffs.items()),
        "mean ± std": mean_std(diffs, decimals),
        "seeds > 0": f"{int((diffs > 0).sum())}/{len(diffs)}",
    }


def p_value(p: float) -> str:
    """Three decimals; below 0.001 as a bound (10,000 replicates resolve no finer)."""
    if p != p:  # NaN: an undefined metric on the dev set
        return "n/a"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def interval_summary(row: pd.Series, decimals: int) -> dict[str, str]:
    """One row of a bootstrap table: the observed difference of seed means, its 95 % percentile
    interval, the p-value and its Holm adjustment (``significance.paired_bootstrap``'s columns)."""
    return {
        "mean": f"{row['delta']:+.{decimals}f}",
        "95 % CI": f"[{row['ci_low']:+.{decimals}f}, {row['ci_high']:+.{decimals}f}]",
        "p": p_value(row["p"]),
        "Holm p": p_value(row["p_holm"]),
    }


def interval_metrics(row: pd.Series, prefix: str) -> dict[str, float]:
    """The same row as flat metrics for `dvc exp show` (unrounded but for 4 decimals)."""
    return {
        f"{prefix}/{name}": round(float(row[name]), 4)
        for name in ("delta", "ci_low", "ci_high", "p", "p_holm")
    }
