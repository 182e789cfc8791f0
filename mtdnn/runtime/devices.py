"""Was this process asked to run on a GPU, and by what: the scheduler's and the workflow's variables.

A job that asked for a GPU but whose torch cannot use one must stop at once: falling back to the
CPU would train bert-large there until the job's time limit, holding the GPU it never used.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch

from mtdnn.errors import MtdnnError

# An explicit request (a wrapper script, a site profile): 1 asks for a GPU; 0 says "the CPU is
# meant" and overrides the scheduler's variables (a CPU-only test of a GPU profile, a CPU run).
REQUIRE = "MTDNN_REQUIRE_GPU"
VISIBLE = "CUDA_VISIBLE_DEVICES"
# SLURM's counts, "[type:]count", one comma-separated entry per GPU type (--gpus, --gpus-per-node,
# --gpus-per-task); SLURM_GPUS_ON_NODE is a bare count. "0" here is no GPU.
SLURM_COUNTS = ("SLURM_GPUS", "SLURM_GPUS_ON_NODE", "SLURM_GPUS_PER_NODE", "SLURM_GPUS_PER_TASK")
# SLURM's device ids, "0,1": "0" here is GPU 0, not zero GPUs.
SLURM_IDS = ("SLURM_JOB_GPUS", "SLURM_STEP_GPUS")
VARIABLES = (REQUIRE, VISIBLE, *SLURM_COUNTS, *SLURM_IDS)
_YES, _NO = ("1", "true", "yes"), ("0", "false", "no")


def visible_devices(value: str) -> list[str]:
    """The devices a ``CUDA_VISIBLE_DEVICES`` value names (indices or GPU-/MIG- UUIDs).

    CUDA reads the list up to its first invalid entry, so "", "-1" (the usual "hide them all") and
    "0,-1" name none, none and device 0; SLURM writes "NoDevFiles" where a node has no GPU files.
    """
    named = []
    for entry in (e.strip() for e in value.split(",")):
        if not entry or entry.startswith("-") or entry == "NoDevFiles":
            break
        named.append(entry)
    return named


def slurm_count(value: str) -> int:
    """GPUs in a SLURM count variable: "2", "gpu:2", "a100:2", "a100:1,v100:2" (3); a type without
    a count ("a100") is one GPU, as in a gres request."""
    total = 0
    for entry in (e.strip() for e in value.split(",")):
        last = entry.split("(", 1)[0].rsplit(":", 1)[-1]  # "(S:0-1)": socket binding, not a count
        total += int(last) if last.isdigit() else 1 if last else 0
    return total


def _asks(name: str, value: str) -> bool:
    if name == VISIBLE:
        return bool(visible_devices(value))
    if name in SLURM_IDS:
        return any(e.strip() for e in value.split(","))
    return slurm_count(value) > 0


def gpu_request(environ: Mapping[str, str] | None = None) -> list[str]:
    """The variables that ask this process for a GPU, as ``NAME='value'``; empty when none does.

    ``MTDNN_REQUIRE_GPU`` 1 asks on its own; 0 answers "no" whatever the scheduler set.
    """
    env = os.environ if environ is None else environ
    require = env.get(REQUIRE, "").strip().lower()
    if require in _NO:
        return []
    if require and require not in _YES:
        raise MtdnnError(f"{REQUIRE}={env[REQUIRE]!r}: expected 1 (a GPU is required) or 0 (not)")
    names = [n for n in VARIABLES[1:] if env.get(n, "").strip() and _asks(n, env[n])]
    return [f"{n}={env[n]!r}" for n in ([REQUIRE] if require else []) + names]


def torch_sees() -> str:
    """What this torch can use, in words, for an error message."""
    built = (
        f"CUDA {torch.version.cuda}"
        if torch.version.cuda
        else f"ROCm {torch.version.hip}"
        if getattr(torch.version, "hip", None)
        else "CUDA none (a CPU build)"
    )
    return f"torch.cuda.is_available() is False; torch {torch.__version__} built with {built}"


def refuse_cpu_if_gpu_requested() -> None:
    """Raise when a GPU was asked for: called where CUDA is unusable, before choosing the CPU."""
    asked = gpu_request()
    if not asked:
        return
    if torch.version.cuda or getattr(torch.version, "hip", None):
        fix = f"check the node's driver (nvidia-smi) and that {VISIBLE} names real devices"
    else:
        fix = "install a torch build with CUDA (https://pytorch.org/get-started/locally/)"
    raise MtdnnError(
        f"a GPU was asked for ({', '.join(asked)}) but {torch_sees()}: {fix}, "
        f"or set {REQUIRE}=0 to run on the CPU"
    )
