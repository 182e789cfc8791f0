"""Training curves as plain CSV data series, the format `dvc plots` reads.

Each trained model directory gets ``train_loss.csv`` (one row per batch) and ``dev_metrics.csv``
(one row per evaluated epoch). Model directories are named by knob hashes, and `dvc.yaml` can
declare directories but not globs, so `mtdnn training-curves` copies them under stable names
(``<model>-<task>-seed<S>.csv``) into one directory that `dvc plots diff` compares across
experiments file by file.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mtdnn.errors import MtdnnError
from mtdnn.fileio import atomic_dir

LOSS_FILE = "train_loss.csv"
DEV_FILE = "dev_metrics.csv"


def loss_frame(losses: list[float]) -> pd.DataFrame:
    """step (1-based batch count), loss of that batch."""
    return pd.DataFrame({"step": range(1, len(losses) + 1), "loss": losses})


def epoch_row(entry: dict) -> dict:
    """One history entry flattened: epoch, batches, ``<task>/<split>/<metric>`` for dev, and
    ``holdout/<task>/<split>/<metric>`` plus ``selection_score`` for the held-out training rows."""
    row = {"epoch": entry["epoch"], "batches": entry["batches"]}
    for section, prefix in (("dev", ""), ("holdout", "holdout/")):
        for key, metrics in entry.get(section, {}).items():
            row |= {f"{prefix}{key}/{m}": v for m, v in metrics.items()}
    if "score" in entry:
        row["selection_score"] = entry["score"]
    return row


def write_training_plots(model_dir: Path, losses: list[float], history: list[dict]) -> None:
    """Both files into ``model_dir`` (the caller's temporary directory: written with the model)."""
    loss_frame(losses).to_csv(model_dir / LOSS_FILE, index=False)
    rows = [epoch_row(e) for e in history]
    frame = pd.DataFrame(rows) if rows else pd.DataFrame(columns=["epoch", "batches"])
    frame.to_csv(model_dir / DEV_FILE, index=False)


def dev_series(frame: pd.DataFrame, primary: dict[str, str]) -> dict[str, pd.DataFrame]:
    """``{"<task>-<split>": epoch, batches, primary, <metric>...}`` per dev split of a
    dev_metrics frame; ``primary`` (the task's primary metric) gives every file one common field
    for `dvc plots`, whatever the task's metrics."""
    series: dict[tuple[str, str], list[str]] = {}
    for col in frame.columns:
        parts = col.split("/")
        if len(parts) == 3:  # <task>/<split>/<metric>; holdout columns have four parts
            series.setdefault((parts[0], parts[1]), []).append(col)
    out = {}
    for (task, split), cols in series.items():
        values = frame[["epoch", "batches", *cols]].rename(columns=lambda c: c.split("/")[-1])
        values.insert(2, "primary", values[primary[task]])
        out[f"{task}-{split}"] = values
    return out


def collect(models: dict[str, Path], primary: dict[str, str], out: Path) -> list[Path]:
    """For each ``{name: model directory}``: ``out/train_loss/<name>.csv`` and, per dev split,
    ``out/dev/<name>/<task>-<split>.csv``. ``primary``: each task's primary metric. The whole
    directory is replaced at once."""
    written = []
    with atomic_dir(out) as tmp:
        (tmp / "train_loss").mkdir()
        for name, model_dir in sorted(models.items()):
            _read(model_dir, LOSS_FILE).to_csv(tmp / "train_loss" / f"{name}.csv", index=False)
            written.append(out / "train_loss" / f"{name}.csv")
            for split, frame in dev_series(_read(model_dir, DEV_FILE), primary).items():
                (tmp / "dev" / name).mkdir(parents=True, exist_ok=True)
                frame.to_csv(tmp / "dev" / name / f"{split}.csv", index=False)
                written.append(out / "dev" / name / f"{split}.csv")
    return written


def _read(model_dir: Path, name: str) -> pd.DataFrame:
    path = Path(model_dir) / name
    if not path.is_file():
        raise MtdnnError(f"{path}: not found (a model trained before training curves were kept?)")
    return pd.read_csv(path)
