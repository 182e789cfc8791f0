"""Summarise the builds of benchmarks/gpu_smoke.sh: throughput and peak GPU memory per training job,
and each GPU build's results/metrics.json against the CPU reference of its profile.

    python benchmarks/gpu_smoke_report.py --out DIR [--tol 3.0] [--reference PROFILE=FILE] NAME=DIR...

A build is named ``<profile>-cpu`` or ``<profile>-gpu-compile-<true|false>``. Writes
``DIR/gpu_smoke.json`` and ``DIR/gpu_smoke.md`` (also printed); exits 1 when a GPU metric differs
from its CPU reference by more than ``--tol`` points or is missing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path


def parse_name(name: str) -> dict:
    profile, _, rest = name.partition("-")
    device = "gpu" if rest.startswith("gpu") else "cpu"
    return {"profile": profile, "device": device, "compile": rest.endswith("compile-true")}


def collect(name: str, directory: Path) -> dict:
    """One build: its wall time, per-job training figures, device-wide peak and metrics."""
    jobs = []
    for path in sorted((directory / "models").rglob("train_summary.json")):
        summary = json.loads(path.read_text())
        jobs.append(
            {
                "model": str(path.parent.relative_to(directory / "models")),
                "examples_per_s": summary["train_examples_per_s"],
                "train_seconds": summary["train_seconds"],
                "peak_gpu_mb": summary.get("peak_gpu_mb"),
            }
        )
    memory = directory / "gpu_memory.csv"
    samples = [int(x) for x in memory.read_text().split()] if memory.is_file() else []
    return parse_name(name) | {
        "name": name,
        "wall_seconds": int((directory / "wall_seconds").read_text()),
        "jobs": jobs,
        "device_peak_mb": max(samples, default=None),
        "metrics": json.loads((directory / "results" / "metrics.json").read_text()),
    }


def compare(reference: dict[str, float], build: dict[str, float], tol: float) -> list[dict]:
    rows = []
    for key in sorted(reference.keys() | build.keys()):
        ref, got = reference.get(key), build.get(key)
        diff = None if ref is None or got is None else round(got - ref, 4)
        rows.append(
            {
                "metric": key,
                "cpu": ref,
                "gpu": got,
                "diff": diff,
                "ok": diff is not None and abs(diff) <= tol,
            }
        )
    return rows


def median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def markdown(builds: list[dict], comparisons: dict[str, list[dict]], tol: float) -> str:
    lines = [
        "| build | wall s | training jobs | median ex/s | max torch peak MB | device peak MB |",
        "|---|---|---|---|---|---|",
    ]
    for b in builds:
        peaks = [j["peak_gpu_mb"] for j in b["jobs"] if j["peak_gpu_mb"] is not None]
        rate = median([j["examples_per_s"] for j in b["jobs"]])
        lines.append(
            f"| {b['name']} | {b['wall_seconds']} | {len(b['jobs'])} | {rate} | "
            f"{max(peaks, default='')} | {b['device_peak_mb'] or ''} |"
        )
    for name, rows in comparisons.items():
        bad = sum(not r["ok"] for r in rows)
        lines += ["", f"**{name}** against the CPU reference: {len(rows) - bad} of {len(rows)} "
                  f"metrics within {tol} points", "", "| metric | cpu | gpu | diff |", "|---|---|---|---|"]  # fmt: skip
        lines += [f"| {r['metric']} | {r['cpu']} | {r['gpu']} | {r['diff']} |" for r in rows]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--tol", type=float, default=3.0)
    ap.add_argument("--reference", action="append", default=[], help="PROFILE=metrics.json")
    ap.add_argument("builds", nargs="+", help="NAME=DIR")
    args = ap.parse_args()
    builds = [collect(n, Path(d)) for n, d in (b.split("=", 1) for b in args.builds)]
    refs = {b["profile"]: b["metrics"] for b in builds if b["device"] == "cpu"}
    for item in args.reference:
        profile, path = item.split("=", 1)
        refs[profile] = json.loads(Path(path).read_text())
    comparisons = {
        b["name"]: compare(refs[b["profile"]], b["metrics"], args.tol)
        for b in builds
        if b["device"] == "gpu" and b["profile"] in refs
    }
    text = markdown(builds, comparisons, args.tol)
    (args.out / "gpu_smoke.md").write_text(text)
    report = {"tol": args.tol, "builds": builds, "comparisons": comparisons}
    (args.out / "gpu_smoke.json").write_text(json.dumps(report, indent=2) + "\n")
    print(text)
    unchecked = [b["name"] for b in builds if b["device"] == "gpu" and b["name"] not in comparisons]
    if unchecked:
        print(f"gpu_smoke: no CPU reference for {', '.join(unchecked)}", file=sys.stderr)
    return int(any(not r["ok"] for rows in comparisons.values() for r in rows))


if __name__ == "__main__":
    sys.exit(main())
