"""The execution profiles (workflow/profiles/): what each job asks a SLURM cluster for on a CPU
partition and with GPUs (only the training jobs on the GPU partition), that a cluster run needs no
--cores, that on one machine with GPUs no more training jobs run than there are GPUs, each on its
own device, and that `dvc repro` takes the same profile from SNAKEMAKE_PROFILE.

Every check reads the plan Snakemake resolved in a dry run of the profile (tests/snakemake_plan.py).
The sbatch lines are built by the SLURM plugin's own code from those plans, and the GPU cap is
checked with Snakemake's own job selectors. tests/test_slurm.py runs the profile on a real SLURM.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from smoke_workflow import REPO, SNAKEMAKE, smoke_workflow
from snakemake_plan import PlannedJob, parse_plan

TARGETS = ["results/glue.csv", "results/domain_adaptation.csv"]
TRAINING = {"train_mtl", "finetune", "adapt"}
GPU_SLOTS = REPO / "workflow" / "scripts" / "gpu_slots.py"


def project(tmp_path: Path, **knobs: object) -> Path:
    """The smoke project, with `section.key=value` knobs changed (e.g. mtl__threads=2)."""
    smoke_workflow(tmp_path)
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    for name, value in knobs.items():
        *sections, key = name.split("__")
        node = params
        for section in sections:
            node = node[section]
        node[key] = value
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return tmp_path


def env(glue_dir: Path, path_prefix: Path | None = None) -> dict[str, str]:
    full = os.environ | {"GLUE_DIR": str(glue_dir)}
    # A profile exported in the developer's shell (as the README does for dvc repro) would apply
    # to every run here; the tests that want one set it themselves.
    full.pop("SNAKEMAKE_PROFILE", None)
    full["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), full.get("PYTHONPATH")]))
    bins = [str(p) for p in (path_prefix, Path(sys.executable).parent) if p]
    full["PATH"] = os.pathsep.join([*bins, full.get("PATH", "")])
    return full


def dry_run(cwd: Path, glue_dir: Path, *args: str) -> list[PlannedJob]:
    run = subprocess.run(
        [*SNAKEMAKE, "-n", *TARGETS, *args], cwd=cwd, env=env(glue_dir), text=True,
        capture_output=True,
    )  # fmt: skip
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    jobs = parse_plan(run.stdout + run.stderr)
    assert {j.rule for j in jobs} >= TRAINING | {"prepare", "tokenize", "glue_table"}
    return jobs


class _Resources(dict):
    """A job's resources as the SLURM plugin reads them: `.get(name)` and `.name`."""

    def __getattr__(self, name: str) -> object:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def sbatch_line(job: PlannedJob) -> str:
    """The sbatch command line snakemake-executor-plugin-slurm builds for a planned job."""
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string
    from snakemake_executor_plugin_slurm.validation import validate_slurm_extra

    fake = SimpleNamespace(resources=_Resources(job.resources), threads=job.threads)
    validate_slurm_extra(fake)  # a forbidden option (--gres, --gpus, ...) would raise here
    partition = job.resources.get("slurm_partition")
    params = {
        "run_uuid": "u", "slurm_logfile": "log", "comment_str": f"rule_{job.rule}", "account": "",
        "partition": f" -p {partition}" if partition else "", "workdir": "/w",
    }  # fmt: skip
    return get_submit_command(fake, params) + set_gres_string(fake)


# --- SLURM ----------------------------------------------------------------------------------------
# A dry run caps threads at --cores (1 when not given); a cluster run has no --cores and no cap.
SLURM = ("--profile", "workflow/profiles/slurm", "--cores", "64")
SIZES = {"train": (6000, 120), "prepare": (4000, 60), "tokenize": (4000, 60)}
SIZES |= {"glue_table": (2000, 30), "adapt_table": (2000, 30)}


