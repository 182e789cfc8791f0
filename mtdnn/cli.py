"""The `mtdnn` command: one verb per pipeline stage. Bad input exits 2 with a single-line message."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from mtdnn.errors import MtdnnError
from mtdnn.verbs import COMMANDS

log = logging.getLogger("mtdnn")

DESCRIPTION = """\
MT-DNN reproducibility pipeline (Liu et al. 2019).

The normal entry point is Snakemake, which runs these verbs for every cell of the grid with the
knobs of params.yaml:  snakemake --cores all  (DVC runs the same through `dvc repro` and
`dvc exp run`); its training jobs are `mtdnn run --spec JSON`. Call a verb by hand to run one
step; `mtdnn VERB --help` lists its options.
"""
# Pipeline stages first, in the order data flows through them; then the tools around them.
ORDER = (
    "fetch",
    "prepare",
    "tokenize",
    "run",
    "train-mtl",
    "finetune",
    "evaluate",
    "adapt",
    "report",
    "training-curves",
    "predict",
    "submit",
    "export",
    "subsample",
    "profile",
    "check",
    "tasks",
)


def _rank(name: str) -> int:
    return ORDER.index(name) if name in ORDER else len(ORDER)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse's own code)
        raise MtdnnError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    from mtdnn import commands  # noqa: F401  (registers the verbs)

    parser = _Parser(
        prog="mtdnn",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages too")
    sub = parser.add_subparsers(
        title="verbs, in pipeline order",
        dest="command",
        required=True,
        parser_class=_Parser,
        metavar="VERB",
    )
    for name in sorted(COMMANDS, key=_rank):
        add, run, help = COMMANDS[name]
        p = sub.add_parser(name, help=help, description=help)
        add(p)
        p.set_defaults(run=run)
    return parser


def _threads(n: int | None) -> None:
    """One torch thread per job when Snakemake runs jobs side by side: oversubscription is ~4x slower."""
    if n:
        import torch

        torch.set_num_threads(n)
        os.environ.setdefault("OMP_NUM_THREADS", str(n))


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr
    )
    try:
        args = build_parser().parse_args(argv)
        if args.verbose:
            logging.getLogger().setLevel(logging.DEBUG)
        _threads(getattr(args, "threads", None))
        return args.run(args) or 0
    except MtdnnError as e:
        print(f"mtdnn: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mtdnn: interrupted", file=sys.stderr)
        return 130
