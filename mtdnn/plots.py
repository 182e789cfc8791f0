"""Training curves under stable names, for `dvc plots diff` across experiments.

Every trained model keeps the DVCLive directory its run logged (``<model>/dvclive``, see
mtdnn/training/tracking.py): the loss of each batch in ``plots/metrics/train/loss.tsv`` and each
epoch's metrics in ``plots/metrics/dev/<task>/<split>/<metric>.tsv``. Model directories are named
by knob hashes, so the same model has another path in each experiment, and dvc.yaml can declare
directories but not globs: `mtdnn training-curves` copies DVCLive's plot files, byte for byte,
under the model's stable name (``<model>-<task>-seed<S>/train/loss.tsv``, ...) into one directory,
which `dvc plots diff` then compares across experiments file by file.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from mtdnn.errors import MtdnnError
from mtdnn.fileio import atomic_dir

log = logging.getLogger(__name__)

# DVCLive's series, inside a model directory (``Live.plots_dir`` / ``Metric.subfolder``)
CURVES = Path("dvclive", "plots", "metrics")


def collect(models: dict[str, Path], out: Path) -> list[Path]:
    """For each ``{name: model directory}``: its DVCLive series as ``out/<name>/...``; the whole
    directory is replaced at once. Returns the files written. DVCLive keeps each metric in its own
    file, so every dev curve has its own y field (no common ``primary`` column is needed)."""
    written = []
    with atomic_dir(out) as tmp:
        for name, model_dir in sorted(models.items()):
            source = Path(model_dir) / CURVES
            if not Path(model_dir).is_dir():
                raise MtdnnError(f"{model_dir}: not a model directory")
            if not source.is_dir():
                # A model trained before its runs logged through DVCLive (a persisted multi-task
                # model, say): its curves are not worth failing the table or retraining it for.
                log.warning(
                    "%s: not found (trained before DVCLive?); no curves for %s", source, name
                )
                continue
            shutil.copytree(source, tmp / name)
            written += sorted(out / name / p.relative_to(source) for p in source.rglob("*.tsv"))
    return written
