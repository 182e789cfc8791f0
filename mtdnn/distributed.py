"""torch.distributed under torchrun: each rank takes its slice of every global batch.

The sampler's plan is a pure function of (seed, epoch), so all ranks agree on the task and rows of
each step without any communication; DDP then averages the gradients.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist


@dataclass
class Dist:
    rank: int = 0
    world: int = 1

    @classmethod
    def from_env(cls, device: torch.device) -> Dist:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world == 1:
            return cls()
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return cls(dist.get_rank(), world)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, rows: np.ndarray) -> np.ndarray:
        # A batch smaller than the world is processed whole on every rank (same gradient everywhere).
        return rows[self.rank :: self.world] if len(rows) >= self.world else rows

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        if self.world == 1:
            return model
        # Each step trains one task's head, so the other heads get no gradient that step.
        return torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)

    def mean(self, values: list[float]) -> list[float]:
        """Average per-step values over ranks (each rank's loss covers its shard of the batch)."""
        if self.world == 1 or not values:
            return values
        t = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(t)
        return (t / self.world).tolist()

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()
