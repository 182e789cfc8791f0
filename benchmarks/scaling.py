"""How time grows with examples per task (1x, 2x, 4x) and with the number of tasks.

Two parts, each printed as a table of time per unit of work relative to the smallest run (1.00 at
every size means linear):

* **bookkeeping** (no model): the Algorithm 1 plan (``MultiTaskSampler.epoch_plan``), ``collate``
  of every batch, ``cap_rows`` and the metrics (``evaluate.score``) on synthetic tasks of
  ``--base-rows`` x 1/2/4 examples, and on 1/2/4/8 tasks. Large sizes make any hidden quadratic
  term show up, since nothing else is timed;
* **training** (bundled MiniLM, real GLUE rows): ``fit`` for one epoch with dev evaluation at its
  end, at ``--train-rows`` x 1/2/4 examples per task on RTE + MRPC (dev capped at the same count),
  and with 1/2/4 tasks (RTE, MRPC, STS-B, CoLA). Cost is per 1,000 real tokens (train + dev),
  because the tasks' sentences differ in length.

``python benchmarks/scaling.py`` (~4 min on 2 cores); ``--skip-training`` for the first part only.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

FACTORS = (1, 2, 4)
TASKS = ("rte", "mrpc", "stsb", "cola")


# --- Part 1: bookkeeping without a model ---------------------------------------------------------
def synthetic(name: str, n: int, rng: np.random.Generator):
    """A TaskData of ``n`` examples with GLUE-like lengths (8..128 tokens)."""
    from mtdnn.runtime.batching import TaskData

    spec = common.task_specs(["rte"])[0]
    lengths = rng.integers(8, 129, size=n)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    ids = rng.integers(1000, 30000, size=offsets[-1], dtype=np.int64)
    labels = rng.integers(0, 2, size=n)
    data = TaskData(
        spec, "train", np.arange(n).astype(str), ids, np.zeros_like(ids), offsets, labels
    )
    return name, data


def bookkeeping(tasks: dict, batch_size: int) -> float:
    """Seconds for one epoch's plan, every batch collated, the caps and the metrics."""
    from mtdnn.model.inference import score
    from mtdnn.runtime.batching import cap_rows, collate
    from mtdnn.training.sampling import MultiTaskSampler

    t = time.perf_counter()
    for name, data in tasks.items():
        cap_rows(len(data), len(data) // 2, 0, name)
    sampler = MultiTaskSampler({k: d.lengths for k, d in tasks.items()}, batch_size, seed=1)
    for task, rows in sampler.epoch_plan(0):
        collate(tasks[task], rows)
    for data in tasks.values():
        score(data, data.labels[::-1].copy())
    return time.perf_counter() - t


def part_bookkeeping(base: int, repeats: int) -> list[list[str]]:
    rng = np.random.default_rng(0)
    runs = [("rows", f"{f}x rows, 2 tasks", f, 2) for f in FACTORS]
    runs += [("tasks", f"1x rows, {k} tasks", 1, k) for k in (1, 2, 4, 8)]
    rows, ref = [], {}
    for key, label, factor, k in runs:
        tasks = dict(synthetic(f"t{i}", base * factor, rng) for i in range(k))
        n = sum(len(d) for d in tasks.values())
        secs = common.median([bookkeeping(tasks, 32) for _ in range(repeats)])
        per = secs / n * 1e6
        ref.setdefault(key, per)
        rows.append([label, f"{n:,}", f"{secs:.3f}", f"{per:.2f}", f"{per / ref[key]:.2f}"])
    return rows


# --- Part 2: real training and evaluation --------------------------------------------------------
def fit_once(names: list[str], rows: int, args, tmp: Path) -> tuple[float, int]:
    """One epoch of ``fit`` with its end-of-epoch dev evaluation; returns (seconds, real tokens)."""
    from mtdnn.config import TrainConfig
    from mtdnn.train import build_run
    from mtdnn.training import loop as T

    cfg = TrainConfig(
        max_train_examples=rows, max_eval_examples=rows, epochs=1, eval_each_epoch=True
    )
    run = build_run(common.task_specs(names), args.encoder, args.max_len, cfg, 1, tmp / "run")
    tokens = sum(int(d.lengths.sum()) for d in run.train.values())
    tokens += sum(int(d.lengths.sum()) for ds in run.dev.values() for d in ds)
    start = time.perf_counter()
    T.fit(run)
    seconds = time.perf_counter() - start
    shutil.rmtree(tmp / "run", ignore_errors=True)
    return seconds, tokens


def part_training(args, tmp: Path) -> list[list[str]]:
    for spec in common.task_specs(list(TASKS)):
        common.prepare(spec, args.glue_dir)
        common.tokenize(spec, args.encoder, args.max_len)
    fit_once(["rte"], 32, args, tmp)  # warm-up: first-call allocations, lazy imports
    n = args.train_rows
    runs = [("rows", f"{f}x rows ({n * f}/task), rte+mrpc", ["rte", "mrpc"], f) for f in FACTORS]
    runs += [("tasks", f"1x rows, {k} task(s)", list(TASKS[:k]), 1) for k in (1, 2, 4)]
    out, ref = [], {}
    for key, label, names, factor in runs:
        before = common.snap()
        secs, tokens = fit_once(names, args.train_rows * factor, args, tmp)
        busy = common.others_share(before, common.snap())
        per = secs / tokens * 1e3
        ref.setdefault(key, per)
        out.append(
            [
                label,
                f"{tokens:,}",
                f"{secs:.1f}",
                f"{per:.3f}",
                f"{per / ref[key]:.2f}",
                f"{busy:.0%}",
            ]
        )
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    common.common_args(p)
    p.add_argument("--base-rows", type=int, default=50_000, help="bookkeeping: rows per task at 1x")
    p.add_argument("--train-rows", type=int, default=128, help="training: rows per task at 1x")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--skip-training", action="store_true")
    args = p.parse_args()
    os.environ.setdefault("TQDM_DISABLE", "1")  # fit's progress bars would bury the tables
    common.setup_env(args.threads)
    print(common.machine())

    book = part_bookkeeping(args.base_rows, args.repeats)
    print(
        "\nBookkeeping without a model (plan + collate + caps + metrics), median of", args.repeats
    )
    print(common.table(book, ["run", "examples", "seconds", "µs/example", "vs 1x"]))
    if args.skip_training:
        return
    with common.scratch(args.workdir, args.keep) as tmp:
        train = part_training(args, tmp)
    print("\nTraining one epoch + dev evaluation (MiniLM, batch 32, bf16 where supported)")
    print(
        common.table(
            train, ["run", "real tokens", "seconds", "s/1k tokens", "vs 1x", "others' CPU"]
        )
    )


if __name__ == "__main__":
    main()
