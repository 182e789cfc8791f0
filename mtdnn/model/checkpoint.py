"""Checkpoints: safetensors weights + JSON config, and a resumable trainer state. All writes atomic.

Nothing here unpickles: optimizer tensors go to safetensors, everything else to JSON.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from mtdnn.errors import MtdnnError
from mtdnn.fileio import atomic_dir, read_json, write_json
from mtdnn.runtime import faults

WEIGHTS, CONFIG, STATE, OPTIM = (
    "model.safetensors",
    "config.json",
    "trainer_state.json",
    "optimizer.safetensors",
)
FORMAT = "mtdnn-checkpoint-1"
# RNG entries of the trainer state: one per rank that saved its device's generator, and the legacy
# one per GPU visible to the writing process.
RANK_KEY, LEGACY_KEY = "cuda.rank", "cuda"


def _save(tensors: dict[str, torch.Tensor], path: Path, metadata: dict | None = None) -> None:
    """safetensors reports I/O failures (a full disk) as its own error type; make them OSErrors so
    the atomic-write wrapper turns them into a one-line message and removes the partial copy."""
    try:
        save_file(tensors, str(path), metadata=metadata)
    except SafetensorError as e:
        raise OSError(str(e)) from None


def save_weights(model: torch.nn.Module, path: Path) -> None:
    # clone: tied or shared storages would otherwise be rejected by safetensors
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    _save(state, path, metadata={"format": FORMAT})


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except FileNotFoundError:
        raise MtdnnError(f"{path}: checkpoint weights not found") from None
    except (SafetensorError, OSError, ValueError) as e:
        raise MtdnnError(
            f"{path}: unreadable safetensors file ({e}); truncated or corrupt?"
        ) from None


def read_config(ckpt: Path) -> dict:
    cfg = read_json(ckpt / CONFIG)
    if cfg.get("format") != FORMAT:
        raise MtdnnError(f"{ckpt / CONFIG}: not an mtdnn checkpoint (format {cfg.get('format')!r})")
    return cfg


def write_model(directory: Path, model, config: dict) -> None:
    save_weights(model, directory / WEIGHTS)
    write_json(directory / CONFIG, config | {"format": FORMAT})


def _flatten_optimizer(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, scalars = {}, {}
    for pid, slots in state["state"].items():
        for name, value in slots.items():
            if torch.is_tensor(value):
                tensors[f"{pid}.{name}"] = value.contiguous()
            else:
                scalars[f"{pid}.{name}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for key, value in list(tensors.items()) + list(meta["scalars"].items()):
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def rng_state(device: torch.device | None = None, rank: int = 0) -> dict[str, torch.Tensor]:
    """This process's generators: the CPU's and, on a GPU, its own device's, as ``cuda.rank<r>``.

    A process draws on one device only. Saving every visible GPU's generator (the legacy
    ``cuda0``..``cudaN``) tied a checkpoint to the number of GPUs seen when it was written.
    """
    state = {"torch": torch.get_rng_state()}
    if device is not None and device.type == "cuda":
        state[f"{RANK_KEY}{rank}"] = torch.cuda.get_rng_state(device)
    return state


def indexed(names: Iterable[str], prefix: str) -> list[tuple[int, str]]:
    """The names ``<prefix><n>`` among ``names`` as (n, name), in numeric order of n: "cuda10"
    after "cuda9" (a string sort put it before "cuda2", on another device's generator)."""
    found = [(n[len(prefix) :], n) for n in names if n.startswith(prefix)]
    return sorted((int(i), n) for i, n in found if i.isdigit())


def set_rng_state(
    state: dict[str, torch.Tensor], device: torch.device | None = None, rank: int = 0
) -> None:
    """Restore this process's generators: the CPU's, and on a GPU its own device's from this rank's
    entry. Nothing depends on how many GPUs are visible now, so a resume may see more or fewer.

    A legacy checkpoint's ``cuda<i>`` is device i's generator in the process that wrote it: rank 0,
    which trained on device 0. Ranks without an entry keep theirs (the loop reseeds them).
    """
    torch.set_rng_state(state["torch"])
    if device is None or device.type != "cuda":
        return  # a CPU process has no CUDA generator; a GPU run resumed on a CPU just goes on
    key = dict(indexed(state, RANK_KEY)).get(rank)
    if key is None and rank == 0:
        key = dict(indexed(state, LEGACY_KEY)).get(0)
    if key is not None:
        torch.cuda.set_rng_state(state[key], device)


def save_checkpoint(
    dest: Path,
    model,
    config: dict,
    optimizer=None,
    scheduler=None,
    trainer: dict | None = None,
    *,
    device: torch.device | None = None,
    rank: int = 0,
) -> None:
    """Write a complete checkpoint directory, swapped in atomically (a kill leaves the old one).

    ``device`` and ``rank``: whose generators the trainer state holds (:func:`rng_state`)."""
    with atomic_dir(dest) as tmp:
        write_model(tmp, model, config)
        if optimizer is not None:
            tensors, meta = _flatten_optimizer(optimizer.state_dict())
            tensors |= {f"rng.{k}": v for k, v in rng_state(device, rank).items()}
            _save(tensors, tmp / OPTIM)
            state = {"optimizer": meta, "scheduler": scheduler.state_dict(), "trainer": trainer}
            write_json(tmp / STATE, state)
        faults.checkpoint("checkpoint-write")  # files written, not yet swapped in


def load_trainer_state(
    ckpt: Path, optimizer, scheduler, *, device: torch.device | None = None, rank: int = 0
) -> dict:
    """Restore optimizer, scheduler and this process's RNG (:func:`set_rng_state`); return the
    trainer's own position/bookkeeping."""
    if not (ckpt / STATE).is_file() or not (ckpt / OPTIM).is_file():
        raise MtdnnError(f"{ckpt}: missing trainer state ({STATE}/{OPTIM}); cannot resume")
    meta = read_json(ckpt / STATE)
    tensors = load_weights(ckpt / OPTIM)
    rng = {k.removeprefix("rng."): v for k, v in tensors.items() if k.startswith("rng.")}
    optim = {k: v for k, v in tensors.items() if not k.startswith("rng.")}
    optimizer.load_state_dict(_unflatten_optimizer(optim, meta["optimizer"]))
    scheduler.load_state_dict(meta["scheduler"])
    set_rng_state(rng, device, rank)
    return meta["trainer"]
