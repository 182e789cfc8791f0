"""Shared helpers for the benchmarks: offline env, thread count, real GLUE data in a scratch dir.

The benchmarks never touch the repository's own data/ or models/: every file they write lives under
``--workdir`` (default: a fresh temporary directory, removed at exit unless ``--keep``).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
DEFAULT_GLUE = "/work/shared/data/glue"


def offline_env(threads: int) -> None:
    """Offline hubs and the OpenMP thread count: must be set before transformers/torch import."""
    for k, v in OFFLINE.items():
        os.environ.setdefault(k, v)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))


def setup_env(threads: int) -> None:
    """Offline hubs, quiet logs, and a fixed torch thread count (set before torch does any work)."""
    offline_env(threads)
    import torch

    torch.set_num_threads(threads)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s", stream=sys.stderr)
    for name in ("transformers", "datasets", "accelerate", "mtdnn"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:  # the per-model "LOAD REPORT" and weight-loading bars are noise in a benchmark log
        import transformers

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
        import datasets

        datasets.disable_progress_bars()
    except ImportError:
        pass


def require_bench_group(script: str) -> None:
    """HF Trainer needs `accelerate`, which mtdnn itself does not: without it the run would die
    minutes in, with a traceback deep inside transformers. Say so in one line, up front."""
    import importlib.util

    if importlib.util.find_spec("accelerate") is None:
        print(
            f"{script}: HF Trainer needs accelerate, which is not installed; install the "
            "benchmarks' group: pip install -e . --group bench",
            file=sys.stderr,
        )
        raise SystemExit(2)


def common_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--glue-dir",
        default=os.environ.get("GLUE_DIR", DEFAULT_GLUE),
        help="GLUE-layout data (default $GLUE_DIR or /work/shared/data/glue)",
    )
    p.add_argument("--workdir", type=Path, help="scratch dir (default: a fresh temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the scratch dir")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--encoder", default="minilm")
    p.add_argument("--max-len", type=int, default=128)


@contextmanager
def scratch(workdir: Path | None, keep: bool):
    """chdir into the scratch dir (the trainer reads data/tokenized/... relative to cwd)."""
    made = workdir is None
    path = Path(tempfile.mkdtemp(prefix="mtdnn-bench-")) if made else workdir.resolve()
    path.mkdir(parents=True, exist_ok=True)
    old = Path.cwd()
    os.chdir(path)
    try:
        yield path
    finally:
        os.chdir(old)
        if made and not keep:
            shutil.rmtree(path, ignore_errors=True)


def task_specs(names: list[str]):
    from mtdnn.tasks import get_task, load_tasks

    tasks = load_tasks()
    return [get_task(tasks, n) for n in names]


def prepare(task, glue_dir: str) -> Path:
    """Canonical parquet for ``task`` under ./data/canonical (a no-op when up to date)."""
    from mtdnn import paths
    from mtdnn.prepare import prepare_task

    out = paths.canonical_dir(task.name)
    prepare_task(task, out, glue_dir)
    return out


def tokenize(task, encoder: str, max_len: int) -> Path:
    from mtdnn import paths
    from mtdnn.model.encoders import resolve_encoder
    from mtdnn.tokenize import tokenize_task

    out = paths.tokenized_dir(encoder, max_len, task.name)
    tokenize_task(task, paths.canonical_dir(task.name), out, resolve_encoder(encoder), max_len)
    return out


def token_examples(data) -> list[dict]:
    """Per-example token ids and an all-ones attention mask of a ``TaskData`` (mtdnn's tokenized
    cache), so that every contender sees identical inputs; float labels for regression, label
    indices otherwise."""
    from mtdnn.tasks import TaskType

    d, o = data, data.offsets
    as_label = float if data.task.type is TaskType.REGRESSION else int
    return [
        {
            "input_ids": d.ids[o[i] : o[i + 1]].tolist(),
            "token_type_ids": d.types[o[i] : o[i + 1]].tolist(),
            "attention_mask": [1] * int(o[i + 1] - o[i]),
            "labels": as_label(d.labels[i]),
        }
        for i in range(len(d))
    ]


def _field(text: str, key: str) -> str:
    """The value of the first ``key: value`` line of ``text`` that starts with ``key``."""
    return next((ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith(key)), "")


def cpu_info() -> dict[str, object]:
    """``lscpu``'s "Model name" (else /proc/cpuinfo's) and the native-bf16 flags torch can use."""
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        lscpu = ""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        cpuinfo = ""
    flags = set(cpuinfo.split())
    return {
        "model": _field(lscpu, "Model name") or _field(cpuinfo, "model name") or "unknown CPU",
        "cores": os.cpu_count(),
        "avx512_bf16": "avx512_bf16" in flags,
        "amx_bf16": "amx_bf16" in flags,
    }


def machine() -> str:
    import torch

    cpu = cpu_info()
    bf16 = [f for f in ("avx512_bf16", "amx_bf16") if cpu[f]] or ["no avx512_bf16/amx_bf16"]
    return (
        f"{cpu['model']} ({cpu['cores']} cores, {', '.join(bf16)}); torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; python {platform.python_version()}"
    )


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class Snap:
    """Wall time, busy CPU jiffies of the whole machine, and CPU jiffies of this process."""

    t: float
    busy: int
    own: int


def snap() -> Snap:
    """Cheap (~50 us): read /proc so a timed window knows how much CPU *other* processes took."""
    t = time.perf_counter()
    try:
        f = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        user, nice, system, idle, iowait, irq, softirq, steal = (int(x) for x in f[:8])
        busy = user + nice + system + irq + softirq + steal
        own = sum(
            int(x) for x in Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[11:13]
        )
    except (OSError, ValueError):
        busy = own = 0
    return Snap(t, busy, own)


def others_share(a: Snap, b: Snap) -> float:
    """Share of the machine's cores used by other processes between two snaps (0 = quiet)."""
    dt = b.t - a.t
    if dt <= 0:
        return 0.0
    other = (b.busy - a.busy) - (b.own - a.own)
    return max(0.0, other / _TICK / (dt * (os.cpu_count() or 1)))


class Timer:
    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.t0


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def table(rows: list[list[str]], header: list[str]) -> str:
    """A GitHub-markdown table, columns padded for the terminal."""
    cells = [header, *rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    fmt = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([fmt(header), sep, *(fmt(r) for r in rows)])
