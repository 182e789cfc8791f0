"""Peak RSS of multi-task training with the `default` profile (MiniLM, batch 32, max_len 128).

In a scratch dir holding the default profile as ``params.yaml``, the pipeline's own commands run
as the workflow runs them: ``mtdnn prepare`` and ``mtdnn tokenize`` for every multi-task task, then
``mtdnn train-mtl`` with the profile's knobs (``--max-train N`` shortens it; the peak does not grow
with the number of steps, the table shows that). The training process is measured from outside:

* the **peak RSS** is the kernel's high-water mark for that child (``getrusage`` ``ru_maxrss``),
  so no short spike between samples is missed;
* a 0.2 s ``psutil`` sampler adds when it happened: RSS after start-up, median while training,
  and the largest sample.

``python benchmarks/memory.py`` (the whole default multi-task run, ~8 min on 2 cores);
``python benchmarks/memory.py --max-train 200 300`` compares shorter runs (~1 min each).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
LIMIT_GB = 2.5


def mtdnn(*args: str, env: dict[str, str]) -> None:
    cmd = [sys.executable, "-m", "mtdnn", *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"`{' '.join(cmd)}` exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")


def prepare_all(grid, env: dict[str, str]) -> None:
    for task in grid.mtl_tasks:
        canon = f"data/canonical/{task}"
        mtdnn("prepare", "--task", task, "--out", canon, env=env)
        tok = f"data/tokenized/{grid.encoder}-L{grid.max_len}/{task}"
        mtdnn(
            "tokenize",
            "--task",
            task,
            "--encoder",
            grid.encoder,
            "--max-len",
            str(grid.max_len),
            "--canonical",
            canon,
            "--out",
            tok,
            env=env,
        )


def sample(pid: int, out: list[tuple[float, int]], stop: threading.Event) -> None:
    try:
        proc = psutil.Process(pid)
        t0 = time.perf_counter()
        while not stop.wait(0.2):
            out.append((time.perf_counter() - t0, proc.memory_info().rss))
    except psutil.Error:  # the process ended between two samples
        pass


def train_command(grid, cfg: dict, threads: int, out: Path) -> list[str]:
    """The default profile's ``mtdnn train-mtl`` call, with ``cfg`` as its stage config."""
    return [
        *(sys.executable, "-m", "mtdnn", "train-mtl"),
        *("--tasks", ",".join(grid.mtl_tasks), "--seed", "1", "--max-len", str(grid.max_len)),
        *("--cfg", json.dumps(cfg), "--threads", str(threads), "--out", str(out)),
    ]


def sample_child(proc: subprocess.Popen, samples: list, stop: threading.Event):
    """Start sampling the wrapper's child (the training process) once it exists; None if it ended
    before it was seen (ru_maxrss still holds its peak)."""
    while proc.poll() is None:
        kids = psutil.Process(proc.pid).children()
        if kids:
            sampler = threading.Thread(
                target=sample, args=(kids[0].pid, samples, stop), daemon=True
            )
            sampler.start()
            return sampler
        time.sleep(0.02)
    return None


def measure(
    grid, max_train: int | None, threads: int, env: dict[str, str], knobs: dict | None = None
) -> dict:
    """Run train-mtl in a child and return its peak RSS and the sampled timeline; ``knobs``
    override the profile's multi-task knobs."""
    from mtdnn.config import stage_config

    cfg = stage_config(grid.params, "mtl") | (knobs or {})
    if max_train is not None:
        cfg["max_train_examples"] = max_train
    out = Path(f"models/mtl-{max_train}")
    shutil.rmtree(out, ignore_errors=True)
    # A wrapper process, so that RUSAGE_CHILDREN holds this training run and nothing else.
    wrapper = (
        "import resource,subprocess,sys;r=subprocess.run(sys.argv[1:]).returncode;"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss);sys.exit(r)"
    )
    samples: list[tuple[float, int]] = []
    stop = threading.Event()
    start = time.perf_counter()
    cmd = [sys.executable, "-c", wrapper, *train_command(grid, cfg, threads, out)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = sample_child(proc, samples, stop)
    stdout, stderr = proc.communicate()
    stop.set()
    if sampler is not None:
        sampler.join()
    if proc.returncode != 0:
        sys.exit(f"train-mtl exited {proc.returncode}: {stderr.strip()[-2000:]}")
    rss = [r for _, r in samples]
    return {
        "max_train": cfg["max_train_examples"],
        "knobs": knobs or {},
        "seconds": time.perf_counter() - start,
        "peak_rss": int(stdout.split()[-1]) * 1024,  # ru_maxrss is in KiB on Linux
        "rss_after_startup": rss[min(len(rss) - 1, 25)] if rss else 0,  # ~5 s in
        "median_rss": int(sorted(rss)[len(rss) // 2]) if rss else 0,
        "max_sample": max(rss, default=0),
    }


def parse_knobs(pairs: list[str]) -> dict:
    """``KNOB=VALUE`` pairs → a knob dict (values read as YAML scalars: 8, null, true)."""
    import yaml

    knobs = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            sys.exit(f"error: --set {pair!r}: expected KNOB=VALUE")
        knobs[key] = yaml.safe_load(value)
    return knobs


def print_report(runs: list[dict], grid, knobs: dict) -> None:
    """The runs' table, after the machine and the knobs."""
    gb = 1e9
    print(f"\n{common.machine()}\ntasks: {', '.join(grid.mtl_tasks)}; batch 32, max_len 128")
    print(f"multi-task knobs: the profile's{''.join(f', {k}={v}' for k, v in knobs.items())}")
    rows = [
        [
            f"{r['max_train']:,}/task" if r["max_train"] else "all",
            f"{r['seconds']:.0f}",
            f"{r['rss_after_startup'] / gb:.2f}",
            f"{r['median_rss'] / gb:.2f}",
            f"{r['peak_rss'] / gb:.2f}",
            f"{r['peak_rss'] / gb / LIMIT_GB:.2f} of {LIMIT_GB} GB",
        ]
        for r in runs
    ]
    print(
        common.table(
            rows,
            [
                "rows",
                "seconds",
                "RSS at ~5 s (GB)",
                "median RSS (GB)",
                "peak RSS (GB)",
                "vs target",
            ],
        )
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    common.common_args(p)
    p.add_argument(
        "--max-train",
        type=int,
        nargs="*",
        default=[],
        help="rows per task for each run (default: one run at the profile's cap)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KNOB=VALUE",
        help="override a multi-task knob (YAML value), e.g. --set pad_to_multiple_of=1",
    )
    p.add_argument("--json", type=Path, help="write the raw measurements here")
    args = p.parse_args()
    knobs = parse_knobs(args.set)
    common.offline_env(args.threads)
    from mtdnn.config import load_params
    from mtdnn.grid import Grid

    env = dict(os.environ, GLUE_DIR=str(Path(args.glue_dir).resolve()))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    os.environ["GLUE_DIR"] = env["GLUE_DIR"]  # the grid resolves $GLUE_DIR sources too
    with common.scratch(args.workdir, args.keep) as work:
        shutil.copy(REPO / "mtdnn" / "profiles" / "default.yaml", work / "params.yaml")
        grid = Grid(load_params(work / "params.yaml"))
        prepare_all(grid, env)
        runs = [measure(grid, n, args.threads, env, knobs) for n in (args.max_train or [None])]

    print_report(runs, grid, knobs)
    if args.json:
        args.json.write_text(json.dumps(runs, indent=2))


if __name__ == "__main__":
    main()
