# Shared helpers: the grid comes from the mtdnn package, so the DAG is defined in one place.
import os
import sys

from mtdnn import paths
from mtdnn.config import load_params
from mtdnn.errors import MtdnnError
from mtdnn.grid import Grid

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

if workflow.cores and workflow.cores > len(os.sched_getaffinity(0)):
    logger.warning(
        f"--cores {workflow.cores} exceeds the {len(os.sched_getaffinity(0))} CPUs here; "
        "parallel training jobs will oversubscribe them (use --cores all)"
    )


wildcard_constraints:
    task=r"[a-z0-9][a-z0-9_-]*",
    seed=r"\d+",
    init="mtdnn|base",
    enc=r"[a-z0-9][a-z0-9._-]*",
    key=rf"[0-9a-f]{{{paths.KEY_LEN}}}",


def tokenized(task, enc=GRID.enc):
    """A task tokenized for an encoder (its path component; GLUE's encoder by default)."""
    return f"data/tokenized/{enc}-L{GRID.max_len}/{task}"


def glue_models():
    """{stable name: directory} of every model behind the GLUE table. Model paths carry knob
    hashes; the names do not, so `dvc plots diff` pairs the same model across experiments.
    """
    models = {}
    for seed in GRID.seeds:
        models[f"mtl-seed{seed}"] = GRID.mtl_model(seed)
        for init in ("mtdnn", "base"):
            for task in GRID.finetune_tasks:
                key = GRID.finetune_key(task, init)
                models[f"{init}-{task}-seed{seed}"] = paths.finetune_dir(
                    init, GRID.enc, task, key, seed
                )
    return models
