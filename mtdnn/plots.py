"""Training curves under stable names, for `dvc plots diff` across experiments.

Every trained model keeps the DVCLive directory its run logged (``<model>/dvclive``, see
mtdnn/training/tracking.py): the loss of each batch in ``plots/metrics/train/loss.tsv`` and each
epoch's metrics in ``plots/metrics/dev/<task>/<split>/<metric>.tsv``. Model directories are named
by knob hashes, so the same model has another path in each experiment, and dvc.yaml can declare
directories but not globs: `mtdnn training-curves` copies DVCLive's plot files, byte for byte,
under the model's stable name (``<model>-<task>-seed<S>/train/loss.tsv``, ...) into one directory,
which `dvc plots diff` then compares across experiments file by file. Each model's DVCLive summary
(``dvclive/metrics.json``: the last value of every series) is copied the same way, as
``<name>.json`` into a second directory, which dvc.yaml declares as metrics, so that `dvc exp
show` lists every model's final loss and dev metrics beside the tables' own.
"""

from __future__ import annotations

import logging
import shutil
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from mtdnn.errors import MtdnnError
from mtdnn.fileio import atomic_dir

log = logging.getLogger(__name__)

# DVCLive's series, inside a model directory (``Live.plots_dir`` / ``Metric.subfolder``)
CURVES = Path("dvclive", "plots", "metrics")
SUMMARY = Path("dvclive", "metrics.json")


def collect(models: dict[str, Path], out: Path, summaries: Path | None = None) -> list[Path]:
    """For each ``{name: model directory}``: its DVCLive series as ``out/<name>/...`` and, with
    ``summaries``, its DVCLive summary as ``summaries/<name>.json``; both directories are swapped in
    together once complete, or neither. Returns the files written. DVCLive keeps each metric in its
    own file, so every dev curve has its own y field (no common ``primary`` column is needed)."""
    for model_dir in models.values():
        if not Path(model_dir).is_dir():
            raise MtdnnError(f"{model_dir}: not a model directory")
    wanted = (CURVES,) if summaries is None else (CURVES, SUMMARY)
    kept = {n: Path(d) for n, d in sorted(models.items()) if _logged(n, Path(d), wanted)}
    written = []
    with atomic_dir(out) as tmp, _maybe_atomic_dir(summaries) as tmp_summaries:
        for name, model_dir in kept.items():
            source = model_dir / CURVES
            shutil.copytree(source, tmp / name)
            written += sorted(out / name / p.relative_to(source) for p in source.rglob("*.tsv"))
            if tmp_summaries is not None:
                shutil.copyfile(model_dir / SUMMARY, tmp_summaries / f"{name}.json")
                written.append(Path(summaries) / f"{name}.json")
    return written


def _maybe_atomic_dir(dest: Path | None) -> AbstractContextManager[Path | None]:
    return nullcontext() if dest is None else atomic_dir(dest)


def _logged(name: str, model_dir: Path, wanted: tuple[Path, ...]) -> bool:
    """Whether ``model_dir`` holds every DVCLive path in ``wanted``. A model trained before its
    runs logged through DVCLive (a persisted multi-task model, say) does not: its curves are not
    worth failing the table or retraining it for, so it is left out with a warning."""
    missing = [model_dir / w for w in wanted if not (model_dir / w).exists()]
    if missing:
        log.warning("%s: not found (trained before DVCLive?); no curves for %s", missing[0], name)
    return not missing