def test_slurm_profile_on_a_cpu_partition_asks_for_no_gpu(tmp_path, glue_dir):
    """The CPU study on a CPU partition: cpus = the stage's threads, memory and time by rule and
    encoder (MiniLM: small), the partition given on the command line, and no GPU anywhere."""
    cwd = project(tmp_path, mtl__threads=2)
    jobs = dry_run(cwd, glue_dir, *SLURM, "--default-resources", "slurm_partition=cpu")
    for job in jobs:
        line = sbatch_line(job)
        mem, runtime = SIZES["train" if job.rule in TRAINING else job.rule]
        assert (job.resources["mem_mb"], job.resources["runtime"]) == (mem, runtime), job
        assert " -p cpu " in line and f"--mem {mem} " in line and f"-t {runtime} " in line, line
        assert f"--cpus-per-task={job.threads}" in line and "--ntasks=1" in line, line
        assert "gpu" not in job.resources and "shell_exec" not in job.resources, job
        assert "--gpus" not in line and "--gres" not in line, line
        assert ("--nodes=1" in line) == (job.rule == "train_mtl"), line
    assert {j.threads for j in jobs if j.rule == "train_mtl"} == {2}


SLURM_GPU = REPO / "workflow" / "profiles" / "slurm-gpu"


def customised_profile(dest: Path) -> Path:
    """A copy of the GPU profile with one more request (the README's way to change requests)."""
    config = yaml.safe_load((SLURM_GPU / "config.yaml").read_text())
    config["set-resources"]["finetune"]["runtime"] = 2880
    dest.mkdir()
    (dest / "config.yaml").write_text(yaml.safe_dump(config))
    return dest


@pytest.mark.parametrize("cpu_partition", [None, "cpu"])
def test_slurm_gpu_profile_sends_only_training_to_the_gpu_partition(
    tmp_path, glue_dir, cpu_partition
):
    """bert-large through workflow/profiles/slurm-gpu: every training job goes to the `gpu`
    partition with --gpus (multi-task training one per DDP process, on one node), memory and time
    for a large encoder and cpus = threads; prepare, tokenize and the tables go to the cluster's
    default partition, or the one --default-resources names, with no GPU. With the partition
    named, the profile is a copy with finetune's time limit raised: the routing stays."""
    threads = {f"{stage}__threads": 8 for stage in ("mtl", "finetune", "adapt")}
    cwd = project(tmp_path / "p", encoder="bert-large", mtl__nproc=2, **threads)
    if cpu_partition:
        profile = customised_profile(tmp_path / "profile")
        args = ("--default-resources", f"slurm_partition={cpu_partition}")
    else:
        profile, args = SLURM_GPU, ()
    jobs = dry_run(cwd, glue_dir, "--profile", str(profile), "--cores", "64", *args)
    for job in jobs:
        line = sbatch_line(job)
        assert "--gres" not in line and "shell_exec" not in job.resources, line
        assert ("--nodes=1" in line) == (job.rule == "train_mtl"), line
        if job.rule in TRAINING:
            n = 2 if job.rule == "train_mtl" else 1
            limit = 2880 if job.rule == "finetune" and cpu_partition else 1440
            assert " -p gpu " in line, line
            assert job.resources["gpu"] == n and line.endswith(f" --gpus={n}"), line
            assert "--mem 32000 " in line and f"-t {limit} " in line, line
            assert "--cpus-per-task=8" in line, line
        else:  # the default partition, or the one named
            partition = f" -p {cpu_partition} " if cpu_partition else None
            assert (partition in line) if partition else (" -p " not in line), line
            assert "gpu" not in job.resources and "--gpus" not in line, line
            assert "--cpus-per-task=1" in line, line


