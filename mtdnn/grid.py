"""The experiment grid, computed once from params: which tasks, cells and targets exist.

The Snakefile asks this module for its targets, so the grid is written in one place, and tests can
check it without running Snakemake.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from functools import cached_property

from mtdnn.config import stage_config, task_specs
from mtdnn.sources import expand_path
from mtdnn.tasks import TaskSpec

log = logging.getLogger(__name__)
GLUE_MODELS = ("base", "mtl", "mtdnn")


@dataclass(frozen=True)
class Grid:
    params: dict

    @cached_property
    def tasks(self) -> dict[str, TaskSpec]:
        return task_specs(self.params)

    @property
    def encoder(self) -> str:
        return self.params["encoder"]

    @property
    def max_len(self) -> int:
        return self.params["tokenize"]["max_len"]

    @property
    def seeds(self) -> list[int]:
        return self.params["seeds"]

    @cached_property
    def glue_dir(self) -> str | None:
        """The local GLUE copy in effect (params, else $GLUE_DIR); passed to prepare explicitly so a
        change of data location is a rerun trigger."""
        raw = self.params["data"]["glue_dir"]
        path = expand_path(raw, "data.glue_dir") if raw else os.environ.get("GLUE_DIR")
        return str(path) if path else None

    def has_train(self, name: str) -> bool:
        """A task trains only where its train split can be had. A task whose folder exists in the
        local GLUE copy is local (QNLI there has no train.tsv); otherwise it comes from the Hub."""
        task = self.tasks[name]
        source = self.params["data"]["sources"].get(name, {}).get(task.train_split or "")
        if source is not None and (path := expand_path(source["file"], f"data.sources.{name}")):
            return path.is_file()
        if (
            self.glue_dir
            and task.local
            and os.path.isdir(os.path.join(self.glue_dir, task.local.dir))
        ):
            local = task.local.splits.get(task.train_split or "")
            return local is not None and os.path.isfile(
                os.path.join(self.glue_dir, task.local.dir, local.file)
            )
        return task.hub is not None and self._hub_allowed()

    def _hub_allowed(self) -> bool:
        return os.environ.get("HF_HUB_OFFLINE", "").lower() not in {"1", "true", "yes"}

    def _available(self, names: list[str]) -> list[str]:
        kept = [t for t in names if self.has_train(t)]
        for t in sorted(set(names) - set(kept)):
            log.warning("task %s skipped: no training split available (local files or the Hub)", t)
        return kept

    @cached_property
    def mtl_tasks(self) -> list[str]:
        return self._available(self.params["mtl"]["tasks"])

    @cached_property
    def finetune_tasks(self) -> list[str]:
        return self._available(self.params["finetune"]["tasks"])

    def mtl_model(self, seed: int | str) -> str:
        return f"models/mtl/{self.encoder}/seed{seed}"

    def glue_cells(self) -> list[str]:
        cells = []
        for seed in self.seeds:
            for model in GLUE_MODELS:
                tasks = [t for t in self.finetune_tasks if model != "mtl" or t in self.mtl_tasks]
                cells += [
                    f"results/cells/glue/{model}/{self.encoder}/{t}/seed{seed}.json" for t in tasks
                ]
        return cells

    def stage_json(self, stage: str, task: str | None = None) -> str:
        return json.dumps(stage_config(self.params, stage, task), sort_keys=True)

    # Domain adaptation -----------------------------------------------------------------------
    @property
    def adapt(self) -> dict:
        return self.params["adapt"]

    @cached_property
    def adapt_datasets(self) -> list[str]:
        return self._available(self.adapt["datasets"])

    def size_label(self, size: float | int) -> str:
        """'n549' for an absolute count, 'p0.01' for a fraction of the pool."""
        return f"p{size:g}" if isinstance(size, float) or size == 1 else f"n{size}"

    def adapt_cells(self) -> list[str]:
        return [
            f"results/cells/adapt/{init}/{self.encoder}/{d}/{self.size_label(s)}/seed{seed}.json"
            for d in self.adapt_datasets
            for s in self.adapt["sizes"]
            for seed in self.adapt["seeds"]
            for init in ("base", "mtdnn")
        ]

    @property
    def adapt_mtl_seed(self) -> int:
        """Adaptation starts from the first seed's MT-DNN model: the one shared with the GLUE table."""
        return self.seeds[0]
