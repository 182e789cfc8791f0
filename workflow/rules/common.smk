# Shared helpers: the grid comes from the mtdnn package, so the DAG is defined in one place.
import os
import shlex
import sys
from pathlib import Path

from mtdnn import paths
from mtdnn.cellpreds import predictions_path
from mtdnn.config import BASELINES, load_params
from mtdnn.errors import MtdnnError
from mtdnn.grid import Grid
from mtdnn.rulespecs import rule_spec

# Re-read with mtdnn's loader: it validates, and it reads DVC's "5e-05" as the float it is (YAML 1.1,
# which Snakemake's reader follows, would make it a string). Every task the profile names is
# resolved now: bad params or a task without data stop the workflow in seconds, with one line.
try:
    config.update(load_params("params.yaml"))
    GRID = Grid(config)
    GRID.check()
except MtdnnError as e:
    print(f"mtdnn: error: {e}", file=sys.stderr)
    sys.exit(2)

# --cores is a local setting: a cluster run (the SLURM executor) has none, and reading
# workflow.cores there stops the workflow ("requires a total number of cores to be defined").
_cores = workflow.resource_settings.cores
if _cores and _cores > len(os.sched_getaffinity(0)):
    logger.warning(
        f"--cores {_cores} exceeds the {len(os.sched_getaffinity(0))} CPUs here; "
        "parallel training jobs will oversubscribe them (use --cores all)"
    )


wildcard_constraints:
    task=r"[a-z0-9][a-z0-9_-]*",
    seed=r"\d+",
    init="|".join(("mtdnn", *BASELINES)),
    enc=r"[a-z0-9][a-z0-9._-]*",
    key=rf"[0-9a-f]{{{paths.KEY_LEN}}}",


def tokenized(task, enc=GRID.enc):
    """A task tokenized for an encoder (its path component; GLUE's encoder by default)."""
    return str(paths.tokenized_path(enc, GRID.max_len, task))


def glue_models():
    """Every model behind the GLUE table, whose DVCLive curves the table's job copies under stable
    names. Model paths carry knob hashes; the names (from the layout) do not, so `dvc plots diff`
    pairs the same model across experiments.
    """
    models = []
    for seed in GRID.seeds:
        models.append(GRID.mtl_model(seed))
        for init in GRID.finetune_inits:
            for task in GRID.model_tasks(init):
                key = GRID.finetune_key(task, init)
                models.append(paths.finetune_dir(init, GRID.enc, task, key, seed))
    return models


# Job resources ---------------------------------------------------------------------------------
# Host memory (MB) and time limit (minutes) of one training job, by encoder size. The memory holds
# the process (~0.6 GB), five fp32 copies of the weights (weights, gradients, two AdamW moments,
# and the copy safetensors makes when a checkpoint is written) and, on a CPU, one batch's
# activations. "small" is measured: 3.4 GB peak for the default profile's multi-task training on
# MiniLM (benchmarks/README.md). "base" and "large" scale it by parameters and layers x width, an
# estimate that covers a GPU run at max_len 512 and a CPU run at 128. A job killed at its time
# limit resumes from its checkpoint when Snakemake retries it. A profile overrides them for one
# stage with `set-resources` (e.g. finetune's mem_mb).
JOB_SIZES = {"small": (6000, 120), "base": (12000, 720), "large": (32000, 1440)}


def _job_size(enc):
    """An encoder alias's size class; an unknown encoder (a local directory) gets the largest."""
    if any(w in enc for w in ("mini", "small", "tiny")):
        return JOB_SIZES["small"]
    if "base" in enc and "large" not in enc:
        return JOB_SIZES["base"]
    return JOB_SIZES["large"]


def train_mem_mb(wildcards):
    return _job_size(wildcards.enc)[0]


def train_runtime(wildcards):
    return _job_size(wildcards.enc)[1]


def mtl_launcher():
    """What starts `mtdnn` for multi-task training: `--config mtl_launcher=...` where given (the
    README's multi-node recipe: srun torchrun over the allocation's nodes), else torchrun with one
    process per GPU when mtl.nproc > 1, else mtdnn itself. A resource, not a param: how a job is
    started does not change what it computes, so a model trained under one launcher is not
    retrained under another.
    """
    if config.get("mtl_launcher"):
        return config["mtl_launcher"]
    nproc = config["mtl"].get("nproc", 1)
    if nproc > 1:
        return f"torchrun --standalone --nproc-per-node {nproc} -m mtdnn"
    return "mtdnn"


def _declared_gpus():
    """N from `--resources gpu=N`: this machine's GPUs (workflow/profiles/gpu), else None."""
    gpu = workflow.global_resources.get("gpu")
    return gpu.value if gpu is not None else None


# GPUs per training job. Where jobs run is an execution choice, not a study knob, so it is not in
# params.yaml (results are the same within noise): a run asks for none by default (the CPU study),
# one per job when it declares this machine's GPUs (`--resources gpu=N`) or when a cluster run
# says so (`--config gpus_per_job=1`). Multi-task training takes one per process (mtl.nproc).
GPUS_PER_JOB = config.get("gpus_per_job", 1 if _declared_gpus() else 0)
if not isinstance(GPUS_PER_JOB, int) or GPUS_PER_JOB < 0:
    print(
        f"mtdnn: error: --config gpus_per_job={GPUS_PER_JOB!r}: expected a whole number >= 0",
        file=sys.stderr,
    )
    sys.exit(2)


def gpus(stage):
    """GPUs one job of a training stage asks for, or None (no request at all) on CPUs. The SLURM
    plugin turns the `gpu` resource into `--gpus=N`; locally `--resources gpu=N` caps the sum.
    """
    n = GPUS_PER_JOB * (config["mtl"].get("nproc", 1) if stage == "mtl" else 1)
    return n or None


def gpu_shell(n):
    """The job shell that gives a job its own `n` devices on one machine with declared GPUs
    (workflow/scripts/gpu_slots.py, through Snakemake's per-job `shell_exec` resource). None, the
    usual shell, for CPU jobs and on a cluster, whose scheduler assigns devices itself.
    """
    slots = _declared_gpus()
    if not n or not slots or workflow.non_local_exec or workflow.remote_exec:
        return None
    # shell_exec takes a program, not a command line: a two-line wrapper carries the arguments.
    shim = Path(".snakemake", "mtdnn-gpu", f"shell-{n}of{slots}").resolve()
    script = Path(workflow.main_snakefile).parent / "scripts" / "gpu_slots.py"
    args = [sys.executable, script, "--gpus", n, "--slots", slots, "--lock-dir"]
    text = f'#!/bin/sh\nexec {shlex.join(map(str, [*args, shim.parent]))} "$@"\n'
    if not shim.exists() or shim.read_text() != text:
        shim.parent.mkdir(parents=True, exist_ok=True)
        tmp = shim.with_name(f".{shim.name}.{os.getpid()}")
        tmp.write_text(text)
        tmp.chmod(0o755)
        os.replace(tmp, shim)
    return str(shim)
