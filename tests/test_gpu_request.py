"""No silent CPU fallback: a process that was asked for a GPU (by CUDA_VISIBLE_DEVICES, SLURM's GPU
variables or MTDNN_REQUIRE_GPU) but whose torch cannot use one stops with one line saying what was
asked and what torch sees; a process nobody asked for a GPU runs on the CPU as before."""

from __future__ import annotations

import pytest
import torch
from helpers import one_line_error

from mtdnn.errors import MtdnnError
from mtdnn.runtime import devices, precision


@pytest.fixture
def no_cuda(monkeypatch):
    """A torch without a usable GPU, in an environment that asks for none (until a test sets so)."""
    for name in devices.VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    return monkeypatch


ASKED = [
    ("CUDA_VISIBLE_DEVICES", "0"),  # what workflow/scripts/gpu_slots.py sets
    ("CUDA_VISIBLE_DEVICES", "2,3"),
    ("CUDA_VISIBLE_DEVICES", "GPU-5e3c4b1a-0d6f-4b62-9f0e-1c2d3e4f5a6b"),
    ("CUDA_VISIBLE_DEVICES", "0,-1"),  # CUDA reads up to the first invalid entry: device 0
    ("SLURM_GPUS", "1"),  # sbatch --gpus=1, as the executor plugin passes it
    ("SLURM_GPUS", "a100:2"),
    ("SLURM_GPUS_ON_NODE", "1"),
    ("SLURM_GPUS_PER_NODE", "gpu:4"),
    ("SLURM_GPUS_PER_TASK", "a100:1,v100:0"),
    ("SLURM_JOB_GPUS", "0"),  # a device id: GPU 0, not zero GPUs
    ("SLURM_STEP_GPUS", "0,1"),
    ("MTDNN_REQUIRE_GPU", "1"),  # an explicit request (a wrapper script, a site profile)
    ("MTDNN_REQUIRE_GPU", "true"),
]


@pytest.mark.parametrize(("name", "value"), ASKED)
def test_a_requested_gpu_that_torch_cannot_use_is_a_one_line_error(no_cuda, name, value):
    no_cuda.setenv(name, value)
    with pytest.raises(MtdnnError) as caught:
        precision.pick_device()
    message = str(caught.value)
    assert "\n" not in message
    assert f"{name}={value!r}" in message  # what asked
    assert "torch.cuda.is_available() is False" in message  # what torch sees
    assert f"torch {torch.__version__} built with" in message
    assert "MTDNN_REQUIRE_GPU=0" in message  # what to do, besides fixing torch


NOT_ASKED = [
    {},
    {"CUDA_VISIBLE_DEVICES": ""},  # what benchmarks/gpu_smoke.sh sets for its CPU builds
    {"CUDA_VISIBLE_DEVICES": "-1"},
    {"CUDA_VISIBLE_DEVICES": "NoDevFiles"},  # SLURM, on a node without GPU device files
    {"CUDA_VISIBLE_DEVICES": "-1,0"},
    {"SLURM_GPUS": "0", "SLURM_GPUS_ON_NODE": "0", "SLURM_GPUS_PER_NODE": "gpu:0"},
    {"SLURM_GPUS_PER_TASK": " ", "SLURM_JOB_GPUS": "", "SLURM_STEP_GPUS": ""},
    {"MTDNN_REQUIRE_GPU": "0"},
    # An explicit 0 is the way to run on the CPU inside a GPU allocation or slot.
    {"MTDNN_REQUIRE_GPU": "0", "CUDA_VISIBLE_DEVICES": "0", "SLURM_GPUS": "1"},
]


@pytest.mark.parametrize("env", NOT_ASKED, ids=lambda e: ",".join(f"{k}={v}" for k, v in e.items()))
def test_without_a_request_the_device_is_the_cpu(no_cuda, env):
    for name, value in env.items():
        no_cuda.setenv(name, value)
    assert devices.gpu_request() == []
    assert precision.pick_device() == torch.device("cpu")


def test_every_variable_that_asks_is_named(no_cuda):
    env = {"CUDA_VISIBLE_DEVICES": "1", "SLURM_GPUS": "0", "SLURM_JOB_GPUS": "1"}
    assert devices.gpu_request(env) == ["CUDA_VISIBLE_DEVICES='1'", "SLURM_JOB_GPUS='1'"]


def test_a_bad_require_value_is_a_one_line_error(no_cuda):
    no_cuda.setenv("MTDNN_REQUIRE_GPU", "maybe")
    with pytest.raises(MtdnnError, match=r"^MTDNN_REQUIRE_GPU='maybe': expected 1 .* or 0"):
        precision.pick_device()


@pytest.mark.parametrize(
    ("cuda", "built", "advice"),
    [
        (None, "CUDA none (a CPU build)", "install a torch build with CUDA"),
        ("12.4", "CUDA 12.4", "check the node's driver (nvidia-smi)"),
    ],
)
def test_the_message_says_how_torch_was_built(no_cuda, cuda, built, advice):
    no_cuda.setattr(torch.version, "cuda", cuda)
    no_cuda.setattr(torch.version, "hip", None)
    no_cuda.setenv("SLURM_GPUS_ON_NODE", "1")
    with pytest.raises(MtdnnError, match="built with") as caught:
        precision.pick_device()
    assert f"built with {built}:" in str(caught.value) and advice in str(caught.value)


@pytest.mark.parametrize(
    ("value", "count"),
    [("2", 2), ("gpu:2", 2), ("a100:2", 2), ("gpu:a100:2", 2), ("a100:1,v100:2", 3),
     ("a100", 1), ("gpu:1(S:0-1)", 1), ("0", 0), ("gpu:0", 0), ("", 0)],
)  # fmt: skip
def test_slurm_counts_are_read_as_slurm_writes_them(value, count):
    assert devices.slurm_count(value) == count


def test_a_train_verb_asked_for_a_gpu_fails_before_reading_anything(tmp_path, run_cli):
    """Through the real CLI: device 99 exists nowhere, so torch sees no GPU here or on a GPU node.
    `train-mtl` picks its device before it reads a params file, an encoder or any data."""
    env = {name: None for name in devices.VARIABLES} | {"CUDA_VISIBLE_DEVICES": "99"}
    argv = ["train-mtl", "--tasks", "rte", "--seed", "1", "--out", tmp_path / "model"]
    r = run_cli(argv, tmp_path, env)
    one_line_error(r, "a GPU was asked for (CUDA_VISIBLE_DEVICES='99')", "is_available() is False")
    assert not (tmp_path / "model").exists()
