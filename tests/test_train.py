"""The training loop: exact resume, determinism, DDP equivalence, and a real multi-task smoke run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from fixtures import read_tsv, write_tsv
from safetensors.torch import load_file

from mtdnn.config import TrainConfig
from mtdnn.data import prepare_task
from mtdnn.encoders import resolve_encoder
from mtdnn.paths import canonical_dir, tokenized_dir
from mtdnn.runner import train
from mtdnn.tasks import load_tasks
from mtdnn.tokenization import tokenize_task

REPO = Path(__file__).resolve().parents[1]
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


def tiny_encoder(dest: Path, dropout: float = 0.1) -> Path:
    """A random 2-layer BERT with the real MiniLM tokenizer: fast, and tokenizes like the real one."""
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(dest)
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


@pytest.fixture(scope="module")
def project(tmp_path_factory, glue_dir):
    root = tmp_path_factory.mktemp("train")
    encoder = tiny_encoder(root / "tiny-bert")
    build_project(root, glue_dir, encoder)
    old = os.getcwd()
    os.chdir(root)
    torch.set_num_threads(1)
    yield root, encoder
    os.chdir(old)


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


def test_resume_mid_epoch_is_bitwise_identical(project):
    root, _ = project
    full = run_tiny(project, "full")
    assert run_tiny(project, "interrupted", stop_after=5) is None  # 5 of 8 steps of epoch 0
    assert (root / "interrupted.resume" / "last" / "trainer_state.json").is_file()
    assert not (root / "interrupted").exists()  # no partial output
    resumed = run_tiny(project, "interrupted")
    assert_same_weights(root / "full", root / "interrupted")
    assert resumed["losses"] == full["losses"]
    assert [h.get("dev") for h in resumed["history"]] == [h.get("dev") for h in full["history"]]
    assert not (root / "interrupted.resume").exists()  # cleaned up after success


def test_same_seed_same_metrics_other_seed_differs(project):
    root, _ = project
    a, b, c = run_tiny(project, "s7a"), run_tiny(project, "s7b"), run_tiny(project, "s8", seed=8)
    assert a["history"] == b["history"] and a["losses"] == b["losses"]
    assert_same_weights(root / "s7a", root / "s7b")
    assert c["losses"] != a["losses"]


def test_best_checkpoint_is_kept_by_holdout_score_never_dev(project):
    root, _ = project
    summary = run_tiny(project, "best", cfg=TINY.with_overrides(epochs=3, holdout_examples=24))
    scores = [h["score"] for h in summary["history"] if "score" in h]
    assert len(scores) == 3 and all("holdout" in h for h in summary["history"])
    assert summary["best_score"] == max(scores)
    # dev metrics are recorded each epoch but are not what the score is computed on
    assert all(h["dev"] != h["holdout"] for h in summary["history"])


def test_without_holdout_the_last_epoch_is_the_model(project):
    root, _ = project
    last = run_tiny(project, "last", cfg=TINY.with_overrides(epochs=2))
    assert last["best_score"] is None and all("score" not in h for h in last["history"])
    # stopped in epoch 1 (16 batches an epoch): epoch 0 was evaluated on dev, nothing was kept
    assert run_tiny(project, "last-stopped", stop_after=20) is None
    assert (root / "last-stopped.resume" / "last").is_dir()
    assert not (root / "last-stopped.resume" / "best").exists()


def test_compiled_encoder_trains_like_eager(project, tmp_path, glue_dir):
    """`compile: true` runs the encoder under torch.compile: same checkpoint layout, same losses.

    The encoder has no dropout here, so eager and compiled runs draw no random numbers inside the
    compiled graph and must agree up to the fused kernels' rounding.
    """
    root, _ = project
    encoder = tiny_encoder(tmp_path / "no-dropout", dropout=0.0)
    build_project(root, glue_dir, encoder, tasks=("rte",))
    cfg = TINY.with_overrides(epochs=1, eval_each_epoch=False)
    runs, graphs = {}, {}
    for name, compiled in (("eager", False), ("compiled", True)):
        torch._dynamo.utils.counters.clear()
        runs[name] = train(
            [TASKS["rte"]],
            str(encoder),
            64,
            cfg.with_overrides(compile=compiled),
            7,
            tmp_path / name,
        )
        graphs[name] = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    assert graphs == {"eager": 0, "compiled": graphs["compiled"]} and graphs["compiled"] > 0
    assert weights(tmp_path / "eager").keys() == weights(tmp_path / "compiled").keys()
    eager, compiled = runs["eager"]["losses"], runs["compiled"]["losses"]
    assert len(eager) == len(compiled) > 0
    assert compiled == pytest.approx(eager, rel=1e-3, abs=1e-4)


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
    env = os.environ | {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
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


@pytest.fixture(scope="module")
def dist_project(tmp_path_factory, glue_dir, derived_dir):
    root = tmp_path_factory.mktemp("dist")
    return root, distributed_project(root, glue_dir, derived_dir)


def test_ddp_two_processes_match_one_process(dist_project):
    """torchrun --nproc-per-node 2 (gloo) against one process with the same global batch, on a
    classification task and a ranking task (whose groups must stay whole on one rank)."""
    root, encoder = dist_project
    one = train_losses(root, encoder, [[sys.executable, "-m", "mtdnn"]], "one")
    two = train_losses(root, encoder, [torchrun("--standalone", "--nproc-per-node", "2")], "two")
    assert len(one) == len(two) == 8
    # Same global batch, gradients averaged by DDP: only float summation order differs.
    assert one == pytest.approx(two, rel=1e-4, abs=1e-5)


def test_real_multitask_smoke_then_finetune_then_metrics(tmp_path, glue_dir, run_cli):
    """Real data, real encoder: MTL on RTE, MRPC, STS-B and CoLA, fine-tune RTE, write a metrics cell."""
    env = {"GLUE_DIR": glue_dir}
    for task in ("rte", "mrpc", "stsb", "cola"):
        assert run_cli(["prepare", "--task", task], tmp_path, env).returncode == 0
        assert run_cli(["tokenize", "--task", task], tmp_path, env).returncode == 0
    mtl_cfg = json.dumps({"max_train_examples": 200, "epochs": 1, "eval_each_epoch": False})
    r = run_cli(
        [
            "train-mtl",
            "--tasks",
            "rte,mrpc,stsb,cola",
            "--seed",
            "1",
            "--cfg",
            mtl_cfg,
            "--out",
            "models/mtl",
            "--threads",
            "2",
        ],
        tmp_path,
        env,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    ft_cfg = json.dumps({"max_train_examples": 200, "epochs": 1, "eval_each_epoch": True})
    r = run_cli(
        [
            "finetune",
            "--task",
            "rte",
            "--init",
            "models/mtl",
            "--seed",
            "1",
            "--cfg",
            ft_cfg,
            "--out",
            "models/rte",
            "--threads",
            "2",
        ],
        tmp_path,
        env,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    r = run_cli(
        [
            "evaluate",
            "--model",
            "models/rte",
            "--task",
            "rte",
            "--out",
            "cell.json",
            "--cell",
            "model=mtdnn",
            "--cell",
            "seed=1",
        ],
        tmp_path,
        env,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    cell = json.loads((tmp_path / "cell.json").read_text())
    assert 0 <= cell["metrics"]["dev"]["accuracy"] <= 100
    prov = cell["provenance"]
    assert prov["encoder"] == "minilm" and prov["seed"] == 1 and prov["wall_seconds"] > 0
    assert set(prov["data_sha256"]["canonical"]["rte"]) == {"train", "dev", "test"}
    summary = json.loads((tmp_path / "models/mtl/train_summary.json").read_text())
    assert len(summary["losses"]) == 4 * 7  # 200 examples per task at batch 32: 7 batches each