def fake_slurm(bin_dir: Path) -> Path:
    """sbatch that records its arguments and refuses; sacct/squeue/sinfo/scontrol that fail."""
    bin_dir.mkdir()
    calls = bin_dir / "sbatch.calls"
    (bin_dir / "sbatch").write_text(f'#!/bin/sh\necho "$*" >> {calls}\nexit 1\n')
    for tool in ("sacct", "sacctmgr", "squeue", "sinfo", "scontrol", "sshare"):
        (bin_dir / tool).write_text("#!/bin/sh\nexit 1\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    return calls


def test_slurm_profile_submits_without_cores(tmp_path, glue_dir):
    """`snakemake --profile workflow/profiles/slurm` as documented (no --cores) reaches sbatch:
    reading workflow.cores stopped it before ("requires a total number of cores")."""
    cwd = project(tmp_path / "project")
    calls = fake_slurm(tmp_path / "bin")
    run = subprocess.run(
        [*SNAKEMAKE, "results/glue.csv", "--profile", "workflow/profiles/slurm",
         "--default-resources", "slurm_partition=cpu"],
        cwd=cwd, env=env(glue_dir, tmp_path / "bin"), text=True, capture_output=True, timeout=600,
    )  # fmt: skip
    out = run.stdout + run.stderr
    assert run.returncode != 0 and "SLURM sbatch failed" in out, out[-3000:]
    assert "total number of cores" not in out
    first = calls.read_text().splitlines()[0]
    assert "-p cpu" in first and "--mem 4000" in first and "--cpus-per-task=1" in first, first


def test_bad_gpus_per_job_is_one_line(tmp_path, glue_dir):
    cwd = project(tmp_path)
    run = subprocess.run(
        [*SNAKEMAKE, "-n", "--cores", "1", "--config", "gpus_per_job=two"],
        cwd=cwd, env=env(glue_dir), text=True, capture_output=True,
    )  # fmt: skip
    assert run.returncode == 2, run.stderr[-2000:]
    assert "mtdnn: error: --config gpus_per_job='two': expected a whole number >= 0" in run.stderr


# --- one machine with GPUs -------------------------------------------------------------------------
@dataclass(eq=False)
class _Job:
    """What Snakemake's job selectors read of a job (a local job's scheduler resources are all of
    its resources, with _cores = threads, _nodes = 1 and _job_count = 1)."""

    rule: str
    scheduler_resources: dict
    priority: int = 0
    input: list = field(default_factory=list)


def select(offered: list[_Job], available: dict) -> dict[str, list[str]]:
    """The jobs Snakemake's default selector (ILP) and its fallback (greedy) start first, by rule;
    where the ILP gives no answer Snakemake uses the greedy one, and so does this."""
    from snakemake_interface_scheduler_plugins.registry import SchedulerPluginRegistry

    registry, log = SchedulerPluginRegistry(), logging.getLogger("selector")
    chosen = {}
    for name in ("greedy", "ilp"):
        plugin = registry.get_plugin(name)
        selector = plugin.scheduler(None, plugin.settings_cls(), log)
        jobs = selector.select_jobs(offered, offered, dict(available), {})
        chosen[name] = [j.rule for j in (jobs if jobs is not None else chosen["greedy"])]
    return chosen


def test_gpu_profile_runs_at_most_two_training_jobs_at_once(tmp_path, glue_dir, monkeypatch):
    """`snakemake -n --profile workflow/profiles/gpu --resources gpu=2` on an 8-core machine: each
    training job asks for one GPU and runs in the device-slot shell. Snakemake's job selectors,
    offered the plan's jobs with this run's resources, never start more than two training jobs,
    and start CPU-only stages while two are running."""
    from snakemake.cli import parse_args

    cwd = project(tmp_path)
    args = ["--profile", "workflow/profiles/gpu", "--resources", "gpu=2", "--cores", "8"]
    jobs = dry_run(cwd, glue_dir, *args)
    for job in jobs:
        if job.rule in TRAINING:
            assert job.resources["gpu"] == 1, job
            assert job.resources["shell_exec"] == str(cwd / ".snakemake/mtdnn-gpu/shell-1of2")
        else:
            assert "gpu" not in job.resources and "shell_exec" not in job.resources, job
    shim = (cwd / ".snakemake/mtdnn-gpu/shell-1of2").read_text()
    script = cwd / "workflow/scripts/gpu_slots.py"
    assert f"{script} --gpus 1 --slots 2 --lock-dir {cwd}/.snakemake/mtdnn-gpu" in shim, shim

    monkeypatch.chdir(cwd)  # the profile as Snakemake's command line resolves it
    _, cli = parse_args(["-n", *args])
    available = {name: res.value for name, res in cli.resources.items()}
    available |= {"_cores": cli.cores, "_nodes": sys.maxsize, "_job_count": sys.maxsize}
    assert available["gpu"] == 2 and available["_cores"] == 8
    offered = [
        _Job(j.rule, {**j.resources, "_cores": j.threads, "_nodes": 1, "_job_count": 1}, j.priority)
        for j in jobs
    ]
    training = [j for j in offered if j.rule in TRAINING]
    assert len(training) > 2
    # Every training job ready at once (the worst case): two start, the others wait for a GPU.
    for name, rules in select(training, available).items():
        assert len(rules) == 2, (name, rules)
    # Anything ready at once: never more than two training jobs.
    for name, rules in select(offered, available).items():
        assert sum(r in TRAINING for r in rules) <= 2, (name, rules)
    # Two training jobs running (both GPUs and two cores taken): CPU-only stages still start.
    busy = available | {"gpu": 0, "_cores": available["_cores"] - 2}
    for name, rules in select(offered, busy).items():
        assert rules and not any(r in TRAINING for r in rules), (name, rules)


# --- dvc repro ------------------------------------------------------------------------------------
def dvc_stage_commands() -> dict[str, list[str]]:
    """Each dvc.yaml stage's command, as DVC runs it (in the project root)."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    return {name: shlex.split(stage["cmd"]) for name, stage in stages.items()}


def stage_plan(cwd: Path, glue_dir: Path, cmd: list[str], extra: dict) -> list[PlannedJob]:
    """The plan of a stage's command run as a dry run, with ``extra`` in its environment."""
    run = subprocess.run(
        [*cmd, "-n"], cwd=cwd, env=env(glue_dir) | extra, text=True, capture_output=True
    )
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    return parse_plan(run.stdout + run.stderr)


def test_dvc_stages_take_the_gpu_profile_from_snakemake_profile(tmp_path, glue_dir):
    """`SNAKEMAKE_PROFILE=workflow/profiles/gpu MTDNN_GPUS=2 dvc repro` (README): dvc.yaml's
    commands name no profile, but Snakemake reads SNAKEMAKE_PROFILE, and that profile reads the GPU
    count from MTDNN_GPUS. Each training stage's command, as a dry run: every training job asks
    for one GPU and runs in the two-slot device shell. Without the variables the same command asks
    for none, so on a GPU machine every training job would land on GPU 0."""
    cwd = project(tmp_path)
    commands = dvc_stage_commands()
    assert commands and all(cmd[0] == "snakemake" for cmd in commands.values()), commands
    shim = str(cwd / ".snakemake/mtdnn-gpu/shell-1of2")
    gpus = {"SNAKEMAKE_PROFILE": "workflow/profiles/gpu", "MTDNN_GPUS": "2"}
    for stage, rules in (("glue", {"train_mtl", "finetune"}), ("adapt", {"train_mtl", "adapt"})):
        jobs = stage_plan(cwd, glue_dir, commands[stage], gpus)
        assert {j.rule for j in jobs} & TRAINING == rules, (stage, jobs)
        for job in jobs:
            if job.rule in TRAINING:
                assert job.resources["gpu"] == 1 and job.resources["shell_exec"] == shim, job
            else:
                assert "gpu" not in job.resources and "shell_exec" not in job.resources, job
    for job in stage_plan(cwd, glue_dir, commands["glue"], {}):
        assert "gpu" not in job.resources and "shell_exec" not in job.resources, job


# --- the device-slot shell (workflow/scripts/gpu_slots.py) ----------------------------------------
def slot_job(lock_dir: Path, command: str, gpus: int = 1, slots: int = 2, **environ: str):
    base = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    return subprocess.Popen(
        [sys.executable, GPU_SLOTS, "--gpus", str(gpus), "--slots", str(slots),
         "--lock-dir", str(lock_dir), "-c", command],
        env=base | environ, text=True, stderr=subprocess.PIPE,
    )  # fmt: skip


def wait_for(path: Path, proc: subprocess.Popen, limit: float = 60) -> str:
    """The file a job writes once it holds its devices (a barrier, not a timing check)."""
    deadline = time.monotonic() + limit
    while not path.exists():
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)
    time.sleep(0.05)  # the write is one short echo
    return path.read_text().strip()


