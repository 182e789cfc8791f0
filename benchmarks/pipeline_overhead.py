"""Pipeline overhead on the `smoke` profile: no-op Snakemake and DVC calls, and a one-knob rerun.

A clean checkout (``git clone`` of this repository's HEAD) is built once with the smoke profile
(``snakemake`` for both tables, then ``dvc repro``). Then, over that complete results tree:

* a no-op ``snakemake --cores 2 results/glue.csv``, ``snakemake -n``, ``dvc repro`` and
  ``dvc status`` are each timed ``--repeats`` times (median reported);
* one task's knob is changed (``finetune.per_task.rte.lr``) and the rerun is timed; the jobs it ran
  are counted per rule and checked against exactly that task's cells plus the table.

Run from the repository root: ``python benchmarks/pipeline_overhead.py`` (~6 min on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import OFFLINE, load_average, median, scratch, table  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
JOB = re.compile(r"^(?:local)?rule (\w+):$", re.MULTILINE)
NOOPS = {
    "snakemake --cores 2 results/glue.csv": ["snakemake", "--cores", "2", "results/glue.csv"],
    "snakemake -n (both tables)": [
        "snakemake",
        "-n",
        "results/glue.csv",
        "results/domain_adaptation.csv",
    ],
    "dvc repro": ["dvc", "repro"],
    "dvc status": ["dvc", "status"],
}


def env_for(root: Path, glue_dir: str) -> dict[str, str]:
    env = dict(os.environ, **OFFLINE, GLUE_DIR=glue_dir, DVC_NO_ANALYTICS="1")
    env["PYTHONPATH"] = str(root)  # the clone's package is the code that runs
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    for role in ("AUTHOR", "COMMITTER"):
        env[f"GIT_{role}_NAME"] = "mtdnn benchmark"
        env[f"GIT_{role}_EMAIL"] = "bench@mtdnn.invalid"
    return env


def run(cmd: list[str], root: Path, env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(
            f"`{' '.join(cmd)}` exited {proc.returncode}:\n{(proc.stdout + proc.stderr)[-3000:]}"
        )
    return seconds, proc.stdout + proc.stderr


def job_counts(text: str) -> Counter:
    return Counter(r for r in JOB.findall(text) if r not in {"all", "data"})


def build(root: Path, env: dict[str, str]) -> dict[str, float]:
    """Clone, switch to the smoke profile, build both tables, then `dvc repro` (a git baseline)."""
    subprocess.run(["git", "clone", "-q", str(REPO), str(root)], check=True)
    times = {}
    run([sys.executable, "-m", "mtdnn", "profile", "smoke"], root, env)
    times["build: snakemake, both tables"], _ = run(
        ["snakemake", "--cores", "2", "results/glue.csv", "results/domain_adaptation.csv"],
        root,
        env,
    )
    times["build: dvc repro (records the stages)"], _ = run(["dvc", "repro"], root, env)
    run(["git", "add", "-A"], root, env)
    run(["git", "commit", "-qm", "smoke built"], root, env)
    return times


def one_knob(root: Path, env: dict[str, str]) -> tuple[float, Counter, Counter]:
    """Change RTE's fine-tuning lr only; return the rerun's time, its jobs and the dry run's."""
    params = root / "params.yaml"
    cfg = yaml.safe_load(params.read_text())
    cfg["finetune"]["per_task"] = {"rte": {"lr": 3.0e-5}}
    params.write_text(yaml.safe_dump(cfg, sort_keys=False))
    _, dry = run(
        ["snakemake", "-n", "results/glue.csv", "results/domain_adaptation.csv"], root, env
    )
    seconds, text = run(
        ["snakemake", "--cores", "2", "results/glue.csv", "results/domain_adaptation.csv"],
        root,
        env,
    )
    return seconds, job_counts(dry), job_counts(text)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--glue-dir", default=os.environ.get("GLUE_DIR", "/work/shared/data/glue"))
    p.add_argument("--workdir", type=Path)
    p.add_argument("--keep", action="store_true")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", type=Path, help="write the raw timings here")
    args = p.parse_args()
    glue = str(Path(args.glue_dir).resolve())

    with scratch(args.workdir, args.keep) as work:
        root = work / "project"
        env = env_for(root, glue)
        times = build(root, env)
        noop = {
            name: [run(cmd, root, env)[0] for _ in range(args.repeats)]
            for name, cmd in NOOPS.items()
        }
        knob_s, dry, ran = one_knob(root, env)

    expected = Counter({"finetune": 2, "glue_table": 1})  # mtdnn + base RTE, each writes its cell
    rows = [[k, f"{v:.1f}", "–"] for k, v in times.items()]
    rows += [
        [f"no-op {k}", f"{median(v):.2f}", "≤ 3 s " + ("met" if median(v) <= 3 else "MISSED")]
        for k, v in noop.items()
    ]
    verdict = "exactly RTE's cells" if ran == expected == dry else f"expected {dict(expected)}"
    rows.append(["rerun after `finetune.per_task.rte.lr` changes", f"{knob_s:.1f}", verdict])
    print(f"\nload average at the end: {load_average()}")
    print(table(rows, ["step (smoke profile)", "seconds", "target"]))
    print(f"\njobs the one-knob rerun ran: {dict(ran)} (dry run announced {dict(dry)})")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"build": times, "noop": noop, "knob_s": knob_s, "knob_jobs": dict(ran)}, indent=2
            )
        )


if __name__ == "__main__":
    main()
