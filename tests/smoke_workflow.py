"""A bare Snakemake project (the workflow and the smoke profile) for tests that drive Snakemake itself."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from helpers import REPO

SNAKEMAKE = [sys.executable, "-m", "snakemake"]

# What a clean checkout holds: everything but VCS data, environments, caches and pipeline outputs.
_SKIP_TOP = {".git", ".venv", ".snakemake", ".pytest_cache", ".ruff_cache", "build", "logs"}
_SKIP_TOP |= {"data", "models", "results"}
_SKIP_DVC = {"cache", "tmp", "config.local"}


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


def clean_checkout(dest: Path) -> Path:
    """Copy the repository into ``dest`` as a fresh checkout holds it (dvc.yaml, mtdnn/, workflow/
    and the rest), for tests that drive DVC's stages, whose dependencies are those directories."""

    def ignore(folder: str, names: list[str]) -> set[str]:
        here = Path(folder)
        skip = {n for n in names if n == "__pycache__" or n.endswith((".egg-info", ".resume"))}
        if here == REPO:
            skip |= _SKIP_TOP & set(names)
        if here == REPO / ".dvc":
            skip |= _SKIP_DVC & set(names)
        return skip

    shutil.copytree(REPO, dest, ignore=ignore)
    return dest
