"""Device and mixed-precision choice: bf16 autocast on CPUs with native bf16, fp16/bf16 on CUDA."""

from __future__ import annotations

import contextlib
import os

import torch

from mtdnn.errors import MtdnnError
from mtdnn.runtime.devices import refuse_cpu_if_gpu_requested


def pick_device() -> torch.device:
    """This process's device: ``cuda:LOCAL_RANK`` under torchrun (one GPU per rank), else the CPU,
    unless a GPU was asked for (``mtdnn.runtime.devices``): then no usable CUDA is an error.

    A bare ``cuda`` would put every rank on GPU 0 (NCCL then fails with "Duplicate GPU detected").
    ``set_device`` makes the rank's GPU the current one, for kernels and NCCL alike.
    """
    if not torch.cuda.is_available():
        refuse_cpu_if_gpu_requested()
        return torch.device("cpu")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    visible = torch.cuda.device_count()
    if local_rank >= visible:
        raise MtdnnError(
            f"LOCAL_RANK {local_rank}: only {visible} GPU(s) visible; "
            "start at most one process per GPU (torchrun --nproc-per-node)"
        )
    device = torch.device("cuda", local_rank)
    torch.cuda.set_device(device)
    return device


def cpu_has_bf16() -> bool:
    # Without avx512_bf16/AMX, bf16 on CPU is emulated and slower than fp32.
    return bool(
        getattr(torch.backends.cpu, "get_cpu_capability", lambda: "")() in ("AVX512", "AMX")
    ) and bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def resolve_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """None means plain fp32."""
    if precision == "fp32":
        return None
    if precision == "auto":
        if device.type == "cuda":
            # Native bf16 only (compute capability >= 8): V100/T4 merely emulate it, slowly,
            # so they get fp16 with loss scaling instead.
            native = torch.cuda.is_bf16_supported(including_emulation=False)
            return torch.bfloat16 if native else torch.float16
        return torch.bfloat16 if cpu_has_bf16() else None
    if precision == "fp16" and device.type == "cpu":
        raise MtdnnError("precision: fp16 autocast is for CUDA; use bf16 or fp32 on a CPU")
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def dtype_name(dtype: torch.dtype | None) -> str:
    """``resolve_dtype``'s answer as the precision knob spells it: fp32, bf16 or fp16."""
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(device: torch.device, dtype: torch.dtype | None):
    """Only fp16 needs loss scaling; bf16 has fp32's exponent range."""
    enabled = device.type == "cuda" and dtype == torch.float16
    return torch.amp.GradScaler("cuda", enabled=enabled)
