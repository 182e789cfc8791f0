# Shared helpers: the grid comes from the mtdnn package, so the DAG is defined in one place.
import os

from mtdnn.config import load_params
from mtdnn.grid import Grid

# Re-read with mtdnn's loader: it validates, and it reads DVC's "5e-05" as the float it is (YAML 1.1,
# which Snakemake's reader follows, would make it a string).
config.update(load_params("params.yaml"))
GRID = Grid(config)
ENC = GRID.encoder
TOK = f"data/tokenized/{ENC}-L{GRID.max_len}"

if workflow.cores and workflow.cores > len(os.sched_getaffinity(0)):
    logger.warning(
        f"--cores {workflow.cores} exceeds the {len(os.sched_getaffinity(0))} CPUs here; "
        "parallel training jobs will oversubscribe them (use --cores all)"
    )


wildcard_constraints:
    task=r"[a-z0-9][a-z0-9_-]*",
    seed=r"\d+",
    init="mtdnn|base",
    model="mtdnn|base|mtl",
    enc=r"[a-z0-9][a-z0-9._-]*",


def tokenized(task):
    return f"{TOK}/{task}"


def finetuned(init, task, seed):
    return f"models/finetune/{init}/{ENC}/{task}/seed{seed}"


def cell_model(wc):
    """The model a GLUE cell evaluates: the MT-DNN model itself ("mtl") or a fine-tuned one."""
    if wc.model == "mtl":
        return GRID.mtl_model(wc.seed)
    return finetuned(wc.model, wc.task, wc.seed)