def test_gpu_slots_give_concurrent_jobs_different_devices(tmp_path):
    locks = tmp_path / "locks"
    first = slot_job(locks, f"echo $CUDA_VISIBLE_DEVICES > {tmp_path}/a; "
                            f"while [ ! -e {tmp_path}/go ]; do sleep 0.05; done")  # fmt: skip
    held = wait_for(tmp_path / "a", first)
    second = slot_job(locks, f"echo $CUDA_VISIBLE_DEVICES > {tmp_path}/b")
    assert second.wait(timeout=60) == 0, second.stderr.read()
    assert {held, (tmp_path / "b").read_text().strip()} == {"0", "1"}
    (tmp_path / "go").touch()
    assert first.wait(timeout=60) == 0
    # Both released: the next job gets slot 0 again.
    third = slot_job(locks, f"echo $CUDA_VISIBLE_DEVICES > {tmp_path}/c")
    assert third.wait(timeout=60) == 0 and (tmp_path / "c").read_text().strip() == "0"


def test_gpu_slots_map_to_the_visible_devices_and_release_on_kill(tmp_path):
    """Slots index the parent's CUDA_VISIBLE_DEVICES; a SIGKILLed job's devices are free again."""
    locks = tmp_path / "locks"
    job = slot_job(locks, f"echo $CUDA_VISIBLE_DEVICES > {tmp_path}/a; sleep 600", gpus=2,
                   slots=2, CUDA_VISIBLE_DEVICES="5,7")  # fmt: skip
    assert wait_for(tmp_path / "a", job) == "5,7"
    job.kill()
    job.wait(timeout=60)
    after = slot_job(locks, f"echo $CUDA_VISIBLE_DEVICES > {tmp_path}/b", gpus=2,
                     CUDA_VISIBLE_DEVICES="5,7")  # fmt: skip
    assert after.wait(timeout=60) == 0 and (tmp_path / "b").read_text().strip() == "5,7"


