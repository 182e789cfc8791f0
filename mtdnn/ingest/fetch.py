"""`mtdnn fetch`: stage everything a profile reads from the Hugging Face Hub, for compute nodes
without internet. Run once where the Hub is reachable (a cluster login node):

- each Hub dataset repo of the tasks the profile names (mtl.tasks, finetune.tasks,
  adapt.datasets) is mirrored into ``data.hub_dir`` in the Hub's own layout, only the configs and
  splits those tasks read (``<hub_dir>/nyu-mll/glue/rte/train-00000-of-00001.parquet``), which is
  where `mtdnn prepare` reads them;
- each encoder (``encoder``, ``adapt.encoder``) whose alias names a Hub model goes into the
  Hugging Face cache (``HF_HOME``) whole: offline, ``encoders.hub_model`` accepts a cached
  snapshot only when it is complete (the bundled MiniLM and local directories need nothing).

Tasks whose data also comes from local files (GLUE_DIR, data.sources) are fetched all the same:
compute nodes may not see those files. Downloads go through ``huggingface_hub.snapshot_download``,
which writes each file under a temporary name and renames it into place, and skips files already
there: a second run downloads nothing.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from mtdnn.errors import MtdnnError
from mtdnn.ingest.sources import expand_path, split_files
from mtdnn.model.encoders import ALIASES, MODEL_FILES
from mtdnn.tasks import HubSource, TaskSpec, load_tasks

_SHARD = re.compile(r"-(\d{5})-of-(\d{5})\.parquet$")


def fetch_profile(params: dict, source: str) -> Iterator[str]:
    """Stage the profile's Hub datasets and encoders; yield one line per item as it is done."""
    mirror = hub_dir(params, source)
    _require_online()
    _quiet()
    tasks = named_tasks(params)
    by_repo: dict[str, list[TaskSpec]] = {}
    for task in tasks:
        if task.hub is None or Path(task.hub.path).is_absolute():
            yield f"{task.name}: no Hub repo (local files only), nothing to fetch"
        else:
            by_repo.setdefault(task.hub.path, []).append(task)
    for repo, repo_tasks in by_repo.items():
        yield from _stage_dataset(repo, repo_tasks, mirror)
    for alias in dict.fromkeys(filter(None, [params["encoder"], params["adapt"].get("encoder")])):
        yield _stage_encoder(alias)


def hub_dir(params: dict, source: str) -> Path:
    """``data.hub_dir``, which fetch requires: it is where `mtdnn prepare` will read the data, so
    staging anywhere else would leave the compute nodes without it."""
    raw = params["data"].get("hub_dir")
    path = expand_path(raw, "data.hub_dir") if raw else None
    if path is None:
        why = "is not set" if not raw else f"'{raw}' names an unset variable"
        raise MtdnnError(
            f"{source}: data.hub_dir {why} (expected the directory to stage the Hub's datasets "
            "into, on a filesystem the compute nodes see; `mtdnn prepare` reads them there)"
        )
    if path.exists() and not path.is_dir():
        raise MtdnnError(f"{source}: data.hub_dir {path} is a file (expected a directory)")
    return path


def named_tasks(params: dict) -> list[TaskSpec]:
    """Every task the profile names, as its task file declares it (Hub repo ids, not the
    ``data.hub_dir`` paths that ``config.task_specs`` substitutes). Optional tasks included: a
    task left out under GLUE_DIR (QNLI) may well be had from the Hub."""
    registry = load_tasks(params["data"].get("task_files", []))
    names = params["mtl"]["tasks"] + params["finetune"]["tasks"] + params["adapt"]["datasets"]
    return [registry[n] for n in dict.fromkeys(names)]


def hub_splits(hub: HubSource, task: TaskSpec) -> list[str]:
    """The Hub splits `prepare` reads for ``task``, in the task's split order."""
    return [hub.splits[s] for s in task.splits if s in hub.splits]


def patterns(hub: HubSource, task: TaskSpec) -> list[str]:
    """``allow_patterns`` for the task's splits: exactly the files ``split_files`` globs."""
    folder = f"{hub.name}/" if hub.name else ""
    return [f"{folder}{split}-*.parquet" for split in hub_splits(hub, task)]


