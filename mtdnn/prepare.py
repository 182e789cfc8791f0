"""`mtdnn prepare`: ingest one task from its sources into canonical parquet plus a sha256 manifest."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from mtdnn.errors import MtdnnError
from mtdnn.fileio import atomic_dir, read_json, sha256_file, sha256_json, write_json
from mtdnn.ingest.canonical import check_ranking_groups, read_file_records, to_canonical
from mtdnn.ingest.hub import load_hub_split
from mtdnn.ingest.sources import (
    SplitOrigin,
    check_hub,
    declared_sources,
    glue_dir,
    hub_problem,
    resolve_split,
)
from mtdnn.tasks import FileSource, TaskSpec

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"


def plan_origins(
    task: TaskSpec, glue: str | None, overrides: dict[str, FileSource]
) -> tuple[dict[str, SplitOrigin], dict[str, str]]:
    """Resolve every split: (origins, {missing split: where it was looked for}).

    Hub-only splits are left out when the Hub is unusable but local data exists. A missing train
    or test split is a notice here (QNLI's local copy has no train.tsv); a missing dev split is
    an error once the other splits have been read (see ``_require_dev_splits``)."""
    root = glue_dir(glue)
    origins = {s: o for s in task.splits if (o := resolve_split(task, s, overrides, root))}
    local = {s: o for s, o in origins.items() if o.is_local}
    remote = {s: o for s, o in origins.items() if not o.is_local}
    why = hub_problem(next(iter(remote.values())).hub) if remote else None
    if why:
        if not local:
            check_hub(task, next(iter(remote.values())).hub)  # the one-line error naming the task
        origins = local
    if not origins:
        raise MtdnnError(f"task {task.name}: no source for any split; set GLUE_DIR or data.sources")
    missing = {s: _looked_for(task, s, root, why) for s in task.splits if s not in origins}
    for split, where in missing.items():
        if split not in task.dev_splits or not where:
            log.warning(
                "notice: task %s has no %s split here (%s)",
                task.name,
                split,
                where or "no source declares it",
            )
    return origins, missing


def _require_train_split(task: TaskSpec, missing: dict[str, str]) -> None:
    """The workflow trains this task: a train split that cannot be had here would leave a task
    without training data for the next job to trip over, so stop before anything is written."""
    split = task.train_split
    if split in missing:
        raise MtdnnError(
            f"task {task.name}: no {split} split ({missing[split] or 'no source declares it'}), "
            f"but the workflow trains {task.name}; set GLUE_DIR or data.sources.{task.name}."
            f"{split}, or stage the Hub data with `mtdnn fetch` (data.hub_dir)"
        )


def _require_dev_splits(task: TaskSpec, missing: dict[str, str]) -> None:
    """A dev split that a source declares but that cannot be had: nothing could be evaluated."""
    for split, where in missing.items():
        if split in task.dev_splits and where:
            raise MtdnnError(
                f"task {task.name}: no {split} split ({where}); add it to the local copy, "
                f"or declare it in data.sources.{task.name}.{split}"
            )


def _looked_for(task: TaskSpec, split: str, root: Path | None, hub_why: str | None) -> str:
    """Where a missing split was looked for, in words; empty when no source declares it."""
    places = []
    local = task.local.splits.get(split) if task.local else None
    if root is not None and local is not None:
        places.append(f"{root / task.local.dir / local.file} not found")
    if task.hub is not None and split in task.hub.splits:
        places.append(f"the Hub ({task.hub.path}) is {hub_why or 'not used'}")
    return "; ".join(places)


def _fingerprint(task: TaskSpec, origins: dict[str, SplitOrigin]) -> dict:
    """What the output depends on: the task spec, each origin, and the sha256 of every local file."""
    files = {str(o.path): sha256_file(o.path) for o in origins.values() if o.is_local}
    spec = sha256_json([repr(task), [repr(o) for o in origins.values()]])
    return {"spec": spec, "files": files}


def _read_split(task: TaskSpec, origin: SplitOrigin) -> tuple[pd.DataFrame, dict, str]:
    """(canonical frame, rows dropped by reason, source) of one split."""
    if origin.is_local:
        records, source = read_file_records(origin.path, origin.file), str(origin.path)
    else:
        records, source = load_hub_split(origin.hub, origin.split)
    frame, dropped = to_canonical(task, origin.split, records, source)
    check_ranking_groups(task, origin.split, frame, source)
    return frame, dropped, source


def is_up_to_date(out_dir: Path, fingerprint: dict) -> bool:
    manifest = out_dir / MANIFEST
    if not manifest.is_file():
        return False
    old = read_json(manifest)
    present = all((out_dir / f"{s}.parquet").is_file() for s in old.get("splits", {}))
    return present and {k: old.get(k) for k in fingerprint} == fingerprint


def prepare_task(
    task: TaskSpec,
    out_dir: Path,
    glue: str | None = None,
    overrides: dict | None = None,
    need_train: bool = False,
) -> dict:
    """Write ``<out_dir>/<split>.parquet`` and ``manifest.json``; a no-op when inputs are unchanged.
    ``need_train``: the training split must be had (the workflow trains the task)."""
    origins, missing = plan_origins(task, glue, overrides or {})
    if need_train:
        _require_train_split(task, missing)
    fingerprint = _fingerprint(task, origins)
    if is_up_to_date(out_dir, fingerprint):
        log.info("%s: up to date (%s)", task.name, out_dir)
        return read_json(out_dir / MANIFEST)
    splits = {}
    with atomic_dir(out_dir) as tmp:
        for split, origin in origins.items():
            frame, dropped, source = _read_split(task, origin)
            frame.to_parquet(tmp / f"{split}.parquet", index=False)
            splits[split] = {
                "rows": len(frame),
                "source": source,
                "labelled": bool(frame["label"].notna().any()),
                "dropped": dropped,  # rows of the source that are not examples, by reason
            }
            if any(dropped.values()):
                log.info("%s %s: dropped %s", task.name, split, dropped)
        _require_dev_splits(task, missing)
        manifest = fingerprint | {
            "task": task.name,
            "splits": splits,
            "unavailable": [s for s in task.splits if s not in origins],
        }
        write_json(tmp / MANIFEST, manifest)
    return manifest


def prepare_in_project(
    task: TaskSpec,
    params: dict | None,
    where: str,
    glue_arg: str | None,
    out: Path,
    need_train: bool = False,
) -> dict:
    """:func:`prepare_task` with a project's sources: the task's ``data.sources`` block and the
    GLUE copy of ``params`` (``where``: the params file, for messages), unless ``glue_arg``, a
    deliberate command-line path, says otherwise (it may be relative and lie outside the project)."""
    data = params["data"] if params else {"glue_dir": None, "sources": {}}
    overrides = declared_sources(
        task.name, data["sources"].get(task.name, {}), f"{where}: data.sources"
    )
    glue = data["glue_dir"]
    if glue_arg:
        if not Path(glue_arg).is_dir():
            raise MtdnnError(
                f"--glue-dir {glue_arg}: directory not found "
                "(expected the GLUE layout, e.g. RTE/train.tsv)"
            )
        glue = str(Path(glue_arg).resolve())
    return prepare_task(task, out, glue, overrides, need_train=need_train)