def test_gpu_slots_claim_all_or_nothing_and_keep_the_exit_status(tmp_path):
    """A two-GPU job waits while one of two devices is taken, holding none of them meanwhile."""
    locks = tmp_path / "locks"
    one = slot_job(locks, f"echo $CUDA_VISIBLE_DEVICES > {tmp_path}/a; "
                          f"while [ ! -e {tmp_path}/go ]; do sleep 0.05; done")  # fmt: skip
    wait_for(tmp_path / "a", one)
    two = slot_job(locks, f"echo $CUDA_VISIBLE_DEVICES > {tmp_path}/b; exit 3", gpus=2)
    while "waiting for 2 free GPU(s) of 2" not in (line := two.stderr.readline()):
        assert line, "the two-GPU job did not wait"
    # It holds nothing while it waits: a one-GPU job still gets the free device.
    other = slot_job(locks, f"echo $CUDA_VISIBLE_DEVICES > {tmp_path}/c")
    assert other.wait(timeout=60) == 0 and (tmp_path / "c").read_text().strip() == "1"
    (tmp_path / "go").touch()
    assert one.wait(timeout=60) == 0
    assert two.wait(timeout=60) == 3  # the job's own exit status
    assert (tmp_path / "b").read_text().strip() == "0,1"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--gpus", "3", "--slots", "2"], "--gpus 3 must be between 1 and --slots 2"),
        (["--gpus", "1", "--slots", "2"], "lists 1 device(s)"),
    ],
)
def test_gpu_slots_bad_arguments(tmp_path, argv, message):
    run = subprocess.run(
        [sys.executable, GPU_SLOTS, *argv, "--lock-dir", str(tmp_path), "-c", "true"],
        env=os.environ | {"CUDA_VISIBLE_DEVICES": "3"}, text=True, capture_output=True,
    )  # fmt: skip
    assert run.returncode != 0 and message in run.stderr, run.stderr
