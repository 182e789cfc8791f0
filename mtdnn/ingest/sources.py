"""Decide where each (task, split) comes from: a declared file, GLUE_DIR, or the Hugging Face Hub.

Local paths are overrides, never requirements: without them the Hub is used. Offline (or when the Hub
does not answer within seconds) we fail fast with a hint instead of hanging in a retry loop.
"""

from __future__ import annotations

import os
import posixpath
import socket
import string
import threading
from dataclasses import dataclass
from pathlib import Path

from mtdnn.errors import MtdnnError
from mtdnn.tasks import FileSource, HubSource, TaskSpec

HUB_HOST = ("huggingface.co", 443)
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class SplitOrigin:
    """Where one split is read from: a local file (with its reader spec) or a Hub split."""

    split: str
    path: Path | None = None
    file: FileSource | None = None
    hub: HubSource | None = None

    @property
    def is_local(self) -> bool:
        return self.path is not None


def expand_path(raw: str, key: str) -> Path | None:
    """Expand ``${VAR}`` in a params path; None when a variable is unset (the override is inactive).

    A relative literal may not climb out of the project: '..' must come from a variable or an
    absolute path, both deliberate choices by the user.
    """
    if not raw.startswith(("/", "$")) and posixpath.normpath(raw).startswith(".."):
        raise MtdnnError(f"{key}: relative path '{raw}' escapes the project; use an absolute path")
    template = string.Template(raw)
    names = {m.group("braced") or m.group("named") for m in template.pattern.finditer(raw)} - {None}
    if any(not os.environ.get(n) for n in names):
        return None
    return Path(template.substitute(os.environ))


def glue_dir(configured: str | None) -> Path | None:
    """params ``data.glue_dir`` wins over $GLUE_DIR; a directory that is named must exist."""
    raw = configured or os.environ.get("GLUE_DIR")
    if not raw:
        return None
    path = expand_path(raw, "data.glue_dir") if configured else Path(raw)
    if path is None or not path.is_dir():
        name = "data.glue_dir" if configured else "GLUE_DIR"
        raise MtdnnError(
            f"{name}={raw}: directory not found (expected the GLUE layout, e.g. RTE/train.tsv)"
        )
    return path


def resolve_split(
    task: TaskSpec, split: str, overrides: dict, root: Path | None
) -> SplitOrigin | None:
    """First match wins: params override file, then GLUE_DIR layout, then the Hub."""
    override = overrides.get(split)
    if override is not None:
        path = expand_path(override.file, f"data.sources.{task.name}.{split}.file")
        if path is not None:
            return SplitOrigin(split, path=path, file=override)
    local = task.local.splits.get(split) if task.local else None
    if root is not None and local is not None and (root / task.local.dir / local.file).is_file():
        return SplitOrigin(split, path=root / task.local.dir / local.file, file=local)
    if task.hub is not None and split in task.hub.splits:
        return SplitOrigin(split, hub=task.hub)
    return None


def hub_offline() -> bool:
    return any(
        os.environ.get(v, "").lower() in _TRUE for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    )


def hub_reachable(timeout: float = 3.0) -> bool:
    """TCP probe in a daemon thread so that a hanging DNS lookup cannot block us either."""
    result: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection(HUB_HOST, timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout + 0.5)
    return bool(result and result[0])


def hub_problem(hub: HubSource) -> str | None:
    """Why the Hub cannot be used for ``hub`` ("disabled (...)", "unreachable"), or None when it can.
    A local Hub-style directory is always usable."""
    if Path(hub.path).is_dir():
        return None
    if hub_offline():
        return "disabled (HF_HUB_OFFLINE/HF_DATASETS_OFFLINE)"
    return None if hub_reachable() else "unreachable"


def check_hub(task: TaskSpec, hub: HubSource) -> None:
    """Fail fast when the Hub is needed but cannot be used."""
    why = hub_problem(hub)
    if why:
        raise MtdnnError(
            f"task {task.name} needs the Hugging Face Hub ({hub.path}) but it is {why}; "
            "set GLUE_DIR to a local copy in the GLUE layout (or data.sources in params.yaml)"
        )


def split_files(hub: HubSource, hub_split: str) -> list[str]:
    """The parquet shards of one split in a Hub-style local repo, in shard order."""
    return sorted(str(p) for p in Path(hub.path, hub.name or "").glob(f"{hub_split}-*.parquet"))
