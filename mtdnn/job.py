"""`mtdnn run --spec`: run one training job from its spec (``mtdnn.jobspec``), and nothing else.

The spec is complete: the job takes its knobs, its data and its outputs from it, never from
params.yaml (which it reads for the task registry only) and never from a path of its own making.
"""

from __future__ import annotations

from pathlib import Path

from mtdnn.config import TrainConfig, check_knobs
from mtdnn.jobspec import JobSpec, check_key
from mtdnn.tasks import TaskSpec, get_task


def spec_config(spec: JobSpec) -> TrainConfig:
    """The knobs the job trains with: the spec's, once they are shown to be those of its key."""
    check_key(spec)
    return TrainConfig.from_dict(check_knobs(spec.knobs, spec.stage, "--spec"))


def run_job(
    spec: JobSpec, registry: dict[str, TaskSpec], stop_after: int | None = None
) -> dict | None:
    """Train (and, for domain adaptation, subsample first), then write the spec's cells. The
    training summary, or None when ``stop_after`` interrupted the run (tests)."""
    cfg = spec_config(spec)  # bad knobs fail in a second, before torch loads
    tasks = [get_task(registry, t) for t in spec.tasks]
    if spec.stage == "adapt":
        from mtdnn.adapt import adapt_cell

        return adapt_cell(spec, tasks[0], cfg, registry)
    from mtdnn.train import train

    init = Path(spec.init_dir) if spec.init_dir else None
    data = {t: Path(d) for t, d in spec.data.items()}
    out = Path(spec.out)
    summary = train(
        tasks,
        spec.encoder,
        spec.max_len,
        cfg,
        spec.seed,
        out,
        init,
        stop_after=stop_after,
        data=data,
    )
    if summary:
        write_cells(spec, registry)
    return summary


def write_cells(spec: JobSpec, registry: dict[str, TaskSpec]) -> None:
    """Evaluate the model just trained, in the same process (no second start-up and model load
    per table cell): the spec's cells, each with its dev predictions beside it (``evaluate_cell``
    keeps them: the tables' paired bootstrap reads them)."""
    from mtdnn.evaluate import evaluate_cell
    from mtdnn.training.distributed import Dist

    if not Dist.launched_as_main():  # under torchrun, rank 0 alone writes the cells
        return
    model = Path(spec.out)
    for name, path in spec.cells.items():
        task, data = get_task(registry, name), Path(spec.data[name])
        evaluate_cell(
            model,
            task,
            Path(path),
            spec.eval_splits,
            None,
            spec.cell,
            registry=registry,
            tok_dir=data,
        )
