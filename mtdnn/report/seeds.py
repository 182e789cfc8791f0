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
