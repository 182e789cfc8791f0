"""The trainer state's CUDA generators, checked on the CPU with torch.cuda faked: a process saves its
own device's generator under its rank, restores it whatever the number of GPUs it sees now, and a
legacy checkpoint's per-device entries are read in numeric order ("cuda10" after "cuda9")."""

from __future__ import annotations

import random

import pytest
import torch

from mtdnn.model import checkpoint
from mtdnn.model.checkpoint import indexed, load_trainer_state, save_checkpoint, set_rng_state


def test_per_device_names_are_in_numeric_order_beyond_ten():
    names = [f"cuda{i}" for i in range(12)] + ["torch", "cuda.rank0", "cuda.rank10", "cuda.rank2"]
    random.Random(0).shuffle(names)
    assert indexed(names, "cuda") == [(i, f"cuda{i}") for i in range(12)]
    assert indexed(names, "cuda.rank") == [
        (0, "cuda.rank0"),
        (2, "cuda.rank2"),
        (10, "cuda.rank10"),
    ]


class FakeCuda:
    """``count`` CUDA devices whose generator states are distinct byte tensors; setting the state of
    a device that is not there raises, as torch does."""

    def __init__(self, monkeypatch, count: int):
        self.states = {i: torch.full((16,), i, dtype=torch.uint8) for i in range(count)}
        self.monkeypatch = monkeypatch
        self.see(count)
        monkeypatch.setattr(torch.cuda, "get_rng_state", self.get)
        monkeypatch.setattr(torch.cuda, "set_rng_state", self.set)
        # The "all devices" calls the legacy code made, as torch implements them: one per device.
        monkeypatch.setattr(
            torch.cuda, "get_rng_state_all", lambda: [self.get(i) for i in range(self.count)]
        )
        monkeypatch.setattr(
            torch.cuda, "set_rng_state_all", lambda states: [*map(self.set, states, range(99))]
        )

    def see(self, count: int) -> None:
        """From now on only ``count`` devices are visible (a resume on another allocation)."""
        self.count = count
        self.monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        self.monkeypatch.setattr(torch.cuda, "device_count", lambda: count)

    def _index(self, device) -> int:
        index = torch.device(device).index if not isinstance(device, int) else device
        if index is None or index >= self.count:
            raise IndexError(f"CUDA device {device}: only {self.count} visible")
        return index

    def get(self, device="cuda") -> torch.Tensor:
        return self.states[self._index(device)].clone()

    def set(self, state: torch.Tensor, device="cuda") -> None:
        self.states[self._index(device)] = state.clone()


CUDA0 = torch.device("cuda", 0)


def test_a_process_saves_only_its_own_device_under_its_rank(monkeypatch):
    cuda = FakeCuda(monkeypatch, 12)
    state = checkpoint.rng_state(torch.device("cuda", 3), rank=3)
    assert sorted(state) == ["cuda.rank3", "torch"]
    assert torch.equal(state["cuda.rank3"], cuda.states[3])
    assert sorted(checkpoint.rng_state(torch.device("cpu"))) == ["torch"]


def test_a_resume_that_sees_fewer_gpus_restores_its_own_generator(monkeypatch, tmp_path):
    """Saved where twelve GPUs were visible, resumed where two are: through the checkpoint files."""
    cuda = FakeCuda(monkeypatch, 12)
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    cuda.states[0] = torch.full((16,), 200, dtype=torch.uint8)  # rank 0 drew on its device
    save_checkpoint(tmp_path / "c", model, {}, opt, sched, {"epoch": 0}, device=CUDA0)
    cuda.see(2)
    cuda.states = {0: torch.zeros(16, dtype=torch.uint8), 1: torch.ones(16, dtype=torch.uint8)}
    assert load_trainer_state(tmp_path / "c", opt, sched, device=CUDA0) == {"epoch": 0}
    assert cuda.states[0].tolist() == [200] * 16
    assert cuda.states[1].tolist() == [1] * 16  # not this process's device: left alone


def legacy_state() -> dict[str, torch.Tensor]:
    """What the old ``rng_state`` wrote where twelve GPUs were visible: ``cuda0``..``cuda11``."""
    cuda = {f"cuda{i}": torch.full((16,), 100 + i, dtype=torch.uint8) for i in range(12)}
    return {"torch": torch.get_rng_state(), **cuda}


@pytest.mark.parametrize("visible", [2, 12])
def test_a_legacy_checkpoint_gives_rank_0_device_0s_generator(monkeypatch, visible):
    cuda = FakeCuda(monkeypatch, visible)
    set_rng_state(legacy_state(), CUDA0, rank=0)  # the old restore raised IndexError with 2
    assert cuda.states[0].tolist() == [100] * 16  # cuda0's, not cuda10's
    assert cuda.states[1].tolist() == [1] * 16


def test_other_ranks_and_cpu_processes_leave_cuda_generators_alone(monkeypatch):
    """Ranks > 0 have no entry of their own (the loop reseeds them); a GPU run resumed on a CPU
    has no CUDA generator to restore."""
    cuda = FakeCuda(monkeypatch, 2)
    before = {i: s.clone() for i, s in cuda.states.items()}
    saved = {"torch": torch.get_rng_state(), "cuda.rank0": torch.full((16,), 9, dtype=torch.uint8)}
    set_rng_state(saved | legacy_state(), torch.device("cuda", 1), rank=1)
    set_rng_state(saved, torch.device("cpu"), rank=0)
    assert all(torch.equal(cuda.states[i], before[i]) for i in before)