def _stage_dataset(repo: str, tasks: list[TaskSpec], mirror: Path) -> Iterator[str]:
    local = mirror / repo
    before = _signatures(local)
    wanted = [p for t in tasks for p in patterns(t.hub, t)]
    what = f"task {', '.join(t.name for t in tasks)}"
    _download(repo, what, repo_type="dataset", local_dir=local, allow_patterns=wanted)
    after = _signatures(local)
    for task in tasks:
        files = _check_splits(task, replace(task.hub, path=str(local)))
        new = sum(before.get(f) != after.get(f) for f in files)
        where = Path(local, task.hub.name or "")
        splits = ", ".join(hub_splits(task.hub, task))
        yield f"{task.name}: {repo} {task.hub.name or ''} [{splits}] → {where} ({_count(files, new)})"


def _check_splits(task: TaskSpec, staged: HubSource) -> list[str]:
    """The staged files of the task's splits; a split with no shard, or with shards missing,
    is an error (prepare would read a split that is not there, or only part of it)."""
    files = []
    for split in hub_splits(staged, task):
        shards = split_files(staged, split)
        folder = Path(staged.path, staged.name or "")
        if not shards:
            raise MtdnnError(
                f"task {task.name}: the Hub repo has no {split}-*.parquet in "
                f"'{staged.name or '.'}' (expected the Hub's layout, "
                "<config>/<split>-00000-of-00001.parquet, which `mtdnn prepare` reads)"
            )
        counts = {m.group(2) for s in shards if (m := _SHARD.search(s))}
        if len(counts) > 1 or (counts and len(shards) != int(counts.pop())):
            raise MtdnnError(
                f"task {task.name}: {folder} holds an incomplete or mixed set of {split} shards "
                f"({len(shards)} files); delete them and run `mtdnn fetch` again"
            )
        files += shards
    return files


def _stage_encoder(alias: str) -> str:
    repo = ALIASES.get(alias)
    if not isinstance(repo, str):  # the bundled MiniLM (a pip package) or a local model directory
        where = "bundled (a pip package)" if alias in ALIASES else "a local directory"
        return f"encoder {alias}: {where}, nothing to fetch"
    before = _signatures(_snapshots(repo), "*")
    path = Path(_download(repo, f"encoder {alias}", allow_patterns=MODEL_FILES)).resolve()
    after = _signatures(path, "*")
    new = sum(before.get(f) != sig for f, sig in after.items())
    return f"encoder {alias}: {repo} → {path} ({_count(list(after), new)})"


def _snapshots(repo: str) -> Path:
    """The model's snapshots in the Hugging Face cache (one folder per commit)."""
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    folder = Path(constants.HF_HUB_CACHE).resolve()
    return folder / repo_folder_name(repo_id=repo, repo_type="model") / "snapshots"


def _signatures(root: Path, pattern: str = "*.parquet") -> dict[str, tuple[int, int]]:
    """(mtime, size) of the files under ``root``: what changed tells what was downloaded."""
    found = (p for p in root.rglob(pattern) if p.is_file()) if root.is_dir() else ()
    return {str(p): (p.stat().st_mtime_ns, p.stat().st_size) for p in found}


def _count(files: list[str], new: int) -> str:
    return f"{len(files)} files, {new or 'none'} downloaded"


def _download(repo: str, what: str, **kwargs) -> str:
    """``snapshot_download``; a Hub or network failure becomes one line naming the repo."""
    from huggingface_hub import constants, snapshot_download

    try:
        return snapshot_download(repo, **kwargs)
    except (OSError, ValueError) as e:  # HfHubHTTPError and LocalEntryNotFoundError are OSErrors
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise MtdnnError(
            f"{what}: cannot fetch {repo} from {constants.ENDPOINT} ({first})"
        ) from None


def _quiet() -> None:
    """Our lines on stdout are the record of what was staged. huggingface_hub's HTTP client logs
    every request at INFO (the CLI's level), and its progress bars would fill Snakemake's logs and
    CI output: bars only on a terminal, where they show a large model's progress."""
    from huggingface_hub.utils import disable_progress_bars

    for name in ("httpx", "httpx2"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if not sys.stderr.isatty():
        disable_progress_bars()


def _require_online() -> None:
    """Offline mode would make snapshot_download return whatever is on disk, silently."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        raise MtdnnError(
            "fetch downloads from the Hugging Face Hub, but HF_HUB_OFFLINE (or "
            "TRANSFORMERS_OFFLINE) is set; run it without them, where the Hub is reachable"
        )
