"""The verbs of the CLI: each declares its arguments and hands them to the module that does the
work (training jobs: ``handrun`` builds the job spec, ``job`` runs it)."""

from __future__ import annotations

import logging
from pathlib import Path

from mtdnn import paths
from mtdnn.config import PARAMS, load_params, task_specs
from mtdnn.errors import MtdnnError
from mtdnn.tasks import get_task
from mtdnn.verbs import command

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
    p.add_argument(
        "--need-train",
        action="store_true",
        help="fail (write nothing) when the training split cannot be had (the workflow trains it)",
    )
    _params_arg(p)


@command("prepare", "ingest a task into canonical parquet (uid, text_a, text_b, label)")(
    _add_prepare
)
def prepare(args) -> None:
    from mtdnn.prepare import prepare_in_project

    params = _params(args)
    task = get_task(_tasks(params), args.task)
    out = args.out or paths.canonical_dir(task.name)
    manifest = prepare_in_project(task, params, args.params, args.glue_dir, out, args.need_train)
    rows = ", ".join(f"{s} {v['rows']}" for s, v in manifest["splits"].items())
    log.info("%s → %s: %s", task.name, out, rows)


def _add_fetch(p) -> None:
    _params_arg(p)


@command(
    "fetch",
    "stage the profile's Hub datasets into data.hub_dir and its encoders into the HF cache "
    "(run once where the Hub is reachable, e.g. a login node)",
)(_add_fetch)
def fetch(args) -> None:
    from mtdnn.ingest.fetch import fetch_profile

    for line in fetch_profile(load_params(args.params), args.params):
        print(line, flush=True)


def _add_tokenize(p) -> None:
    p.add_argument("--task", required=True, help="task name, e.g. rte (see `mtdnn tasks`)")
    p.add_argument(
        "--encoder",
        default=None,
        help="encoder alias or local model directory (default: params encoder, else minilm)",
    )
    p.add_argument(
        "--max-len",
        type=int,
        default=None,
        help="truncate to this many wordpieces (default: params tokenize.max_len, else 128)",
    )
    p.add_argument("--canonical", type=Path, help="input dir (default data/canonical/<task>)")
    p.add_argument(
        "--out", type=Path, help="output dir (default data/tokenized/<enc>-L<len>/<task>)"
    )
    _params_arg(p)


@command("tokenize", "tokenize canonical data with the encoder's fast tokenizer (cached)")(
    _add_tokenize
)
def tokenize(args) -> None:
    from mtdnn.handrun import encoder_and_len
    from mtdnn.model.encoders import resolve_encoder
    from mtdnn.tokenize import tokenize_task

    params = _params(args)
    task = get_task(_tasks(params), args.task)
    enc, max_len = encoder_and_len(params, "tokenize", args.encoder, args.max_len)
    out = args.out or paths.tokenized_dir(enc, max_len, task.name)
    manifest = tokenize_task(
        task, args.canonical or paths.canonical_dir(task.name), out, resolve_encoder(enc), max_len
    )
    log.info("%s → %s: %s", task.name, out, {s: v["rows"] for s, v in manifest["splits"].items()})


def _add_profile(p) -> None:
    p.add_argument("name", help="default | paper | smoke")
    p.add_argument("--out", default=PARAMS, help="file to write (default: ./params.yaml)")


@command("profile", "switch the active profile: rewrite params.yaml from a shipped profile")(
    _add_profile
)
def profile(args) -> None:
    from mtdnn.config import write_profile

    write_profile(args.name, args.out)
    log.info("params.yaml now holds the '%s' profile", args.name)


CFG_HELP = (
    "knobs as a JSON object, applied key by key over the params file's stage "
    """(e.g. '{"lr": 2e-5}')"""
)
THREADS_HELP = "torch threads (the workflow passes the job's threads)"


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


def _knob_args(p) -> None:
    """What a hand-typed training verb may set over the params file (and its threads)."""
    p.add_argument(
        "--encoder", help="encoder alias or local model directory (default: params encoder)"
    )
    p.add_argument("--max-len", type=int, help="max wordpieces (default: params tokenize.max_len)")
    p.add_argument("--cfg", help=CFG_HELP)
    p.add_argument("--threads", type=int, help=THREADS_HELP)


