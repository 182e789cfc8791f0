"""Where a pipeline run's time went, per rule, from Snakemake's own run log.

Snakemake logs every job's start (``rule <name>:`` with its ``jobid``, under a timestamp) and end
(``Finished jobid: N``). This pairs them, sums the wall seconds per rule (1 s resolution) and
shows how fully the jobs kept the cores busy over the run.

``python benchmarks/pipeline_jobs.py [PROJECT_DIR | LOG_FILE] [--cores 2] [--by rule,init,task]``
(default: the newest log in ``./.snakemake/log``). ``--by`` groups by the rule and any of the jobs'
wildcards (``init``, ``task``, ``seed``, ...): where a profile's time goes, cell by cell, when
re-planning it for a time budget.
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import datetime
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import table  # noqa: E402

STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ [\d:]+ \d{4})\]$")
RULE = re.compile(r"^(?:local)?rule (\w+):$")
JOBID = re.compile(r"^\s+jobid: (\d+)$")
WILDCARDS = re.compile(r"^\s+wildcards: (.*)$")
DONE = re.compile(r"^Finished jobid: (\d+)")


def newest_log(path: Path) -> Path:
    if path.is_file():
        return path
    logs = sorted((path / ".snakemake" / "log").glob("*.snakemake.log"))
    if not logs:
        sys.exit(f"{path}/.snakemake/log: no Snakemake run log (run the workflow first)")
    return logs[-1]


def jobs(log: Path) -> pd.DataFrame:
    """One row per finished job: rule, start, end (timestamps as Snakemake printed them) and its
    wildcards, one column each."""
    started: dict[str, dict] = {}
    rows, now, rule, job = [], None, None, None
    for line in log.read_text().splitlines():
        if m := STAMP.match(line):
            now = datetime.strptime(m.group(1), "%a %b %d %H:%M:%S %Y")
        elif m := RULE.match(line):
            rule = m.group(1)
        elif (m := JOBID.match(line)) and rule:
            job = started[m.group(1)] = {"rule": rule, "start": now}
            rule = None
        elif (m := WILDCARDS.match(line)) and job is not None:
            job |= dict(kv.split("=", 1) for kv in m.group(1).split(", ") if "=" in kv)
        elif (m := DONE.match(line)) and m.group(1) in started:
            rows.append(started.pop(m.group(1)) | {"end": now})
    if not rows:
        sys.exit(f"{log}: no finished jobs in this log")
    return pd.DataFrame(rows).assign(s=lambda d: (d.end - d.start).dt.total_seconds())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("path", nargs="?", type=Path, default=Path.cwd())
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--by", default="rule", help="comma-separated: rule and/or wildcard names")
    args = p.parse_args()
    log = newest_log(args.path)
    df = jobs(log)
    keys = [k for k in args.by.split(",") if k]
    df = df.reindex(columns=list(dict.fromkeys([*df.columns, *keys]))).fillna(
        {k: "-" for k in keys}
    )
    per = df.groupby(keys)["s"].agg(["size", "sum", "mean", "max"]).sort_values("sum")[::-1]
    total = per["sum"].sum()
    rows = [
        [*(key if isinstance(key, tuple) else (key,)), f"{int(r['size'])}", f"{r['sum']:,.0f}",
         f"{r['sum'] / total:.0%}", f"{r['mean']:.1f}", f"{r['max']:.0f}"]
        for key, r in per.iterrows()
    ]  # fmt: skip
    rows.append(["all", *[""] * (len(keys) - 1), f"{len(df)}", f"{total:,.0f}", "100%", "", ""])
    print(f"{log}\n")
    print(table(rows, [*keys, "jobs", "job-seconds", "share", "mean s", "max s"]))
    wall = (df.end.max() - df.start.min()).total_seconds()
    print(
        f"\nfirst job start to last job end: {wall:,.0f} s on {args.cores} cores; the jobs filled "
        f"{total / (wall * args.cores):.0%} of the core-seconds"
    )


if __name__ == "__main__":
    main()
