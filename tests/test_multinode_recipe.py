"""The README's multi-node batch script ("Running on a cluster", "Multi-node"), run as written on this
CPU: stand-ins for `srun` (one task, this node) and `scontrol` (this host), one node with one
process. It must train the multi-task model through torchrun and write everything `train_mtl`
declares, so that the next ordinary `snakemake` run owes no multi-task training and retrains
nothing.

The project is the smoke profile cut to one task (RTE) and a few examples, so the whole check costs
one prepare, one tokenize and a 2-step training with one dev evaluation.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import yaml
from helpers import REPO, free_port, job_stats, subprocess_env
from smoke_workflow import SNAKEMAKE, smoke_workflow

TARGETS = ["results/glue.csv", "results/domain_adaptation.csv"]


def batch_script() -> str:
    """The README's multi-node batch script: the bash block of the "Multi-node" section."""
    section = (REPO / "README.md").read_text().split("\n### Multi-node\n", 1)[1]
    section = section.split("\n### ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    scripts = [b for b in blocks if b.startswith("#!/bin/bash\n#SBATCH")]
    assert len(scripts) == 1, blocks
    return scripts[0]


def fake_slurm(bin_dir: Path) -> Path:
    """`srun` that records its command and runs it once, here; `scontrol` that names this host."""
    bin_dir.mkdir()
    calls = bin_dir / "srun.calls"
    (bin_dir / "srun").write_text(f'#!/bin/sh\necho "$*" >> {calls}\nexec "$@"\n')
    (bin_dir / "scontrol").write_text("#!/bin/sh\necho 127.0.0.1\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    return calls


def tiny_project(dest: Path) -> Path:
    """The smoke project with one multi-task (and fine-tuning) task and a 2-step training."""
    smoke_workflow(dest)
    params = yaml.safe_load((dest / "params.yaml").read_text())
    params["mtl"] |= {"tasks": ["rte"], "max_train_examples": 32, "max_eval_examples": 32}
    params["finetune"]["tasks"] = ["rte"]
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return dest


def snapshot(paths: list[Path]) -> dict[str, tuple[str, int]]:
    """Every file under ``paths``: its content hash and modification time."""
    files = [f for p in paths for f in ([p] if p.is_file() else sorted(p.rglob("*")))]
    return {
        str(f): (hashlib.sha256(f.read_bytes()).hexdigest(), f.stat().st_mtime_ns)
        for f in files
        if f.is_file()
    }


def test_multinode_batch_script_trains_what_train_mtl_declares(tmp_path, glue_dir):
    cwd = tiny_project(tmp_path / "project")
    calls = fake_slurm(tmp_path / "bin")
    script = batch_script()
    assert ":29500" in script  # the rendezvous port; a free one here, so parallel runs cannot clash
    (tmp_path / "job.sh").write_text(script.replace(":29500", f":{free_port()}"))
    slurm = {"SLURM_JOB_NODELIST": "node1", "SLURM_NNODES": 1, "SLURM_GPUS_ON_NODE": 1,
             "SLURM_JOB_ID": 42, "SLURM_CPUS_PER_TASK": 1}  # fmt: skip
    base = {"GLUE_DIR": glue_dir, "OMP_NUM_THREADS": 1, "SNAKEMAKE_PROFILE": None}
    # SLURM_GPUS_ON_NODE says a GPU was allocated; this machine has none, and its CPU is wanted.
    env = subprocess_env(base | slurm | {"MTDNN_REQUIRE_GPU": 0})
    env["PATH"] = f"{tmp_path / 'bin'}:{env['PATH']}"
    run = subprocess.run(["bash", str(tmp_path / "job.sh")], cwd=cwd, env=env, text=True,
                         capture_output=True, timeout=900)  # fmt: skip
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    assert job_stats(run.stdout + run.stderr)["train_mtl"] == 1, run.stderr[-3000:]

    # Trained through srun and torchrun (one node, one process), by the rule's own command.
    assert calls.exists(), "srun was never called: the job ran without the script's launcher"
    (launched,) = calls.read_text().splitlines()
    assert launched.startswith("torchrun --nnodes 1 --nproc-per-node 1 "), launched
    assert " --rdzv-backend c10d " in launched and " -m mtdnn run --spec " in launched
    assert '"stage":"mtl"' in launched and '"tasks":["rte"]' in launched, launched
    assert '"cells":{"rte":"results/cells/glue/mtl/' in launched, launched
    models = list((cwd / "models" / "mtl").glob("*/*/seed1"))
    cells = list((cwd / "results" / "cells" / "glue" / "mtl").rglob("seed1.json"))
    assert len(models) == 1 and len(cells) == 1, (models, cells)
    before = snapshot([*models, *cells])
    assert any(name.endswith("model.safetensors") for name in before), before

    # The next ordinary runs (no launcher, no SLURM variables): the plan of the whole study through
    # the GPU SLURM profile owes no multi-task training, and running up to it trains nothing.
    plain = subprocess_env({"GLUE_DIR": glue_dir, "SNAKEMAKE_PROFILE": None})
    dry = subprocess.run(
        [*SNAKEMAKE, "-n", *TARGETS, "--profile", "workflow/profiles/slurm-gpu"],
        cwd=cwd, env=plain, text=True, capture_output=True,
    )  # fmt: skip
    assert dry.returncode == 0, (dry.stdout + dry.stderr)[-3000:]
    owed = job_stats(dry.stdout + dry.stderr)
    assert "train_mtl" not in owed and owed.get("finetune") == 3, owed  # mtdnn, base, equal
    again = subprocess.run(
        [*SNAKEMAKE, *TARGETS, "--until", "train_mtl", "--cores", "1"],
        cwd=cwd, env=plain, text=True, capture_output=True,
    )  # fmt: skip
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    assert job_stats(again.stdout + again.stderr) == {}, again.stderr[-3000:]  # no job at all
    assert snapshot([*models, *cells]) == before
