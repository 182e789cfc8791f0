"""Checks for tests/cluster/slurm_e2e.sh: every planned job ran under SLURM with what it asked for.

Reads the dry-run plan of the SLURM build (what Snakemake resolved for each job) and the cluster's
``sacct -X -P`` listing, and fails with one line per problem: a job missing from SLURM, a job in
another partition, with other cpus or memory than its rule asked for, or in an unexpected state.
The one job the script cancelled must show as CANCELLED, its rerun as COMPLETED.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from snakemake_plan import parse_plan  # noqa: E402

TRAINING = ("train_mtl", "finetune", "adapt")
FIELDS = ("JobID", "Comment", "Partition", "State", "AllocCPUS", "ReqMem")
# The plugin's job comment: "rule_<rule>" or "rule_<rule>_wildcards_<values>".
_COMMENT = re.compile(r"^rule_(.+?)(?:_wildcards_.*)?$")


def expected_requests(plan_text: str) -> tuple[dict[str, tuple[int, str]], Counter]:
    """Per rule: (cpus, memory as sacct prints it) and how many jobs the plan holds."""
    jobs = parse_plan(plan_text)
    asks: dict[str, set[tuple[int, str]]] = {}
    for job in jobs:
        asks.setdefault(job.rule, set()).add((job.threads, f"{job.resources['mem_mb']}M"))
    if any(len(a) != 1 for a in asks.values()):
        sys.exit(f"check: one rule's jobs ask for different resources: {asks}")
    return {rule: a.pop() for rule, a in asks.items()}, Counter(j.rule for j in jobs)


def read_sacct(text: str) -> list[dict[str, str]]:
    rows = [dict(zip(FIELDS, line.split("|"), strict=True)) for line in text.splitlines() if line]
    for row in rows:
        match = _COMMENT.match(row["Comment"])
        row["rule"] = match.group(1) if match else "?"
    return rows


def problems(rows: list[dict], asks: dict, planned: Counter, partition: str, cancelled: str):
    """One message per mismatch between the cluster's record and the plan."""
    for row in rows:
        where = f"SLURM job {row['JobID']} ({row['Comment']})"
        if row["rule"] not in asks:
            yield f"{where}: no such job in the plan"
            continue
        cpus, mem = asks[row["rule"]]
        if (row["Partition"], int(row["AllocCPUS"]), row["ReqMem"]) != (partition, cpus, mem):
            yield (
                f"{where}: partition {row['Partition']}, {row['AllocCPUS']} cpus, "
                f"{row['ReqMem']} memory; its rule asked for {partition}, {cpus}, {mem}"
            )
        want = "CANCELLED" if row["JobID"] == cancelled else "COMPLETED"
        if not row["State"].startswith(want):
            yield f"{where}: state {row['State']}, expected {want}"
    done = Counter(r["rule"] for r in rows if r["State"] == "COMPLETED")
    if done != planned:
        yield f"completed under SLURM per rule {dict(done)} != planned {dict(planned)}"
    killed = [r for r in rows if r["JobID"] == cancelled]
    if not killed or killed[0]["rule"] not in TRAINING:
        yield f"the cancelled job {cancelled} is not a training job in the listing"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--plan", type=Path, required=True, help="output of `snakemake -n`")
    parser.add_argument("--sacct", type=Path, required=True, help=f"sacct -X -P -o {FIELDS}")
    parser.add_argument("--partition", required=True)
    parser.add_argument("--cancelled", required=True, help="the SLURM job id scancel'd")
    parser.add_argument("--local-log", type=Path, required=True, help="the local build's output")
    args = parser.parse_args()
    asks, planned = expected_requests(args.plan.read_text())
    rows = read_sacct(args.sacct.read_text())
    found = list(problems(rows, asks, planned, args.partition, args.cancelled))
    # The local reference build ran under the GPU profile: each training job took a device slot.
    slots = args.local_log.read_text().count("gpu_slots: CUDA_VISIBLE_DEVICES=")
    training = sum(planned[r] for r in TRAINING)
    if slots != training:
        found.append(f"local build: {slots} training jobs took a GPU slot, expected {training}")
    for line in found:
        print(f"check: {line}", file=sys.stderr)
    if found:
        sys.exit(1)
    print(
        f"check: {sum(planned.values())} jobs ({dict(planned)}) each ran under SLURM in "
        f"partition {args.partition} with the cpus and memory its rule asked for; job "
        f"{args.cancelled} was cancelled and its rerun completed; the local build gave each of "
        f"its {training} training jobs its own GPU slot"
    )


if __name__ == "__main__":
    main()
