"""Verb implementations for the CLI. Each is a thin shell over a library function."""

from __future__ import annotations

import logging
import shutil
from importlib import resources
from pathlib import Path

from mtdnn import paths
from mtdnn.cli import command
from mtdnn.config import PARAMS, load_params, task_specs
from mtdnn.errors import MtdnnError
from mtdnn.tasks import get_task, parse_file_source

log = logging.getLogger("mtdnn")


def _params(args) -> dict | None:
    """params.yaml is optional for data verbs: without it, GLUE_DIR or the Hub decide."""
    path = Path(args.params)
    if path.is_file():
        return load_params(path)
    if args.params != PARAMS:
        raise MtdnnError(f"{args.params}: file not found")
    return None


def _tasks(params: dict | None):
    from mtdnn.tasks import load_tasks

    return task_specs(params) if params else load_tasks()


def _params_arg(p) -> None:
    p.add_argument(
        "--params", default=PARAMS, help="params file (default: ./params.yaml if present)"
    )


def _add_prepare(p) -> None:
    p.add_argument("--task", required=True, help="task name, e.g. rte (see `mtdnn tasks`)")
    p.add_argument("--out", type=Path, help="output dir (default data/canonical/<task>)")
    p.add_argument(
        "--glue-dir", help="local GLUE-layout directory (overrides params and $GLUE_DIR)"
    )
    _params_arg(p)


@command("prepare", "ingest a task into canonical parquet (uid, text_a, text_b, label)")(
    _add_prepare
)
def prepare(args) -> None:
    from mtdnn.data import prepare_task

    params = _params(args)
    task = get_task(_tasks(params), args.task)
    data = params["data"] if params else {"glue_dir": None, "sources": {}}
    where = f"{args.params}: data.sources.{task.name}"
    overrides = {
        s: parse_file_source(b, f"{where}.{s}")
        for s, b in data["sources"].get(task.name, {}).items()
    }
    out = args.out or paths.canonical_dir(task.name)
    manifest = prepare_task(task, out, args.glue_dir or data["glue_dir"], overrides)
    rows = ", ".join(f"{s} {v['rows']}" for s, v in manifest["splits"].items())
    log.info("%s → %s: %s", task.name, out, rows)


def _add_tokenize(p) -> None:
    p.add_argument("--task", required=True)
    p.add_argument(
        "--encoder", default=None, help="encoder alias (default: params encoder, else minilm)"
    )
    p.add_argument("--max-len", type=int, default=None)
    p.add_argument("--canonical", type=Path, help="input dir (default data/canonical/<task>)")
    p.add_argument(
        "--out", type=Path, help="output dir (default data/tokenized/<enc>-L<len>/<task>)"
    )
    _params_arg(p)


@command("tokenize", "tokenize canonical data with the encoder's fast tokenizer (cached)")(
    _add_tokenize
)
def tokenize(args) -> None:
    from mtdnn.encoders import resolve_encoder
    from mtdnn.tokenization import tokenize_task

    params = _params(args)
    task = get_task(_tasks(params), args.task)
    enc = args.encoder or (params["encoder"] if params else "minilm")
    max_len = args.max_len or (params["tokenize"]["max_len"] if params else 128)
    out = args.out or paths.tokenized_dir(enc, max_len, task.name)
    manifest = tokenize_task(
        task, args.canonical or paths.canonical_dir(task.name), out, resolve_encoder(enc), max_len
    )
    log.info("%s → %s: %s", task.name, out, {s: v["rows"] for s, v in manifest["splits"].items()})


def _add_profile(p) -> None:
    p.add_argument("name", help="default | paper | smoke")
    p.add_argument("--out", default=PARAMS)


@command("profile", "switch the active profile: rewrite params.yaml from a shipped profile")(
    _add_profile
)
def profile(args) -> None:
    from mtdnn.fileio import atomic_path

    src = resources.files("mtdnn") / "profiles" / f"{args.name}.yaml"
    if not src.is_file():
        names = sorted(
            p.name.removesuffix(".yaml") for p in (resources.files("mtdnn") / "profiles").iterdir()
        )
        raise MtdnnError(f"unknown profile '{args.name}' (expected one of {', '.join(names)})")
    with atomic_path(args.out) as tmp, resources.as_file(src) as f:
        shutil.copyfile(f, tmp)
    log.info("params.yaml now holds the '%s' profile", args.name)


def _add_check(p) -> None:
    _params_arg(p)


@command("check", "validate params.yaml against the schema and the task registry")(_add_check)
def check(args) -> None:
    params = load_params(args.params)
    print(f"{args.params}: ok (profile {params['profile']})")


def _add_tasks(p) -> None:
    _params_arg(p)


@command("tasks", "list the known tasks")(_add_tasks)
def tasks(args) -> None:
    for t in _tasks(_params(args)).values():
        print(f"{t.name:10s} {t.type.value:15s} {','.join(t.metrics):20s} {' '.join(t.splits)}")


def _train_args(p, multi: bool) -> None:
    if multi:
        p.add_argument("--tasks", required=True, help="comma-separated task names")
    else:
        p.add_argument("--task", required=True)
        p.add_argument(
            "--init",
            dest="init_from",
            type=Path,
            help="MT-DNN checkpoint to start from (default: plain encoder)",
        )
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--encoder", help="encoder alias (default: params encoder)")
    p.add_argument("--max-len", type=int)
    p.add_argument("--cfg", help="the stage's knobs as JSON (what the workflow passes)")
    p.add_argument(
        "--threads", type=int, help="torch threads (the workflow passes the job's threads)"
    )
    p.add_argument("--stop-after", type=int, help=argparse_suppress())
    _params_arg(p)


def argparse_suppress() -> str:
    import argparse

    return argparse.SUPPRESS


def _train_inputs(args, stage: str, task: str | None):
    """(TrainConfig, encoder, max_len): --cfg JSON when given, else the params file's stage section."""
    import json

    from mtdnn.config import TrainConfig, stage_config

    params = _params(args)
    if args.cfg is not None:
        try:
            knobs = json.loads(args.cfg)
        except json.JSONDecodeError as e:
            raise MtdnnError(f"--cfg: invalid JSON ({e.msg})") from None
    elif params is not None:
        knobs = stage_config(params, stage, task)
    else:
        knobs = {}
    enc = args.encoder or (params["encoder"] if params else "minilm")
    max_len = args.max_len or (params["tokenize"]["max_len"] if params else 128)
    return TrainConfig.from_dict(knobs), enc, max_len, params


@command("train-mtl", "multi-task training (Algorithm 1) of the shared encoder and all heads")(
    lambda p: _train_args(p, multi=True)
)
def train_mtl(args) -> None:
    from mtdnn.runner import train

    cfg, enc, max_len, params = _train_inputs(args, "mtl", None)
    specs = _tasks(params)
    tasks = [get_task(specs, t) for t in args.tasks.split(",") if t]
    train(tasks, enc, max_len, cfg, args.seed, args.out, None, args.stop_after)


@command(
    "finetune", "fine-tune one task, from an MT-DNN checkpoint or the plain encoder (baseline)"
)(lambda p: _train_args(p, multi=False))
def finetune(args) -> None:
    from mtdnn.runner import train

    cfg, enc, max_len, params = _train_inputs(args, "finetune", args.task)
    task = get_task(_tasks(params), args.task)
    train([task], enc, max_len, cfg, args.seed, args.out, args.init_from, args.stop_after)
