"""glibc malloc settings for training and inference processes.

A training step allocates and frees the same large buffers every time (a 32 × 12 × 128² attention
tensor is 12.6 MB in bf16; the word-embedding gradient 47 MB). glibc serves blocks above its mmap
threshold (at most 32 MB, adjusted as it goes) straight from the kernel and returns freed heap
tops over its trim threshold, so each step faults those pages in again, and the kernel zeroes
every page first: 47 MB of zeros took 19 ms instead of 1.3 ms on a 2-core VM. Raising both
thresholds keeps freed blocks in the heap for the next step. Nothing changes where glibc is not
the allocator, or where the user tuned it already (``MALLOC_*`` variables, ``GLIBC_TUNABLES``, a
preloaded allocator such as jemalloc).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)

# mallopt(3) parameter numbers (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# Blocks up to 1 GiB come from the heap, and up to 2 GiB of free heap top is kept.
MMAP_THRESHOLD = 1 << 30
TRIM_THRESHOLD = (1 << 31) - 1
_done = False


def user_tuned(env: dict[str, str] | os._Environ = os.environ) -> str | None:
    """The variable by which the user chose allocator settings of their own, if any."""
    for name in ("GLIBC_TUNABLES", "LD_PRELOAD"):
        if env.get(name):
            return name
    return next((n for n in env if n.startswith("MALLOC_")), None)


def keep_freed_memory() -> bool:
    """Apply the thresholds once per process; whether they are in force."""
    global _done
    if _done:
        return True
    if user_tuned() is not None:
        log.debug("malloc left as configured (%s is set)", user_tuned())
        return False
    libc = _glibc()
    if libc is None:
        return False
    _done = bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
    return _done


def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.gnu_get_libc_version  # noqa: B018 (raises AttributeError on musl and macOS)
    except (OSError, AttributeError):
        return None
    return libc
