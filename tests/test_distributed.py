"""The GPU and multi-process decisions, checked on the CPU with CUDA mocked: which device each rank
takes, which process group, which dtype per compute capability, where losses are reduced, how batches
are sharded; and a real two-node torchrun rendezvous on the loopback address."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.distributed as dist
from helpers import free_port
from tiny_runs import distributed_project, torchrun, train_losses

from mtdnn import train as train_module
from mtdnn.errors import MtdnnError
from mtdnn.runtime import devices, precision
from mtdnn.training.distributed import Dist


@pytest.fixture
def gpus(monkeypatch):
    """A machine with four CUDA devices of a given compute capability (major version)."""
    calls = {"set_device": []}

    def install(major: int = 8) -> dict:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
        monkeypatch.setattr(torch.cuda, "set_device", calls["set_device"].append)
        monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
        monkeypatch.setattr(
            torch.cuda, "get_device_properties", lambda d: SimpleNamespace(major=major)
        )
        # What torch falls back to below sm_80: a bf16 kernel that runs, emulated (V100, T4).
        monkeypatch.setattr(torch.cuda, "_check_bf16_tensor_supported", lambda d: True)
        monkeypatch.setattr(torch.version, "hip", None)
        return calls

    return install


@pytest.mark.parametrize("local_rank", [0, 3])
def test_each_rank_takes_the_gpu_of_its_local_rank(gpus, monkeypatch, local_rank):
    calls = gpus()
    monkeypatch.setenv("LOCAL_RANK", str(local_rank))
    device = precision.pick_device()
    assert device == torch.device("cuda", local_rank)
    assert calls["set_device"] == [device]


def test_more_ranks_than_gpus_is_a_one_line_error(gpus, monkeypatch):
    gpus()
    monkeypatch.setenv("LOCAL_RANK", "4")
    with pytest.raises(MtdnnError, match="LOCAL_RANK 4: only 4 GPU"):
        precision.pick_device()


def test_without_cuda_the_device_is_the_cpu(monkeypatch):
    for name in devices.VARIABLES:  # nobody asked for a GPU (tests/test_gpu_request.py: if asked)
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert precision.pick_device() == torch.device("cpu")


@pytest.fixture
def process_group(monkeypatch):
    """torch.distributed with init_process_group and DDP recorded instead of run (rank 1 of 2)."""
    seen: dict = {}
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda **kw: seen.update(init=kw))
    monkeypatch.setattr(dist, "get_rank", lambda: 1)

    def ddp(model, **kw):
        seen["ddp"] = kw
        return model

    monkeypatch.setattr(torch.nn.parallel, "DistributedDataParallel", ddp)
    return seen


def test_nccl_group_and_ddp_are_bound_to_the_rank_gpu(process_group):
    d = Dist.from_env(torch.device("cuda", 1))
    init = process_group["init"]
    assert init["backend"] == "cpu:gloo,cuda:nccl"
    assert init["device_id"] == torch.device("cuda", 1)
    assert init["timeout"].total_seconds() >= 3600  # rank-0 evaluation and checkpoint writes
    d.wrap(torch.nn.Linear(2, 2))
    assert process_group["ddp"]["device_ids"] == [1]
    assert (d.rank, d.world, d.device) == (1, 2, torch.device("cuda", 1))


def test_cpu_ranks_use_gloo_and_ddp_without_device_ids(process_group):
    d = Dist.from_env(torch.device("cpu"))
    assert process_group["init"]["backend"] == "gloo"
    assert "device_id" not in process_group["init"]
    d.wrap(torch.nn.Linear(2, 2))
    assert process_group["ddp"]["device_ids"] is None


def test_the_group_a_run_started_is_ended_once_and_no_other(process_group, monkeypatch):
    ended = []
    monkeypatch.setattr(dist, "destroy_process_group", lambda: ended.append("destroyed"))
    mine = Dist.from_env(torch.device("cpu"))  # no group yet: this run starts it
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    mine.close()
    mine.close()
    assert ended == ["destroyed"]
    Dist.from_env(torch.device("cpu")).close()  # a group someone else started stays theirs
    Dist().close()  # a single process has none
    assert ended == ["destroyed"]


def test_training_ends_the_process_group_once_the_run_is_over(monkeypatch):
    calls = []
    ranks = SimpleNamespace(rank=0, world=2, close=lambda: calls.append("close"))
    run = SimpleNamespace(train={}, device=torch.device("cpu"), dtype=None, dist=ranks)
    monkeypatch.setattr(train_module, "build_run", lambda *args, **kw: run)
    monkeypatch.setattr(train_module, "fit", lambda run, stop_after: calls.append("fit") or {})
    assert train_module.train([], "encoder", 64, None, 1, None) == {}
    assert calls == ["fit", "close"]


def test_loss_mean_is_reduced_where_the_losses_live(monkeypatch):
    """NCCL cannot reduce a CPU tensor: the step losses are averaged on their own device."""
    reduced = []

    def all_reduce(t):  # two ranks with the same values: the sum is twice each
        reduced.append(t.device)
        t.mul_(2)

    monkeypatch.setattr(dist, "all_reduce", all_reduce)
    d = Dist(rank=1, world=2, device=torch.device("meta"))
    out = d.mean(torch.ones(3, dtype=torch.float64, device="meta"))
    assert reduced == [torch.device("meta")] and out.device == torch.device("meta")
    values = torch.tensor([0.5, 1.25], dtype=torch.float64)
    assert Dist(rank=0, world=2).mean(values).tolist() == [0.5, 1.25]


@pytest.mark.parametrize(
    ("major", "expected", "scaled"),
    [(7, torch.float16, True), (8, torch.bfloat16, False), (9, torch.bfloat16, False)],
)
def test_auto_precision_by_compute_capability(gpus, major, expected, scaled):
    """V100 (7.0) and T4 (7.5) only emulate bf16: they get fp16 with a loss scaler."""
    gpus(major)
    device = torch.device("cuda", 0)
    dtype = precision.resolve_dtype("auto", device)
    assert dtype == expected
    assert precision.grad_scaler(device, dtype).is_enabled() is scaled


def test_dropout_streams_differ_per_rank_and_rank0_keeps_its_own():
    torch.manual_seed(7)
    torch.rand(5)  # the model build consumed some of the stream
    before = torch.get_rng_state()
    Dist(rank=0, world=2).seed_dropout(7)
    assert torch.equal(torch.get_rng_state(), before)  # a single process is unchanged
    Dist(rank=1, world=2).seed_dropout(7)
    assert torch.initial_seed() == 8


def test_ranking_batches_are_sharded_by_whole_groups():
    groups = np.repeat(np.arange(10), 3)  # 10 groups of 3 candidates
    rows = np.concatenate([np.arange(12, 24), np.arange(0, 6)])  # groups 4-7, then 0-1
    shards = [Dist(r, 2).shard(rows, groups) for r in range(2)]
    assert sorted(np.concatenate(shards).tolist()) == sorted(rows.tolist())
    for shard in shards:
        assert len(shard) == 9
        for g in np.unique(groups[shard]):  # every group present is present whole
            assert set(np.flatnonzero(groups == g)) <= set(shard.tolist())
    assert not set(groups[shards[0]]) & set(groups[shards[1]])
    # Fewer groups than ranks: the batch is processed whole on every rank.
    assert Dist(1, 4).shard(np.arange(6), groups).tolist() == list(range(6))
    # Plain tasks: every n-th row, as before.
    assert Dist(1, 2).shard(np.arange(5)).tolist() == [1, 3]


@pytest.fixture(scope="module")
def nodes_project(tmp_path_factory, glue_dir, derived_dir):
    root = tmp_path_factory.mktemp("nodes")
    return root, distributed_project(root, glue_dir, derived_dir)


def test_two_node_torchrun_rendezvous_matches_one_process(nodes_project):
    """Two torchrun agents, one process each, meet through the c10d rendezvous on the loopback
    address (two "nodes"); their multi-task trajectory equals one process with the same batch."""
    root, encoder = nodes_project
    endpoint = f"127.0.0.1:{free_port()}"
    node = torchrun(
        "--nnodes", "2", "--nproc-per-node", "1", "--rdzv-backend", "c10d",
        "--rdzv-endpoint", endpoint, "--rdzv-id", "mtdnn-two-nodes", "--local-addr", "127.0.0.1",
    )  # fmt: skip
    two = train_losses(root, encoder, [node, node], "two-nodes")
    one = train_losses(root, encoder, [[sys.executable, "-m", "mtdnn"]], "one-node")
    assert len(one) == len(two) == 8
    assert one == pytest.approx(two, rel=1e-4, abs=1e-5)
