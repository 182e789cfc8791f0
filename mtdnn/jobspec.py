"""One training job, written down once: the record a workflow rule hands to `mtdnn run --spec`.

The grid builds it for every job of the workflow, and the hand-typed verbs (`mtdnn train-mtl`,
`finetune`, `adapt`) build it through the same :func:`make_spec`, so what a job trains with, where
it reads and writes, and the coordinates of its table cells are decided in one place. The job then
recomputes the knob key from the record and refuses one whose knobs are not those of its key.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from mtdnn import paths
from mtdnn.errors import MtdnnError
from mtdnn.fileio import json_object

STAGES = ("mtl", "finetune", "adapt")


@dataclass(frozen=True)
class JobSpec:
    stage: str  # mtl | finetune | adapt
    tasks: tuple[str, ...]  # the trained tasks (one, except in multi-task training)
    init: str | None  # mtdnn | base | equal (adapt: mtdnn | base); None for multi-task training
    seed: int
    encoder: str  # alias or local model directory
    max_len: int
    knobs: dict  # the stage's effective knobs: exactly what the trainer gets
    key: str  # the knob key in the job's output paths
    upstream: str | None  # the init model's key (hashed into ``key``), None from the plain encoder
    data: dict[str, str]  # task → its tokenized directory (trained and evaluated tasks)
    init_dir: str | None  # the MT-DNN checkpoint to start from
    out: str | None  # the model directory to write (adapt: None, a temporary one)
    cells: dict[str, str]  # task → the table cell to write from the trained model
    cell: dict = field(default_factory=dict)  # the cells' coordinates (each adds its task)
    size: str | None = None  # adapt: the subsample, n<count> or p<fraction>
    splits: tuple[str, ...] | None = None  # evaluation splits (None: each task's dev splits)

    @property
    def eval_splits(self) -> list[str] | None:
        """``splits`` as ``evaluate_cell`` takes them (None: each task's dev splits)."""
        return list(self.splits) if self.splits else None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str, where: str = "--spec") -> JobSpec:
        doc = json_object(text, where, "a JSON object of job fields")
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(doc) - set(names))
        missing = [n for n in names if n not in doc]
        if unknown or missing:
            what = f"unknown field '{unknown[0]}'" if unknown else f"missing field '{missing[0]}'"
            raise MtdnnError(f"{where}: {what} (a job spec has: {', '.join(names)})")
        if doc["stage"] not in STAGES:
            raise MtdnnError(
                f"{where}: stage '{doc['stage']}' (expected one of {', '.join(STAGES)})"
            )
        tuples = {k: tuple(doc[k]) for k in ("tasks", "splits") if doc[k] is not None}
        return cls(**(doc | tuples))


def knob_key(
    stage: str,
    knobs: dict,
    encoder: str,
    max_len: int,
    upstream: str | None,
    tasks: list[str] | tuple[str, ...],
) -> str:
    """The key of a job's paths: a hash of everything that decides its numbers. Multi-task training
    hashes its task list too; a single-task job's task is in its path already."""
    doc: dict[str, Any] = {
        "knobs": knobs,
        "encoder": encoder,
        "max_len": max_len,
        "upstream": upstream,
    }
    if stage == "mtl":
        doc["tasks"] = list(tasks)
    return paths.knob_key(doc)


def check_key(spec: JobSpec) -> None:
    """Refuse a spec whose knobs (or encoder, length, upstream, tasks) are not those of its key:
    the job would otherwise write numbers under a path that names other settings."""
    key = knob_key(spec.stage, spec.knobs, spec.encoder, spec.max_len, spec.upstream, spec.tasks)
    if key != spec.key:
        raise MtdnnError(
            f"--spec: key {spec.key} does not match the spec's knobs (they hash to {key}); "
            "rebuild the spec from params.yaml rather than editing its knobs"
        )


def cell_coords(stage: str, init: str | None, seed: int, enc: str, size: str | None) -> dict:
    """A table cell's coordinates (``evaluate_cell`` adds the task). GLUE cells name the model and
    carry strings, adaptation cells the init and size, as both tables have always read them."""
    if stage == "adapt":
        return {"table": "adapt", "init": init, "size": size, "seed": seed}
    return {"table": "glue", "model": init or "mtl", "seed": str(seed), "encoder": enc}


def make_spec(
    stage: str,
    tasks: list[str],
    init: str | None,
    seed: int,
    encoder: str,
    max_len: int,
    knobs: dict,
    *,
    upstream: str | None,
    data: dict[str, str],
    init_dir: str | None,
    out: str | None,
    cells: dict[str, str],
    cell: dict | None = None,
    size: str | None = None,
    splits: list[str] | None = None,
) -> JobSpec:
    """The one way a job spec is made, by the grid for a rule and by a hand-typed verb: the key and
    the cell coordinates follow from the rest. ``cell``: coordinates to add (hand runs)."""
    coords = cell_coords(stage, init, seed, paths.encoder_key(encoder), size) | (cell or {})
    return JobSpec(
        stage=stage,
        tasks=tuple(tasks),
        init=init,
        seed=seed,
        encoder=encoder,
        max_len=max_len,
        knobs=knobs,
        key=knob_key(stage, knobs, encoder, max_len, upstream, tasks),
        upstream=upstream,
        data=data,
        init_dir=init_dir,
        out=out,
        cells=cells,
        cell=coords,
        size=size,
        splits=tuple(splits) if splits is not None else None,
    )
