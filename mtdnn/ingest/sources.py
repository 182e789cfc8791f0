"""Decide where each (task, split) comes from: a declared file, GLUE_DIR, or the Hugging Face Hub.

Local paths are overrides, never requirements: without them the Hub is used. Whether the Hub can be
used is answered in one place (``hub_status``), so the grid that plans the jobs and the jobs that read
the data agree. Offline (or when the Hub does not answer within seconds) we fail fast with a hint
instead of hanging in a retry loop, unless the data is in a local Hub-style copy or the HF cache.
"""

from __future__ import annotations

import functools
import os
import posixpath
import string
import threading
from dataclasses import dataclass
from pathlib import Path

from mtdnn.errors import MtdnnError
from mtdnn.tasks import FileSource, HubSource, TaskSpec, parse_file_source

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


def hub_endpoint() -> str:
    """The Hub this process talks to: ``HF_ENDPOINT`` (a mirror or a proxying gateway), as
    huggingface_hub itself reads it, else huggingface.co."""
    from huggingface_hub import constants

    return os.environ.get("HF_ENDPOINT", constants.ENDPOINT).rstrip("/")


@functools.cache
def hub_reachable(endpoint: str, timeout: float = 5.0) -> bool:
    """Whether ``endpoint`` answers an HTTP request at all (any status counts: a 401 or 404 still
    shows the network path works). Asked once per process and endpoint, through huggingface_hub's
    own HTTP client, so HTTPS_PROXY/https_proxy and the CA settings apply as they will for the
    download. It runs in a daemon thread: a DNS lookup that hangs cannot block us either."""
    result: list[bool] = []

    def probe() -> None:
        from huggingface_hub.utils import get_session

        try:
            get_session().head(endpoint, timeout=timeout, follow_redirects=False)
            result.append(True)
        except Exception:  # noqa: BLE001 (any transport error means: not reachable from here)
            result.append(False)

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout + 1.0)
    return bool(result and result[0])


def hub_status() -> str | None:
    """The one answer to "can the Hub be used from this process": None when it can, else why not
    ("disabled (...)", "unreachable (...)"). The grid, ``prepare``, ``tokenize`` and training all
    ask this; the network is probed once per process."""
    if hub_offline():
        return "disabled (HF_HUB_OFFLINE/HF_DATASETS_OFFLINE)"
    endpoint = hub_endpoint()
    return None if hub_reachable(endpoint) else f"unreachable ({endpoint})"


def cached_snapshot(
    repo_id: str, repo_type: str = "dataset", allow_patterns: list[str] | None = None
) -> Path | None:
    """The HF cache's snapshot of ``repo_id`` at its main revision (what ``datasets`` or ``hf
    download`` left there), or None. It has the Hub's own layout, so it reads like ``data.hub_dir``."""
    from huggingface_hub import snapshot_download

    try:
        path = snapshot_download(
            repo_id, repo_type=repo_type, allow_patterns=allow_patterns, local_files_only=True
        )
        return Path(path)
    except Exception:  # noqa: BLE001 (not cached, or a partial cache entry: not usable offline)
        return None


def hub_root(hub: HubSource, hub_split: str | None = None) -> Path | None:
    """A local directory in the Hub's layout that holds ``hub``'s repo (and ``hub_split``'s
    files, when named): ``data.hub_dir``'s copy, else, when the Hub cannot be used, the HF cache.
    None: read from the Hub itself."""
    if Path(hub.path).is_dir():
        return Path(hub.path)
    if hub_status() is None:
        return None
    snapshot = cached_snapshot(hub.path)
    if snapshot is None or (hub_split and not _shards(snapshot, hub, hub_split)):
        return None
    return snapshot


def hub_problem(hub: HubSource, hub_split: str | None = None) -> str | None:
    """Why the Hub cannot be used for ``hub`` ("disabled (...)", "unreachable (...)"), or None
    when it can. A local Hub-style directory, or the HF cache holding the split, is always usable."""
    if hub_root(hub, hub_split) is not None:
        return None
    return hub_status()


def check_hub(task: TaskSpec, hub: HubSource) -> None:
    """Fail fast when the Hub is needed but cannot be used."""
    why = hub_problem(hub)
    if why:
        raise MtdnnError(
            f"task {task.name} needs the Hugging Face Hub ({hub.path}) but it is {why}; "
            "set GLUE_DIR to a local copy in the GLUE layout (or data.sources in params.yaml), "
            "or stage the data with `mtdnn fetch` where the Hub can be reached"
        )


def split_files(hub: HubSource, hub_split: str) -> list[str]:
    """The parquet shards of one split in a Hub-style local repo (``data.hub_dir``'s copy, or the
    HF cache's when the Hub cannot be used), in shard order; empty when there is none."""
    root = hub_root(hub)
    return [] if root is None else _shards(root, hub, hub_split)


def _shards(root: Path, hub: HubSource, hub_split: str) -> list[str]:
    return sorted(str(p) for p in Path(root, hub.name or "").glob(f"{hub_split}-*.parquet"))


# Can a training split be had? -----------------------------------------------------------------
# The one answer, asked by the workflow's grid before it plans a task, found the way `prepare`
# will look: a declared file, then the local GLUE copy, then the Hub (or a Hub-style mirror).


def declared_sources(
    name: str, declared: dict, where: str = "data.sources"
) -> dict[str, FileSource]:
    """``data.sources.<name>`` as {split: FileSource}, errors naming ``<where>.<name>.<split>``."""
    return {s: parse_file_source(b, f"{where}.{name}.{s}") for s, b in declared.items()}


def train_missing(task: TaskSpec, declared: dict, local: str | None) -> str | None:
    """None when ``task``'s train split can be had, else where it was looked for, in words.
    ``declared``: the task's ``data.sources`` block; ``local``: the GLUE copy in effect."""
    split = task.train_split or ""
    overrides = declared_sources(task.name, declared)
    origin = resolve_split(task, split, overrides, Path(local) if local else None)
    if origin is not None and origin.path is not None:  # a declared file or the local copy
        if origin.path.is_file():
            return None
        return f"data.sources.{task.name}.{split}: {origin.path} not found"
    where = _not_local(task, split, local)
    if origin is None:
        return f"{where}, and the task has no Hub source"
    return _hub_missing(origin.hub, split, where)


def _not_local(task: TaskSpec, split: str, local: str | None) -> str:
    """Why the local GLUE copy does not have ``split``, in words."""
    if local is None:
        return "GLUE_DIR is not set"
    if task.local is None:
        return "not local"
    folder = Path(local, task.local.dir)
    if not folder.is_dir():
        return f"{local} has no {task.local.dir}/"
    entry = task.local.splits.get(split)
    return f"{folder / (entry.file if entry else f'{split}.tsv')} not found"


def _hub_missing(hub: HubSource, split: str, where: str) -> str | None:
    """Why the Hub cannot give ``split``, as ``prepare`` will find it (the same functions)."""
    if os.path.isdir(hub.path):  # a Hub-style local copy (data.hub_dir)
        if split_files(hub, hub.splits[split]):
            return None
        return f"{where}, and {Path(hub.path, hub.name or '')} has no {hub.splits[split]} files"
    why = hub_problem(hub, hub.splits[split])
    return f"{where}, and the Hugging Face Hub ({hub.path}) is {why}" if why else None
