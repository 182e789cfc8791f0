"""What every table cell records about how it was made."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

import torch

from mtdnn import paths
from mtdnn.fileio import read_json, sha256_json


def git_revision(cwd: Path | None = None) -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    if rev.returncode != 0:
        return "unknown"
    return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def data_checksums(model_config: dict, canonical_root: Path = paths.DATA / "canonical") -> dict:
    """sha256 of the canonical files the model was trained on, and of the raw files behind them."""
    raw = {}
    for task in model_config.get("data", {}):
        manifest = canonical_root / task / "manifest.json"
        if manifest.is_file():
            raw |= read_json(manifest).get("files", {})
    return {"canonical": model_config.get("data", {}), "raw": raw}


def provenance(model_config: dict, seed: int, wall_seconds: float) -> dict:
    train_cfg = model_config.get("train_config", {})
    return {
        "params_hash": sha256_json(train_cfg),
        "train_config": train_cfg,
        "encoder": model_config.get("encoder"),
        "init": model_config.get("init"),
        "seed": seed,
        "git_revision": git_revision(),
        "data_sha256": data_checksums(model_config),
        "wall_seconds": round(wall_seconds, 2),
        "torch": torch.__version__,
        "host": f"{platform.machine()} {platform.processor() or ''} x{torch.get_num_threads()} threads".strip(),
    }
