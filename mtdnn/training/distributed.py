"""torch.distributed under torchrun: each rank takes its slice of every global batch.

The sampler's plan is a pure function of (seed, epoch), so all ranks agree on the task and rows of
each step without any communication; DDP then averages the gradients.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist

# Rank 0 alone evaluates on dev and writes multi-GB checkpoints while the other ranks wait in a
# barrier; NCCL's default 10 minutes is too short for that on bert-large.
TIMEOUT = timedelta(hours=2)


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    # Whether this object started the process group, and so must end it (a caller's group is theirs).
    owns_group: bool = field(default=False, repr=False)

    @classmethod
    def from_env(cls, device: torch.device) -> Dist:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world == 1:
            return cls(device=device)
        started = not dist.is_initialized()
        if started:
            dist.init_process_group(**process_group_options(device))
        return cls(dist.get_rank(), world, device, owns_group=started)

    @staticmethod
    def launched_as_main() -> bool:
        """Whether this process is rank 0 of its launch (torchrun's ``RANK``; a plain process is).
        Readable after ``close``, when the process group is gone: what writes once per run (the
        table cells after training) asks this."""
        return int(os.environ.get("RANK", "0")) == 0

    def close(self) -> None:
        """End the process group this object started, once training is over: without it NCCL warns
        at exit that pending work may not have finished, and a peer can be left blocked. A no-op
        for a single process, a group someone else started, or one already ended."""
        if self.owns_group and dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        self.owns_group = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, rows: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
        """This rank's part of a batch: every n-th row, or every n-th whole group for ranking
        (a listwise loss needs all candidates of a group on one rank)."""
        if groups is None:
            units, members = rows, None
        else:
            keys = groups[rows]
            _, first = np.unique(keys, return_index=True)
            units, members = keys[np.sort(first)], keys  # groups in batch order
        # A batch with fewer units than ranks is processed whole on every rank (same gradient).
        if len(units) < self.world:
            return rows
        mine = units[self.rank :: self.world]
        return mine if members is None else rows[np.isin(members, mine)]

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        if self.world == 1:
            return model
        # Each step trains one task's head, so the other heads get no gradient that step.
        return torch.nn.parallel.DistributedDataParallel(
            model, device_ids=self.device_ids, find_unused_parameters=True
        )

    @property
    def device_ids(self) -> list[int] | None:
        """DDP's ``device_ids``: this rank's GPU; None on the CPU (as DDP requires)."""
        return [self.device.index] if self.device.type == "cuda" else None

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """Average per-step values over ranks (each rank's loss covers its shard of the batch).

        The reduction runs on the device the values live on: NCCL cannot reduce CPU tensors.
        """
        if self.world == 1 or not values.numel():
            return values
        values = values.clone()
        dist.all_reduce(values)
        return values / self.world

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def seed_dropout(self, seed: int) -> None:
        """Give each rank its own dropout stream (seed + rank), once the model is built.

        Rank 0 keeps the stream it has, so a single process (and rank 0) is unchanged.
        """
        if self.rank > 0:
            torch.manual_seed(seed + self.rank)


def process_group_options(device: torch.device) -> dict:
    """``init_process_group`` arguments: NCCL bound to this rank's GPU (with gloo beside it for any
    CPU tensor), or gloo alone on CPUs; a timeout long enough for rank-0-only work."""
    if device.type == "cuda":
        return {"backend": "cpu:gloo,cuda:nccl", "device_id": device, "timeout": TIMEOUT}
    return {"backend": "gloo", "timeout": TIMEOUT}
