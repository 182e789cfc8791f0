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
    root: Path, glue: Path, encoder: Path, tasks=("rte", "stsb"), max_len: int = 64
) -> None:
    for name in tasks:
        prepare_task(TASKS[name], root / canonical_dir(name), str(glue))
        tokenize_task(
            TASKS[name],
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


def test_best_checkpoint_is_kept_by_dev_score(project):
    root, _ = project
    summary = run_tiny(project, "best", cfg=TINY.with_overrides(epochs=3))
    scores = [h["score"] for h in summary["history"] if "score" in h]
    assert len(scores) == 3
    assert summary["best_score"] == max(scores)


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


def test_ddp_two_processes_match_one_process(project, tmp_path):
    """torchrun --nproc-per-node 2 (gloo) against one process with the same global batch."""
    root, _ = project
    encoder = tiny_encoder(
        tmp_path / "tiny-nodrop", dropout=0.0
    )  # dropout masks would differ per rank
    build_project(
        root,
        Path(os.environ.get("GLUE_DIR", REPO.parent / "shared/data/glue")),
        encoder,
        tasks=("rte",),
    )
    cfg = json.dumps(
        {
            "max_train_examples": 64,
            "batch_size": 8,
            "epochs": 1,
            "lr": 1e-3,
            "precision": "fp32",
            "eval_each_epoch": False,
            "dropout": 0.0,
        }
    )
    common = [*train_mtl_args(encoder, 3, cfg), "--threads", "1"]
    env = os.environ | {"PYTHONPATH": str(REPO)}
    single = subprocess.run(
        [sys.executable, "-m", "mtdnn", *common, "--out", "one"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    assert single.returncode == 0, single.stderr[-2000:]
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "mtdnn",
    ]
    multi = subprocess.run(
        [*torchrun, *common, "--out", "two"], cwd=root, env=env, capture_output=True, text=True
    )
    assert multi.returncode == 0, multi.stderr[-2000:]
    one = json.loads((root / "one" / "train_summary.json").read_text())["losses"]
    two = json.loads((root / "two" / "train_summary.json").read_text())["losses"]
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
