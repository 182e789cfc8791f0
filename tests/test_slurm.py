"""The smoke profile built on a real one-node SLURM through workflow/profiles/slurm.

tests/cluster/slurm_e2e.sh installs SLURM (slurm-wlm, slurmdbd, munge, MariaDB for accounting) when
missing, starts its own cluster on 127.0.0.1, builds both tables through the SLURM plugin with only a
partition override, cancels one running training job, and checks the rerun, the byte-identity with a
local build, and sacct's record of every job's cpus and memory. It needs root and apt; elsewhere it
is skipped, except in CI (CI=true), where a missing prerequisite fails the test instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO, ci_report

SCRIPT = REPO / "tests" / "cluster" / "slurm_e2e.sh"


def _prerequisite_missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root (it installs packages and runs the SLURM daemons)"
    if shutil.which("apt-get") is None and shutil.which("slurmctld") is None:
        return "needs apt-get to install SLURM"
    return None


@pytest.mark.slow
def test_smoke_build_on_a_real_slurm(glue_dir):
    missing = _prerequisite_missing()
    if missing and os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"the real-SLURM test cannot run in CI: it {missing}")
    if missing:
        pytest.skip(missing)
    env = os.environ | {"GLUE_DIR": str(glue_dir), "PYTHON": sys.executable}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    run = subprocess.run(
        ["bash", str(SCRIPT)], cwd=REPO, env=env, text=True, capture_output=True, timeout=3600
    )
    ci_report("test_slurm: the sacct listing and the timings", run.stdout)
    assert run.returncode == 0, (run.stdout + run.stderr)[-6000:]
    for name in ("metrics.json", "glue.csv", "domain_adaptation.csv"):
        assert f"byte-identical to the local build: results/{name}" in run.stdout
    assert (
        "ran under SLURM in partition ci with the cpus and memory its rule asked for" in run.stdout
    )
    assert "rerun: nothing to be done; dry run: nothing owed" in run.stdout
