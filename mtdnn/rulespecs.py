"""The job spec of every training rule's job (`train_mtl`, `finetune`, `adapt`), from the grid and
the job's wildcards: what the rule passes to `mtdnn run --spec`.

Its paths come from ``mtdnn.paths``, the functions the rules declare their inputs and outputs with.
The spec is built from the wildcards alone, not from the rule's ``input``/``output``: Snakemake
leaves a params function that reads those out of its params rerun trigger, and the spec is the
trigger that reruns a job whose knobs changed.
"""

from __future__ import annotations

from typing import Any

from mtdnn import paths
from mtdnn.config import stage_config
from mtdnn.errors import MtdnnError
from mtdnn.grid import Grid
from mtdnn.jobspec import JobSpec, make_spec


def rule_spec(grid: Grid, stage: str, wc: Any) -> str:
    """The spec of the ``stage`` job with wildcards ``wc`` as JSON. A target made under other
    knobs (a stale path asked for by hand) is refused rather than rebuilt with these."""
    spec = {"mtl": _mtl, "finetune": _finetune, "adapt": _adapt}[stage](grid, wc)
    if spec.key != wc.key:
        raise MtdnnError(
            f"{stage} target with knob key {wc.key}: the current params.yaml gives {spec.key} "
            "(ask for the table, which names the current cells)"
        )
    return spec.to_json()


def _data(grid: Grid, enc: str, tasks: list[str]) -> dict[str, str]:
    return {t: str(paths.tokenized_path(enc, grid.max_len, t)) for t in tasks}


def _mtl(grid: Grid, wc: Any) -> JobSpec:
    """Multi-task training with GLUE's encoder or adapt.encoder (the ``enc`` wildcard), writing
    the "MT-DNN, no fine-tuning" cells too."""
    cells = {t: paths.glue_cell("mtl", wc.enc, t, wc.key, wc.seed) for t in grid.mtl_cell_tasks}
    return make_spec(
        "mtl",
        grid.mtl_tasks,
        None,
        int(wc.seed),
        grid.encoder_of(wc.enc),
        grid.max_len,
        stage_config(grid.params, "mtl"),
        upstream=None,
        data=_data(grid, wc.enc, grid.mtl_tasks),
        init_dir=None,
        out=paths.mtl_dir(wc.enc, wc.key, wc.seed),
        cells=cells,
    )


def _finetune(grid: Grid, wc: Any) -> JobSpec:
    mtdnn = wc.init == "mtdnn"
    return make_spec(
        "finetune",
        [wc.task],
        wc.init,
        int(wc.seed),
        grid.encoder,
        grid.max_len,
        stage_config(grid.params, "finetune", wc.task, wc.init),
        upstream=grid.mtl_key if mtdnn else None,
        data=_data(grid, grid.enc, [wc.task]),
        init_dir=grid.mtl_model(wc.seed) if mtdnn else None,
        out=paths.finetune_dir(wc.init, wc.enc, wc.task, wc.key, wc.seed),
        cells={wc.task: paths.glue_cell(wc.init, wc.enc, wc.task, wc.key, wc.seed)},
    )


def _adapt(grid: Grid, wc: Any) -> JobSpec:
    """From the first seed's MT-DNN model trained with adaptation's encoder, or the plain one."""
    mtdnn = wc.init == "mtdnn"
    init_dir = grid.mtl_model(grid.adapt_mtl_seed, grid.adapt_encoder) if mtdnn else None
    cell = paths.adapt_cell(wc.init, wc.enc, wc.task, wc.size, wc.key, wc.seed)
    return make_spec(
        "adapt",
        [wc.task],
        wc.init,
        int(wc.seed),
        grid.adapt_encoder,
        grid.max_len,
        stage_config(grid.params, "adapt", None, wc.init),
        upstream=grid.adapt_upstream(wc.init),
        data=_data(grid, wc.enc, [wc.task]),
        init_dir=init_dir,
        out=None,  # the adapted model is not kept: the cell is the result
        cells={wc.task: cell},
        size=wc.size,
        splits=grid.adapt.get("eval_splits", ["dev"]),
    )
