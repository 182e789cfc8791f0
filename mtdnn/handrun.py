"""The job spec of a hand-typed verb (`mtdnn train-mtl`, `finetune`, `adapt`): the params file's
stage knobs with ``--cfg`` on top, its encoder and length unless given, and the paths typed. It is
built by ``jobspec.make_spec``, as the workflow's are, and run by ``job.run_job``."""

from __future__ import annotations

from pathlib import Path

from mtdnn import paths
from mtdnn.config import merge_knobs, stage_config
from mtdnn.jobspec import JobSpec, make_spec

# Without a params file (a model trained by hand outside a project): the bundled encoder at the
# default profile's length. Written once, here.
DEFAULT_ENCODER, DEFAULT_MAX_LEN = "minilm", 128


def encoder_and_len(
    params: dict | None, stage: str, encoder: str | None, max_len: int | None
) -> tuple[str, int]:
    """``encoder``/``max_len`` as typed, else the params file's (domain adaptation may use its own
    ``adapt.encoder``), else the defaults above."""
    if params is None:
        return encoder or DEFAULT_ENCODER, max_len or DEFAULT_MAX_LEN
    own = params["adapt"].get("encoder") if stage == "adapt" else None
    return encoder or own or params["encoder"], max_len or params["tokenize"]["max_len"]


def stage_knobs(
    params: dict | None, stage: str, task: str | None, init: str | None, cfg: str | None
) -> dict:
    """The stage's knobs from the params file (the task's ``per_task`` block and, for the
    equal-exposure baseline, its exposure), then ``--cfg`` on top, key by key, validated."""
    base = stage_config(params, stage, task, init) if params is not None else {}
    return merge_knobs(base, cfg, stage)


def hand_spec(
    params: dict | None,
    stage: str,
    tasks: list[str],
    *,
    init: str | None,
    init_dir: Path | None,
    seed: int,
    typed: tuple[str | None, int | None, str | None],
    out: Path | None,
    cells: dict[str, Path],
    cell: dict,
    size: str | None = None,
    splits: list[str] | None = None,
) -> JobSpec:
    """``typed``: ``--encoder``, ``--max-len`` and ``--cfg`` as given (None: not given). A hand
    run's upstream is its checkpoint's path: the key is a record there, never a path of its own."""
    encoder, max_len = encoder_and_len(params, stage, typed[0], typed[1])
    task = tasks[0] if stage == "finetune" else None
    knobs = stage_knobs(params, stage, task, init, typed[2])
    needed = dict.fromkeys([*tasks, *cells])  # trained and evaluated tasks, in order
    return make_spec(
        stage,
        tasks,
        init,
        seed,
        encoder,
        max_len,
        knobs,
        upstream=str(init_dir) if init_dir else None,
        data={t: str(paths.tokenized_dir(encoder, max_len, t)) for t in needed},
        init_dir=str(init_dir) if init_dir else None,
        out=str(out) if out else None,
        cells={t: str(p) for t, p in cells.items()},
        cell=cell,
        size=size,
        splits=splits,
    )
