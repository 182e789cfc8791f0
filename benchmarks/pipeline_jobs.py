"""Where a pipeline run's time and memory went, per rule, from Snakemake's own benchmark files.

Every heavy rule declares ``benchmark: logs/benchmarks/<rule>/....tsv``; Snakemake writes one row
per job (wall seconds, CPU seconds, peak RSS sampled by psutil: every 0.5 s for the first 30 s,
then every 30 s). This prints them per rule, and, with ``--wall`` (the run's wall time) and
``--cores``, how well the jobs filled the cores.

``python benchmarks/pipeline_jobs.py [PROJECT_DIR] --wall 3300 --cores 2``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import table  # noqa: E402


def load(root: Path) -> pd.DataFrame:
    bench = root / "logs" / "benchmarks"
    frames = []
    for f in sorted(bench.rglob("*.tsv")):
        df = pd.read_csv(f, sep="\t", na_values=["NA", "-"])
        df["rule"] = f.relative_to(bench).parts[0]
        frames.append(df)
    if not frames:
        sys.exit(f"{bench}: no Snakemake benchmark files (run the workflow first)")
    return pd.concat(frames, ignore_index=True)


def summary(df: pd.DataFrame) -> pd.DataFrame:
    return (
        df.groupby("rule")
        .agg(
            jobs=("s", "size"),
            total_s=("s", "sum"),
            mean_s=("s", "mean"),
            max_s=("s", "max"),
            cpu_s=("cpu_time", "sum"),
            peak_rss_mb=("max_rss", "max"),
        )
        .sort_values("total_s", ascending=False)
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("root", nargs="?", type=Path, default=Path.cwd())
    p.add_argument("--wall", type=float, help="the run's wall-clock seconds")
    p.add_argument("--cores", type=int, default=2)
    args = p.parse_args()
    s = summary(load(args.root))
    total = s["total_s"].sum()
    rows = [
        [
            rule,
            f"{r.jobs}",
            f"{r.total_s:,.0f}",
            f"{r.total_s / total:.0%}",
            f"{r.mean_s:.1f}",
            f"{r.max_s:.0f}",
            f"{r.cpu_s:,.0f}",
            f"{r.peak_rss_mb:,.0f}",
        ]
        for rule, r in s.iterrows()
    ]
    rows.append(
        [
            "all",
            f"{s['jobs'].sum()}",
            f"{total:,.0f}",
            "100%",
            "",
            "",
            f"{s['cpu_s'].sum():,.0f}",
            f"{s['peak_rss_mb'].max():,.0f}",
        ]
    )
    print(
        table(
            rows,
            ["rule", "jobs", "job-seconds", "share", "mean s", "max s", "CPU s", "peak RSS MB"],
        )
    )
    if args.wall:
        fill = total / (args.wall * args.cores)
        print(
            f"\nwall {args.wall:,.0f} s on {args.cores} cores: jobs filled {fill:.0%} of the "
            f"core-seconds (ideal packing: {total / args.cores:,.0f} s)"
        )


if __name__ == "__main__":
    main()
