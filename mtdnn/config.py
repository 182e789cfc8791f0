"""params.yaml: load with safe_load, validate against the JSON schema, then cross-check names.

The stage configs handed to the trainer are frozen dataclasses; the raw validated dict is what
Snakemake and DVC see.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from mtdnn.errors import MtdnnError
from mtdnn.fileio import atomic_path, json_object
from mtdnn.ingest.sources import expand_path
from mtdnn.model.encoders import ALIASES
from mtdnn.tasks import DuplicateKeyError, TaskSpec, UniqueKeyLoader, load_tasks
from mtdnn.validation import check, explain, load_schema

PARAMS = "params.yaml"


def schema() -> dict:
    return load_schema("params.schema.yaml")


def read_yaml(path: str | Path) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise MtdnnError(f"{path}: cannot read ({e.strerror})") from None
    try:
        return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except DuplicateKeyError as e:
        raise MtdnnError(f"{path}:{e.line}: duplicate key '{e.key}'") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise MtdnnError(f"{path}{line}: invalid YAML ({getattr(e, 'problem', e)})") from None


def validate(params: Any, source: str = PARAMS) -> dict:
    """Schema first (types, ranges, unknown keys), then names (tasks, encoder, overlaps)."""
    if not isinstance(params, dict):
        raise MtdnnError(f"{source}: expected a mapping of sections")
    check(params, schema(), source)
    _check_names(params, source)
    _check_finetune_rows(params, source)
    return params


def _check_finetune_rows(params: dict, source: str) -> None:
    """Fine-tuning trains on each task's multi-task rows (the paper fine-tunes on the training set
    multi-task training used), so a row cap of its own would break that silently."""
    ft = params["finetune"]
    where = ["finetune"] + [f"finetune.per_task.{t}" for t in ft.get("per_task", {})]
    blocks = [ft, *ft.get("per_task", {}).values()]
    for key, block in zip(where, blocks, strict=True):
        if "max_train_examples" in block:
            raise MtdnnError(
                f"{source}: {key}.max_train_examples: fine-tuning uses each task's multi-task "
                "rows; set the cap in mtl.max_train_examples or mtl.per_task instead"
            )


def _check_names(params: dict, source: str) -> None:
    tasks = load_tasks(params["data"].get("task_files", []))
    for key, enc in (
        ("encoder", params["encoder"]),
        ("adapt.encoder", params["adapt"].get("encoder")),
    ):
        if enc is not None and enc not in ALIASES and not Path(enc).is_dir():
            raise MtdnnError(
                f"{source}: {key}: unknown alias '{enc}' (expected one of {', '.join(ALIASES)}, "
                "or an existing local model directory)"
            )
    named = [("mtl.tasks", t) for t in params["mtl"]["tasks"]]
    named += [("finetune.tasks", t) for t in params["finetune"]["tasks"]]
    named += [("finetune.per_task", t) for t in params["finetune"].get("per_task", {})]
    named += [("mtl.per_task", t) for t in params["mtl"].get("per_task", {})]
    named += [("adapt.datasets", t) for t in params["adapt"]["datasets"]]
    named += [("data.sources", t) for t in params["data"]["sources"]]
    named += [("data.optional_tasks", t) for t in params["data"].get("optional_tasks", [])]
    for key, name in named:
        if name not in tasks:
            known = ", ".join(sorted(tasks))
            raise MtdnnError(f"{source}: {key}: unknown task '{name}' (known: {known})")
    for name, splits in params["data"]["sources"].items():
        for split, block in splits.items():
            expand_path(block["file"], f"{source}: data.sources.{name}.{split}.file")
    overlap = set(params["mtl"]["tasks"]) & set(params["adapt"]["datasets"])
    if overlap:
        raise MtdnnError(
            f"{source}: adapt.datasets: '{sorted(overlap)[0]}' is also in mtl.tasks; "
            "domain-adaptation targets must be held out of multi-task training"
        )


def load_params(path: str | Path = PARAMS) -> dict:
    return validate(read_yaml(path), str(path))


def write_profile(name: str, out: str | Path = PARAMS) -> None:
    """Switch the active profile: ``out`` becomes a copy of the shipped profile ``name``."""
    shipped = resources.files("mtdnn") / "profiles"
    src = shipped / f"{name}.yaml"
    if not src.is_file():
        names = sorted(p.name.removesuffix(".yaml") for p in shipped.iterdir())
        raise MtdnnError(f"unknown profile '{name}' (expected one of {', '.join(names)})")
    with atomic_path(out) as tmp, resources.as_file(src) as f:
        shutil.copyfile(f, tmp)


@dataclass(frozen=True)
class TrainConfig:
    """Knobs for one training run (multi-task, fine-tuning or adaptation)."""

    optimizer: str = "adamw"
    lr: float = 5e-5
    batch_size: int = 32
    grad_accum: int = 1
    epochs: float = 3.0
    warmup: float = 0.1
    weight_decay: float = 0.01
    clip_norm: float | None = 1.0
    dropout: float | None = None  # None: the task's own (0.1; MNLI 0.3; CoLA 0.05)
    head: str = "linear"
    keep_head: bool = True
    san_steps: int = 5
    prediction_dropout: float = 0.1
    ranking_gamma: float = 1.0
    sampler: str = "algorithm1"
    temperature: float = 1.0
    max_train_examples: int | None = None
    max_eval_examples: int | None = None
    eval_batch_size: int = 64
    # Dev metrics after each epoch, for the record (history, plots); never used to pick a model.
    eval_each_epoch: bool = True
    # Training rows held out (the tail of the seeded row order) to pick the best epoch on; None:
    # no selection, the last epoch is the model. Never the reported dev split.
    holdout_examples: int | None = None
    best_metric: str = "primary"
    # Readout: "mean" (masked mean of token states), "cls" ([CLS] through the pooler), or "auto"
    # (what the encoder was trained with: a sentence-transformers pooling config, else cls).
    pooling: str = "auto"
    # At least this many optimizer updates (epochs are raised to reach it): a 549-row draw then
    # gets a real schedule instead of a handful of steps.
    min_steps: int | None = None
    precision: str = "auto"
    compile: bool = False
    gradient_checkpointing: bool = False  # recompute activations in backward: memory for time
    group_by_length: bool = True
    # Training batches are padded to a multiple of this many tokens (1: to the longest row).
    # Fewer distinct shapes keep glibc's heap from fragmenting: the default profile's multi-task
    # training peaks at 2.2 GB with 8 against 3.7 GB with 1, for more padded tokens per step.
    pad_to_multiple_of: int = 1
    checkpoint_every: int | None = None
    data_seed: int = 0
    # Derived by `stage_config`, not set in params directly:
    task_caps: dict | None = None  # multi-task: per-task max_train_examples (mtl.per_task)
    # Equal-exposure baseline: the multi-task stage's {epochs, max_train_examples} for this task.
    # The baseline then trains on the multi-task rows for as many example passes as the MT-DNN
    # model gets in multi-task training and fine-tuning together.
    exposure: dict | None = None

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise MtdnnError(f"train config: unknown key '{unknown[0]}'")
        return cls(**d)

    def with_overrides(self, **kw: Any) -> TrainConfig:
        return replace(self, **kw)


_STAGE_ONLY = {
    "tasks",
    "per_task",
    "datasets",
    "sizes",
    "seeds",
    "eval_splits",
    "threads",
    "nproc",
    "baselines",
    "encoder",  # adapt.encoder: which encoder, not how to train it
}
# Knobs that `stage_config` derives from other sections; they reach the trainer, not params.yaml.
DERIVED_KNOBS = {
    "task_caps": {
        "type": "object",
        "additionalProperties": {"type": ["integer", "null"], "minimum": 1},
    },
    "exposure": {
        "type": "object",
        "additionalProperties": False,
        "required": ["epochs", "max_train_examples"],
        "properties": {
            "epochs": {"type": "number", "exclusiveMinimum": 0},
            "max_train_examples": {"type": ["integer", "null"], "minimum": 1},
        },
    },
}


def mtl_cap(params: dict, task: str) -> int | None:
    """How many training rows of ``task`` multi-task training uses (None: all)."""
    mtl = params["mtl"]
    per_task = mtl.get("per_task", {}).get(task, {})
    return per_task.get("max_train_examples", mtl.get("max_train_examples"))


# Fine-tuning's starting points: the MT-DNN model, and the plain encoder under each baseline's
# schedule. "base" is standard fine-tuning (the paper's BERT row: the fine-tuning knobs as they
# are); "equal" is the equal-exposure control (the task's multi-task rows for as many example
# passes as MT-DNN gets in multi-task training and fine-tuning together).
BASELINES = ("base", "equal")


def stage_config(
    params: dict, stage: str, task: str | None = None, init: str | None = None
) -> dict:
    """The flat knob dict of one stage (plus a task's overrides): what a rule passes to the CLI.

    Fine-tuning takes each task's row cap from the multi-task stage (its rows are the multi-task
    rows); ``init="equal"`` adds the multi-task stage's schedule for the task (the equal-exposure
    baseline's extra passes).
    """
    section = params[stage]
    knobs = {k: v for k, v in section.items() if k not in _STAGE_ONLY}
    if stage == "mtl":
        caps = {t: b["max_train_examples"] for t, b in section.get("per_task", {}).items()}
        if caps:
            knobs["task_caps"] = caps
    if task is not None:
        knobs |= section.get("per_task", {}).get(task, {})
    if stage == "finetune" and task is not None:
        knobs["max_train_examples"] = mtl_cap(params, task)
    if stage == "finetune" and init == "equal":
        knobs["exposure"] = equal_exposure(params, task)
    return knobs | {"data_seed": params["data"].get("data_seed", 0)}


def equal_exposure(params: dict, task: str | None) -> dict:
    """The multi-task schedule the equal-exposure baseline adds for ``task``: only a task that
    multi-task training has gets one."""
    if task not in params["mtl"]["tasks"]:
        raise MtdnnError(
            f"equal exposure: task {task} is not in mtl.tasks, so there is no multi-task "
            "exposure to match (its standard fine-tuning is the baseline)"
        )
    epochs = params["mtl"].get("epochs", TrainConfig.epochs)
    return {"epochs": epochs, "max_train_examples": mtl_cap(params, task)}


def knob_schema(stage: str) -> dict:
    """The schema of one stage's knobs as the trainer sees them: the stage's own section of
    params.schema.yaml without its grid keys, plus ``data_seed`` (which lives in ``data``)."""
    full = schema()
    section = full["properties"][stage]["properties"]
    props = {k: v for k, v in section.items() if k not in _STAGE_ONLY}
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": props | {"data_seed": full["$defs"]["seed"]} | DERIVED_KNOBS,
    }


def parse_cfg(text: str) -> dict:
    """``--cfg`` JSON: an object of knob overrides."""
    return json_object(text, "--cfg", "a JSON object of knobs")


def merge_knobs(base: dict, cfg: str | None, stage: str) -> dict:
    """The stage's knobs from params, overridden key by key by ``--cfg``, validated as a whole.

    Hand-typed runs only: the workflow passes a job spec, whose knobs are complete.
    """
    return check_knobs(base | (parse_cfg(cfg) if cfg is not None else {}), stage, "--cfg")


def check_knobs(knobs: dict, stage: str, where: str) -> dict:
    """``knobs`` validated against the stage's knob schema; a bad one is one line naming it."""
    validator = jsonschema.Draft202012Validator(knob_schema(stage))
    error = jsonschema.exceptions.best_match(validator.iter_errors(knobs))
    if error is not None:
        key, message = explain(error)
        raise MtdnnError(f"{where}: {stage}.{key}: {message}")
    return knobs


def task_specs(params: dict) -> dict[str, TaskSpec]:
    """The task registry of a profile: built-in tasks, its task files, and its Hub mirror."""
    tasks = load_tasks(params["data"].get("task_files", []))
    raw = params["data"].get("hub_dir")
    mirror = expand_path(raw, "data.hub_dir") if raw else None
    return {n: with_hub_dir(t, mirror) for n, t in tasks.items()} if mirror else tasks


def with_hub_dir(task: TaskSpec, mirror: Path) -> TaskSpec:
    """Read the task's Hub repo from ``<mirror>/<owner>/<name>`` (a snapshot in the Hub's own
    layout, e.g. from `hf download --repo-type dataset nyu-mll/glue --local-dir ...`), never
    from the network."""
    if task.hub is None or Path(task.hub.path).is_absolute():
        return task
    return replace(task, hub=replace(task.hub, path=str(mirror / task.hub.path)))
