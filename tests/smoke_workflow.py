"""A bare Snakemake project (the workflow and the smoke profile) for tests that drive Snakemake itself."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from helpers import REPO

SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def smoke_workflow(dest: Path) -> Path:
    """Copy workflow/ and the smoke profile (as params.yaml) into ``dest``."""
    shutil.copytree(REPO / "workflow", dest / "workflow")
    shutil.copy(REPO / "mtdnn/profiles/smoke.yaml", dest / "params.yaml")
    return dest


def assert_nothing_owed(cwd: Path, env: dict, target: str = "data") -> None:
    dry = subprocess.run(
        [*SNAKEMAKE, "-n", target], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert "Nothing to be done" in dry.stdout + dry.stderr, (dry.stdout + dry.stderr)[-3000:]
