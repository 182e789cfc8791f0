"""The experiment grid, computed once from params: which tasks, cells and targets exist.

The Snakefile asks this module for its targets, so the grid is written in one place, and tests can
check it without running Snakemake.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import cached_property

from mtdnn import paths
from mtdnn.config import BASELINES, stage_config, task_specs
from mtdnn.errors import MtdnnError
from mtdnn.ingest.sources import expand_path, train_missing
from mtdnn.jobspec import knob_key
from mtdnn.subsample import size_label
from mtdnn.tasks import TaskSpec

log = logging.getLogger(__name__)
# The GLUE table's models, in its row order: the two baselines, MT-DNN without and with fine-tuning.
GLUE_MODELS = (*BASELINES, "mtl", "mtdnn")


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
        return self.train_missing(name) is None

    def train_missing(self, name: str) -> str | None:
        """None when the task's train split can be had, else where it was looked for, in words
        (``sources.train_missing``: the same search ``mtdnn prepare`` makes)."""
        declared = self.params["data"]["sources"].get(name, {})
        return train_missing(self.tasks[name], declared, self.glue_dir)

    def _available(self, names: list[str]) -> list[str]:
        """The named tasks that can be trained. Any other is an error, unless the profile lists it
        in ``data.optional_tasks``: then it is left out with a notice and named in the tables."""
        missing = {t: why for t in names if (why := self.train_missing(t)) is not None}
        required = [t for t in missing if t not in self.optional_tasks]
        if required:
            first, others = required[0], required[1:]
            also = f" (also without: {', '.join(others)})" if others else ""
            raise MtdnnError(
                f"task {first}: no training data: {missing[first]}; set GLUE_DIR to a local GLUE "
                f"copy (or data.sources.{first}.train, or data.hub_dir), or list {first} in "
                f"data.optional_tasks to leave it out{also}"
            )
        noticed = self.__dict__.setdefault("_noticed", set())  # once per task, not per stage
        for t in sorted(set(missing) - noticed):
            log.warning("notice: task %s left out (data.optional_tasks): %s", t, missing[t])
            noticed.add(t)
        return [t for t in names if t not in missing]

    @property
    def optional_tasks(self) -> list[str]:
        return self.params["data"].get("optional_tasks", [])

    @property
    def skipped_tasks(self) -> list[str]:
        """Optional tasks the profile names that are left out here (for the tables' footnote)."""
        named = self.params["mtl"]["tasks"] + self.params["finetune"]["tasks"]
        kept = set(self.mtl_tasks) | set(self.finetune_tasks)
        return sorted({t for t in named if t not in kept})

    def check(self) -> None:
        """Resolve every task the profile names now: built, left out by opt-in, or an error."""
        _ = self.mtl_tasks, self.finetune_tasks, self.adapt_datasets

    @cached_property
    def mtl_tasks(self) -> list[str]:
        return self._available(self.params["mtl"]["tasks"])

    @cached_property
    def finetune_tasks(self) -> list[str]:
        return self._available(self.params["finetune"]["tasks"])

    @property
    def enc(self) -> str:
        """The encoder as a path component (a model directory becomes '<name>-<hash>')."""
        return paths.encoder_key(self.encoder)

    @property
    def adapt_encoder(self) -> str:
        """Domain adaptation's encoder: ``adapt.encoder`` (the paper adapts bert-base while its GLUE
        runs use bert-large), else the GLUE encoder. Its MT-DNN init is a multi-task model
        trained with this encoder, with the multi-task knobs of the GLUE runs."""
        return self.adapt.get("encoder") or self.encoder

    def encoder_of(self, enc: str) -> str:
        """The encoder behind a path component (a workflow wildcard)."""
        for encoder in (self.encoder, self.adapt_encoder):
            if paths.encoder_key(encoder) == enc:
                return encoder
        raise MtdnnError(f"encoder '{enc}' is neither encoder nor adapt.encoder of this profile")

    # Knob keys: a cell's path holds a hash of everything that decides its numbers ----------------
    def _key(
        self,
        stage: str,
        task: str | None,
        init: str | None,
        upstream: str | None,
        encoder: str | None = None,
    ) -> str:
        knobs = stage_config(self.params, stage, task, init)
        tasks = self.mtl_tasks if stage == "mtl" else []
        return knob_key(stage, knobs, encoder or self.encoder, self.max_len, upstream, tasks)

    @cached_property
    def mtl_key(self) -> str:
        return self._key("mtl", None, None, None)

    def mtl_key_for(self, encoder: str) -> str:
        """The multi-task model's key for ``encoder`` (the GLUE one, or adapt.encoder)."""
        return (
            self.mtl_key if encoder == self.encoder else self._key("mtl", None, None, None, encoder)
        )

    def finetune_key(self, task: str, init: str) -> str:
        return self._key("finetune", task, init, self.mtl_key if init == "mtdnn" else None)

    def adapt_key(self, init: str) -> str:
        return self._key("adapt", None, None, self.adapt_upstream(init), self.adapt_encoder)

    def adapt_upstream(self, init: str) -> str | None:
        """What an adaptation key hashes as its init: the MT-DNN model's key and seed."""
        mtl = self.mtl_key_for(self.adapt_encoder)
        return f"{mtl}/seed{self.adapt_mtl_seed}" if init == "mtdnn" else None

    def mtl_model(self, seed: int | str, encoder: str | None = None) -> str:
        encoder = encoder or self.encoder
        return paths.mtl_dir(paths.encoder_key(encoder), self.mtl_key_for(encoder), seed)

    @property
    def mtl_cell_tasks(self) -> list[str]:
        """Tasks whose "MT-DNN, no fine-tuning" cell the multi-task job writes."""
        return [t for t in self.finetune_tasks if t in self.mtl_tasks]

    @property
    def baselines(self) -> list[str]:
        """The baselines this profile fine-tunes beside MT-DNN (``finetune.baselines``)."""
        return self.params["finetune"].get("baselines", ["base"])

    @property
    def finetune_inits(self) -> list[str]:
        """MT-DNN's fine-tuning and every baseline: the fine-tuning runs per task and seed."""
        return ["mtdnn", *self.baselines]

    def model_tasks(self, model: str) -> list[str]:
        """The tasks with a GLUE cell of ``model``: the equal-exposure baseline and the
        no-fine-tuning row exist only for tasks that multi-task training has."""
        return self.mtl_cell_tasks if model in ("mtl", "equal") else self.finetune_tasks

    def glue_cells(self) -> list[str]:
        cells = []
        models = [m for m in GLUE_MODELS if m in ("mtl", *self.finetune_inits)]
        for seed in self.seeds:
            for model in models:
                cells += [
                    paths.glue_cell(model, self.enc, t, self._cell_key(model, t), seed)
                    for t in self.model_tasks(model)
                ]
        return cells

    def _cell_key(self, model: str, task: str) -> str:
        return self.mtl_key if model == "mtl" else self.finetune_key(task, model)

    # Domain adaptation -----------------------------------------------------------------------
    @property
    def adapt(self) -> dict:
        return self.params["adapt"]

    @cached_property
    def adapt_datasets(self) -> list[str]:
        return self._available(self.adapt["datasets"])

    def adapt_cells(self) -> list[str]:
        return [
            paths.adapt_cell(init, self.adapt_enc, d, size_label(s), self.adapt_key(init), seed)
            for d in self.adapt_datasets
            for s in self.adapt["sizes"]
            for seed in self.adapt["seeds"]
            for init in ("base", "mtdnn")
        ]

    def tokenizations(self) -> list[tuple[str, str]]:
        """(encoder path component, task) of every tokenized dataset the tables need: the GLUE
        tasks with GLUE's encoder; the adaptation targets with theirs, and, when that encoder
        differs, the multi-task tasks again for its MT-DNN init."""
        out = [(self.enc, t) for t in sorted(set(self.finetune_tasks + self.mtl_tasks))]
        if self.adapt_datasets:
            extra = self.mtl_tasks if self.adapt_enc != self.enc else []
            out += [(self.adapt_enc, t) for t in sorted(set(self.adapt_datasets + extra))]
        return list(dict.fromkeys(out))

    @property
    def adapt_enc(self) -> str:
        """``adapt_encoder`` as a path component."""
        return paths.encoder_key(self.adapt_encoder)

    @property
    def adapt_mtl_seed(self) -> int:
        """Adaptation starts from the first seed's MT-DNN model: the one shared with the GLUE table."""
        return self.seeds[0]