def _train_args(p, multi: bool) -> None:
    if multi:
        p.add_argument("--tasks", required=True, help="comma-separated task names")
    else:
        p.add_argument("--task", required=True, help="the task to fine-tune")
        p.add_argument(
            "--init",
            dest="init_from",
            type=Path,
            metavar="DIR",
            help="MT-DNN checkpoint to start from (default: plain encoder)",
        )
        p.add_argument(
            "--baseline",
            choices=["base", "equal"],
            help="from the plain encoder: base, standard fine-tuning (the default), or equal, "
            "the equal-exposure schedule (the task's multi-task rows and epochs added)",
        )
    p.add_argument("--seed", type=int, required=True, help="seed for weights, batches and dropout")
    p.add_argument("--out", type=Path, required=True, help="model directory to write")
    _knob_args(p)
    p.add_argument("--stop-after", type=int, help=argparse_suppress())
    if multi:
        p.add_argument(
            "--cells",
            metavar="PATTERN",
            help="also evaluate the trained model: one table cell per task, written to PATTERN "
            "with {task} replaced by the task name",
        )
        p.add_argument(
            "--eval-tasks", help="comma-separated tasks to write cells for (default: --tasks)"
        )
    else:
        p.add_argument(
            "--cell-out",
            type=Path,
            metavar="JSON",
            help="also evaluate the trained model on the task's dev splits: the table cell to write",
        )
    p.add_argument(
        "--cell", action="append", default=[], metavar="KEY=VALUE", help="cell coordinates"
    )
    _params_arg(p)


def argparse_suppress() -> str:
    import argparse

    return argparse.SUPPRESS


def _names(text: str | None) -> list[str]:
    return [t for t in (text or "").split(",") if t]


def _hand_job(args, stage: str, tasks: list[str], init: str | None, **where) -> None:
    """A hand-typed training verb: its job spec, built as the workflow's are, then the job.
    ``where``: ``out`` and ``cells`` (and adaptation's ``size`` and ``splits``)."""
    from mtdnn.handrun import hand_spec
    from mtdnn.job import run_job

    params = _params(args)
    spec = hand_spec(
        params,
        stage,
        tasks,
        init=init,
        init_dir=getattr(args, "init_from", None),
        seed=args.seed,
        typed=(args.encoder, args.max_len, args.cfg),
        cell=dict(_kv(c) for c in getattr(args, "cell", [])),
        **where,
    )
    run_job(spec, _tasks(params), getattr(args, "stop_after", None))


@command("train-mtl", "multi-task training (Algorithm 1) of the shared encoder and all heads")(
    lambda p: _train_args(p, multi=True)
)
def train_mtl(args) -> None:
    tasks, pattern = _names(args.tasks), args.cells
    named = _names(args.eval_tasks) or tasks
    cells = {t: Path(pattern.replace("{task}", t)) for t in named} if pattern is not None else {}
    _hand_job(args, "mtl", tasks, None, out=args.out, cells=cells)


@command(
    "finetune", "fine-tune one task, from an MT-DNN checkpoint or the plain encoder (baseline)"
)(lambda p: _train_args(p, multi=False))
def finetune(args) -> None:
    if args.init_from is not None and args.baseline is not None:
        raise MtdnnError("--baseline: a baseline starts from the plain encoder, not from --init")
    init = "mtdnn" if args.init_from is not None else args.baseline or "base"
    cells = {args.task: args.cell_out} if args.cell_out is not None else {}
    _hand_job(args, "finetune", [args.task], init, out=args.out, cells=cells)


def _add_run(p) -> None:
    p.add_argument(
        "--spec",
        required=True,
        metavar="JSON",
        help="the job spec as JSON (what the workflow's training rules pass): stage, tasks, "
        "knobs and their key, data and output paths, cell coordinates",
    )
    p.add_argument("--threads", type=int, help=THREADS_HELP)
    _params_arg(p)


@command(
    "run",
    "run one training job (multi-task, fine-tuning or adaptation) from its job spec; the "
    "params file gives the task registry only",
)(_add_run)
def run(args) -> None:
    from mtdnn.job import run_job
    from mtdnn.jobspec import JobSpec

    spec = JobSpec.from_json(args.spec)
    run_job(spec, _tasks(_params(args)))


def _add_evaluate(p) -> None:
    p.add_argument("--model", type=Path, required=True, help="a trained model directory")
    p.add_argument("--task", required=True, help="task to evaluate (ax uses the mnli head)")
    p.add_argument("--out", type=Path, required=True, help="cell JSON to write")
    p.add_argument("--splits", help="comma-separated splits (default: the task's dev splits)")
    p.add_argument("--predictions", type=Path, help="directory for <task>-<split>.tsv predictions")
    p.add_argument(
        "--cell", action="append", default=[], metavar="KEY=VALUE", help="cell coordinates"
    )
    p.add_argument("--threads", type=int, help=THREADS_HELP)
    _params_arg(p)


