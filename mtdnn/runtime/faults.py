"""Fault injection for the crash-safety tests: ``MTDNN_FAULT=point:n`` SIGKILLs the process the n-th
time execution reaches ``point`` (e.g. ``checkpoint-write:2``). A no-op unless the variable is set."""

from __future__ import annotations

import os
import signal
from collections import Counter

_seen: Counter[str] = Counter()


def checkpoint(point: str) -> None:
    spec = os.environ.get("MTDNN_FAULT")
    if not spec:
        return
    name, _, count = spec.partition(":")
    if name != point:
        return
    _seen[point] += 1
    if _seen[point] == int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)
