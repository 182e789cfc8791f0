"""Tiny training runs shared by the training tests: a random 2-layer BERT with the real MiniLM
tokenizer, a prepared and tokenized project, the tiny config, weight comparison, and the two-task
distributed setup (RTE plus SNLI in ranking form)."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from fixtures import read_tsv, write_tsv
from helpers import REPO, subprocess_env
from safetensors.torch import load_file

from mtdnn.config import TrainConfig
from mtdnn.model.encoders import resolve_encoder
from mtdnn.paths import canonical_dir, tokenized_dir
from mtdnn.prepare import prepare_task
from mtdnn.tasks import load_tasks
from mtdnn.tokenize import tokenize_task
from mtdnn.train import train

TASKS = load_tasks()
TINY = TrainConfig(
    max_train_examples=64,
    max_eval_examples=48,
    batch_size=8,
    epochs=2,
    lr=1e-3,
    precision="fp32",
    eval_each_epoch=True,
)


def tiny_bert_config(dropout: float = 0.1, vocab_size: int = 30522, heads: int = 2):
    """A 2-layer BERT of width 32: a model that runs in milliseconds."""
    from transformers import BertConfig

    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=heads,
        intermediate_size=64,
        max_position_embeddings=128,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )


def tiny_encoder(dest: Path, dropout: float = 0.1) -> Path:
    """A random 2-layer BERT with the real MiniLM tokenizer: fast, and tokenizes like the real one."""
    from transformers import BertModel

    torch.manual_seed(0)
    BertModel(tiny_bert_config(dropout)).save_pretrained(dest)
    src = Path(resolve_encoder("minilm"))
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(src / name, dest / name)
    return dest


def train_mtl_args(encoder, seed: int, cfg: str, tasks: str = "rte", max_len: int = 64) -> list:
    """`mtdnn train-mtl` arguments on the tiny encoder (add "--out", ... and any extra flags)."""
    return ["train-mtl", "--tasks", tasks, "--encoder", str(encoder), "--max-len", str(max_len),
            "--seed", str(seed), "--cfg", cfg]  # fmt: skip


def build_project(
    root: Path, glue: Path, encoder: Path, tasks=("rte", "stsb"), max_len: int = 64, specs=TASKS
) -> None:
    for name in tasks:
        prepare_task(specs[name], root / canonical_dir(name), str(glue))
        tokenize_task(
            specs[name],
            root / canonical_dir(name),
            root / tokenized_dir(str(encoder), max_len, name),
            str(encoder),
            max_len,
        )


@contextlib.contextmanager
def inside_tiny_project(root: Path, glue: Path, tasks=("rte", "stsb")):
    """A tiny encoder and ``tasks`` prepared and tokenized in ``root``; the working directory and one
    torch thread for the duration. Yields (root, encoder)."""
    encoder = tiny_encoder(root / "tiny-bert")
    build_project(root, glue, encoder, tasks=tasks)
    with pytest.MonkeyPatch.context() as mp:  # module-scoped fixtures have no `monkeypatch`
        mp.chdir(root)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield root, encoder
        finally:
            torch.set_num_threads(threads)


def weights(model_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(model_dir / "model.safetensors"))


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), f"parameter {k} differs"


def run_tiny(project, out: str, seed: int = 7, stop_after=None, cfg: TrainConfig = TINY):
    root, encoder = project
    return train(
        [TASKS["rte"], TASKS["stsb"]],
        str(encoder),
        64,
        cfg,
        seed,
        root / out,
        stop_after=stop_after,
    )


# The paper's ranking formulation on real data that is in ranking form: SNLI premises, each with
# its three hypotheses as candidates, the entailed one the positive.
RANK_TASK = {
    "snli-rank": {
        "type": "ranking",
        "labels": ["entailment", "neutral", "contradiction"],
        "positive_label": "entailment",
        "metrics": ["accuracy"],
        "test_splits": [],
        "local": {
            "dir": "SNLI-rank",
            "columns": {"text_a": "premise", "text_b": "hypothesis", "label": "label"},
            "splits": {"train": {"file": "train.tsv"}, "dev": {"file": "dev.tsv"}},
        },
    }
}
# 48 rows per task at batch 12: RTE batches split 6 + 6 rows, snli-rank batches 2 + 2 whole groups.
DIST_CFG = json.dumps(
    {
        "max_train_examples": 48,
        "batch_size": 12,
        "epochs": 1,
        "lr": 1e-3,
        "precision": "fp32",
        "eval_each_epoch": False,
        "dropout": 0.0,  # dropout masks differ per rank by design
        "checkpoint_every": None,
    }
)


def snli_triples(derived: Path, n: int) -> list[list[str]]:
    """The first ``n`` SNLI dev premises that have exactly three hypotheses, one per label."""
    _, rows = read_tsv(derived / "SNLI" / "dev.tsv")
    by_premise: dict[str, list[list[str]]] = {}
    for row in rows:
        by_premise.setdefault(row[0], []).append(row)
    labels = sorted(RANK_TASK["snli-rank"]["labels"])
    whole = [g for g in by_premise.values() if sorted(r[2] for r in g) == labels]
    assert len(whole) >= n
    return [row for group in whole[:n] for row in group]


def distributed_project(root: Path, glue: Path, derived: Path) -> Path:
    """RTE plus snli-rank in ``root`` (params.yaml names the custom task); returns the encoder.

    The encoder has no dropout: ranks draw different masks, so only then can DDP match one process.
    """
    data = root / "data-in"
    data.mkdir()
    (data / "RTE").symlink_to(glue / "RTE", target_is_directory=True)
    triples = snli_triples(derived, 24)
    write_tsv(data / "SNLI-rank" / "train.tsv", ["premise", "hypothesis", "label"], triples[:48])
    write_tsv(data / "SNLI-rank" / "dev.tsv", ["premise", "hypothesis", "label"], triples[48:])
    (root / "tasks.yaml").write_text(yaml.safe_dump(RANK_TASK))
    params = yaml.safe_load((REPO / "mtdnn/profiles/smoke.yaml").read_text())
    params["data"] |= {"task_files": [str(root / "tasks.yaml")], "sources": {}}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    encoder = tiny_encoder(root / "tiny-nodrop", dropout=0.0)
    specs = load_tasks([root / "tasks.yaml"])
    build_project(root, data, encoder, tasks=("rte", "snli-rank"), specs=specs)
    return encoder


def torchrun(*flags: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", *flags, "-m", "mtdnn"]


def train_losses(root: Path, encoder: Path, launchers: list[list[str]], out: str) -> list[float]:
    """Multi-task training on RTE + snli-rank, one process per launcher, all started together
    (the nodes of one job); returns the per-step losses (averaged over ranks) from the summary."""
    args = [*train_mtl_args(encoder, 3, DIST_CFG, tasks="rte,snli-rank"), "--threads", "1"]
    env = subprocess_env({"OMP_NUM_THREADS": 1})
    procs = [
        subprocess.Popen(
            [*launcher, *args, "--out", out],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for launcher in launchers
    ]
    logs = [p.communicate(timeout=600)[0] for p in procs]
    for proc, log in zip(procs, logs, strict=True):
        assert proc.returncode == 0, log[-3000:]
    world = len(launchers) if len(launchers) > 1 else None
    if world:  # every node joined the same job
        for rank in range(world):
            assert sum(f"rank {rank} of {world}" in log for log in logs) == 1, logs
    return json.loads((root / out / "train_summary.json").read_text())["losses"]