@command(
    "evaluate", "evaluate a model on a task's dev splits; write one table cell with provenance"
)(_add_evaluate)
def evaluate(args) -> None:
    from mtdnn.evaluate import evaluate_cell

    cell = dict(_kv(c) for c in args.cell)
    splits = _names(args.splits) or None
    registry = _tasks(_params(args))
    task = get_task(registry, args.task)
    evaluate_cell(args.model, task, args.out, splits, args.predictions, cell, registry=registry)


def _kv(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise MtdnnError(f"--cell: expected KEY=VALUE, got '{text}'")
    key, value = text.split("=", 1)
    return key, value


def _add_report(p) -> None:
    p.add_argument("table", choices=["glue", "adapt"], help="which table: glue | adapt")
    p.add_argument("cells", nargs="+", type=Path, help="cell JSON files")
    p.add_argument("--csv", type=Path, required=True, help="table CSV to write")
    p.add_argument("--markdown", type=Path, help="the same table as Markdown")
    p.add_argument("--metrics", type=Path, help="flat metrics JSON for `dvc exp show`")
    p.add_argument("--plot", type=Path, help="PNG plot (adapt table)")
    p.add_argument(
        "--forest",
        type=Path,
        help="PNG forest plot of the bootstrap differences and their 95 %% intervals (or, with "
        "none, a figure saying why)",
    )
    p.add_argument("--decimals", type=int, default=1, help="decimals in the tables (default 1)")
    p.add_argument(
        "--skipped",
        default="",
        help="comma-separated tasks the profile names but left out (data.optional_tasks); "
        "the Markdown table names them in a footnote",
    )
    p.add_argument(
        "--replicates",
        type=int,
        default=10_000,
        help="paired-bootstrap resamples of the dev examples behind the intervals, each cell's "
        "predictions read from beside it (default 10000)",
    )


@command("report", "build a results table (CSV + Markdown + flat metrics) from cell JSONs")(
    _add_report
)
def report(args) -> None:
    from mtdnn.report import glue as rep

    skipped = [t for t in args.skipped.split(",") if t]
    rep.build(
        args.table,
        args.cells,
        args.csv,
        args.markdown,
        args.metrics,
        args.plot,
        args.decimals,
        skipped,
        args.replicates,
        args.forest,
    )


def _add_curves(p) -> None:
    p.add_argument(
        "models",
        nargs="+",
        metavar="[NAME=]DIR",
        help="a trained model directory and the stable name its curves get, e.g. mtdnn-rte-seed1=DIR;"
        " a directory of the models/ layout is named by its place there (mtl-seed1, base-rte-seed1)",
    )
    p.add_argument("--out", type=Path, required=True, help="directory to write (replaced whole)")
    p.add_argument(
        "--summaries",
        type=Path,
        help="directory for each model's DVCLive metrics.json as NAME.json (replaced whole)",
    )


@command(
    "training-curves",
    "copy models' per-step loss and per-epoch dev metrics under stable names, for `dvc plots`"
    " (and their DVCLive summaries, for `dvc exp show`)",
)(_add_curves)
def training_curves(args) -> None:
    from mtdnn.plots import collect

    models: dict[str, Path] = {}
    for text in args.models:
        name, path = _curve_name(text)
        if name in models:
            raise MtdnnError(
                f"training-curves: two models named '{name}': {models[name]} and {path}"
            )
        models[name] = path
    for path in collect(models, args.out, args.summaries):
        log.debug("wrote %s", path)


def _curve_name(text: str) -> tuple[str, Path]:
    """(stable name, directory) of one ``[NAME=]DIR`` argument of `training-curves`."""
    name, sep, path = text.partition("=")
    if not sep:
        name, path = paths.model_name(text), text
        if name is None:
            raise MtdnnError(
                f"training-curves: {text} is not a models/ directory of the layout; name it NAME=DIR"
            )
    if not name or "/" in name:
        raise MtdnnError(f"training-curves: expected NAME=DIR with a plain NAME, got '{text}'")
    return name, Path(path)


def _add_adapt(p) -> None:
    p.add_argument("--task", required=True, help="target dataset, e.g. snli or scitail")
    p.add_argument("--size", required=True, help="n<count> or p<fraction>, e.g. n549 or p0.001")
    p.add_argument(
        "--init",
        dest="init_from",
        type=Path,
        metavar="DIR",
        help="MT-DNN checkpoint (default: plain encoder)",
    )
    p.add_argument("--seed", type=int, required=True, help="subsample and training seed")
    p.add_argument("--out", type=Path, required=True, help="cell JSON to write")
    p.add_argument("--splits", default="dev", help="comma-separated evaluation splits")
    _knob_args(p)
    p.add_argument("--keep-model", type=Path, help="also keep the adapted model here")
    _params_arg(p)


@command("adapt", "domain adaptation: fine-tune on a seeded subsample of a target task, evaluate")(
    _add_adapt
)
def adapt(args) -> None:
    init = "mtdnn" if args.init_from is not None else "base"
    where = {"out": args.keep_model, "cells": {args.task: args.out}}
    _hand_job(args, "adapt", [args.task], init, size=args.size, splits=_names(args.splits), **where)


def _add_subsample(p) -> None:
    p.add_argument("--task", required=True, help="target dataset, e.g. snli")
    p.add_argument("--size", required=True, help="n<count> or p<fraction>")
    p.add_argument("--seed", type=int, required=True, help="subsample seed")
    p.add_argument("--out", type=Path, required=True, help="TSV of the drawn uids and labels")
    p.add_argument("--canonical", type=Path, help="input dir (default data/canonical/<task>)")
    _params_arg(p)


@command("subsample", "write the exact training subsample a domain-adaptation cell uses")(
    _add_subsample
)
def subsample_cmd(args) -> None:
    from mtdnn.adapt import write_subsample

    task = get_task(_tasks(_params(args)), args.task)
    canonical = args.canonical or paths.canonical_dir(task.name)
    write_subsample(task, canonical, args.size, args.seed, args.out)


def _add_export(p) -> None:
    p.add_argument("--model", type=Path, required=True, help="a trained model directory")
    p.add_argument("--out", type=Path, required=True, help="directory to write")
    p.add_argument(
        "--cell",
        action="append",
        type=Path,
        metavar="JSON",
        help="a table cell of the model, for the card's eval results (repeatable; default: the "
        "model's cells under results/cells/, found by the workflow's paths)",
    )
    _params_arg(p)


@command(
    "export",
    "write the shared encoder as a save_pretrained directory (AutoModel loads it) with a model "
    "card (README.md), ready for `hf upload`",
)(_add_export)
def export(args) -> None:
    from mtdnn.export import export_encoder

    export_encoder(args.model, args.out, args.cell, _tasks(_params(args)))
    log.info("encoder and model card exported to %s", args.out)


def _add_predict(p) -> None:
    p.add_argument("--model", type=Path, required=True, help="a trained model directory")
    p.add_argument("--task", required=True, help="the task whose head predicts")
    p.add_argument("--input", type=Path, help="TSV with a text_a (and text_b) column")
    p.add_argument("--text-a", action="append", default=[], help="a sentence (repeatable)")
    p.add_argument("--text-b", action="append", default=[], help="its pair (repeatable)")
    p.add_argument("--out", type=Path, help="TSV to write (default: stdout)")
    _params_arg(p)


@command("predict", "raw sentences or pairs in, labels or scores out")(_add_predict)
def predict_cmd(args) -> None:
    from mtdnn.predict import predict, read_inputs, write_tsv

    if args.input is None and not args.text_a:
        raise MtdnnError("predict: give --input FILE or at least one --text-a")
    inputs = read_inputs(args.input, args.text_a, args.text_b)
    write_tsv(predict(args.model, args.task, inputs, _tasks(_params(args))), args.out)


def _add_submit(p) -> None:
    p.add_argument("--model", type=Path, required=True, help="model that has the task's head")
    p.add_argument("--task", required=True, help="task to predict (ax uses the mnli head)")
    p.add_argument("--out", type=Path, required=True, help="submission directory")
    _params_arg(p)


@command("submit", "write GLUE test-set submission TSVs (GLUE's file names and label strings)")(
    _add_submit
)
def submit(args) -> None:
    from mtdnn.submit import write_task

    registry = _tasks(_params(args))
    for path in write_task(args.model, get_task(registry, args.task), args.out, registry):
        log.info("wrote %s", path)
