"""Training curves through DVCLive: the loss of every batch and each epoch's dev (and held-out)
metrics of one run, in DVCLive's layout (``metrics.json``, ``plots/metrics/**.tsv``), which
`dvc plots` and `dvc metrics` read (dvc.yaml declares stable-named copies: mtdnn/plots.py).

A run logs to ``<out>.dvclive`` beside the model directory it is training (the model directory
itself only appears, whole, when training ends), where the curves can be watched while the job
runs (`dvc plots show <out>.dvclive/plots/metrics -x step`), and moves it into the model as
``<out>/dvclive`` with the weights. The directory is always rebuilt from the training position:
a fresh start leaves nothing of a killed run's rows, and a resumed run writes the same bytes as an
uninterrupted one (a killed run may have logged batches past its checkpoint, which the resumed
run trains again). Losses are logged when the loop reads them back from the device anyway (every
``LOG_EVERY`` batches, at checkpoints and epoch ends): logging adds no host sync, and it reads
and changes no number of the run, and no random generator.

Every row's ``step`` is the batch (1-based): the loss of batch n at step n, an epoch's metrics at
the batch that ended it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dvclive import Live

# The losses are kept as train_summary.json keeps them: float noise past this is not information.
LOSS_DECIMALS = 6


class Curves:
    """The logger of a process that logs nothing: ranks other than 0, and a run before ``fit``."""

    def losses(self, losses: list[float]) -> None:
        """Log the batches of ``losses`` (all batches so far, in order) not logged yet."""

    def epoch(self, entry: dict) -> None:
        """Log one epoch's history entry: dev metrics, and held-out ones and score if selecting."""

    def save(self, dest: Path) -> None:
        """Move the directory to ``dest`` (inside the model being written)."""


class LiveCurves(Curves):
    """Rank 0's DVCLive logger of one run."""

    def __init__(self, directory: Path) -> None:
        # Removed, not appended to: what is in it was logged by a run that was killed or that had
        # other settings; ``open`` logs again what this run's position already covers.
        shutil.rmtree(directory, ignore_errors=True)
        self.live = _detached_live(directory)
        self.logged = 0

    @classmethod
    def open(cls, directory: Path, losses: list[float], history: list[dict]) -> LiveCurves:
        """A logger holding the rows of a run at this position (nothing at a fresh start), logged
        in the order the run logged them, so that even metrics.json's key order is the same."""
        curves = cls(directory)
        for entry in history:
            curves.losses(losses[: entry["batches"]])
            curves.epoch(entry)
        curves.losses(losses)
        return curves

    def losses(self, losses: list[float]) -> None:
        for i in range(self.logged, len(losses)):
            self.live.step = i + 1
            self.live.log_metric("train/loss", round(losses[i], LOSS_DECIMALS))
        self.logged = len(losses)
        self._sync()

    def epoch(self, entry: dict) -> None:
        self.live.step = entry["batches"]
        for section in ("dev", "holdout"):
            for split, metrics in entry.get(section, {}).items():  # split: "<task>/<split>"
                for name, value in metrics.items():
                    self.live.log_metric(f"{section}/{split}/{name}", value)
        if "score" in entry:
            self.live.log_metric("holdout/score", entry["score"])
        self._sync()

    def save(self, dest: Path) -> None:
        self._sync()
        shutil.move(self.live.dir, dest)

    def _sync(self) -> None:
        """metrics.json: the latest value of each series, and the last batch logged as ``step``.

        ``make_summary`` alone: ``next_step`` and ``end`` would also write the VS Code
        extension's signal files into the repository's .dvc/tmp and re-read every series for
        DVC Studio at each call, which per batch grows with the square of the run's length.
        """
        # Re-added last at each write, so a resumed run's metrics.json has the same key order.
        self.live.summary.pop("step", None)
        self.live.step = self.logged
        self.live.make_summary()


def _detached_live(directory: Path) -> Live:
    """A DVCLive ``Live`` that writes its files and nothing else.

    The jobs run under Snakemake, often inside `dvc exp run`: the pipeline owns the repository,
    its dvc.yaml and its experiments (DVC tracks the model directories as stage outputs). Left to
    itself, DVCLive would open the repository at every job start, `dvc init` a Git repository
    that has no DVC project, name an experiment of its own, and post each job to DVC Studio when
    a token is configured, as if it were an experiment. ``save_dvc_exp=False`` and
    ``dvcyaml=None`` alone leave the repository lookup and Studio on, so this subclass skips both.
    Imported here, on rank 0 at the start of training: other commands need not load DVCLive.
    """
    from dvclive import Live

    class DetachedLive(Live):
        def _init_dvc(self) -> None:
            self._dvc_file = "dvc.yaml"  # named, never written: dvcyaml=None

        def _init_studio(self) -> None:
            self._studio_events_to_skip.update({"start", "data", "done"})

    return DetachedLive(str(directory), save_dvc_exp=False, dvcyaml=None)
