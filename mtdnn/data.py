"""`mtdnn prepare`: ingest one task from its sources into canonical parquet plus a sha256 manifest."""

from __future__ import annotations

import logging
from pathlib import Path

from mtdnn.canonical import read_file_records, to_canonical
from mtdnn.errors import MtdnnError
from mtdnn.fileio import atomic_dir, read_json, sha256_file, sha256_json, write_json
from mtdnn.hub import load_hub_split
from mtdnn.sources import SplitOrigin, check_hub, glue_dir, resolve_split
from mtdnn.tasks import FileSource, TaskSpec

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"


def plan_origins(
    task: TaskSpec, glue: str | None, overrides: dict[str, FileSource]
) -> dict[str, SplitOrigin]:
    """Resolve every split; Hub-only splits are dropped when the Hub is unusable but local data exists."""
    root = glue_dir(glue)
    origins = {s: o for s in task.splits if (o := resolve_split(task, s, overrides, root))}
    local = {s: o for s, o in origins.items() if o.is_local}
    remote = {s: o for s, o in origins.items() if not o.is_local}
    if remote:
        try:
            check_hub(task, next(iter(remote.values())).hub)
        except MtdnnError:
            if not local:
                raise
            log.warning(
                "%s: splits %s skipped (no local file, Hub unavailable)", task.name, list(remote)
            )
            return local
    if not origins:
        raise MtdnnError(f"task {task.name}: no source for any split; set GLUE_DIR or data.sources")
    return origins


def _fingerprint(task: TaskSpec, origins: dict[str, SplitOrigin]) -> dict:
    """What the output depends on: the task spec, each origin, and the sha256 of every local file."""
    files = {str(o.path): sha256_file(o.path) for o in origins.values() if o.is_local}
    spec = sha256_json([repr(task), [repr(o) for o in origins.values()]])
    return {"spec": spec, "files": files}


def _read_split(task: TaskSpec, origin: SplitOrigin):
    if origin.is_local:
        return to_canonical(
            task, origin.split, read_file_records(origin.path, origin.file), str(origin.path)
        ), str(origin.path)
    records, provenance = load_hub_split(origin.hub, origin.split)
    return to_canonical(task, origin.split, records, provenance), provenance


def is_up_to_date(out_dir: Path, fingerprint: dict) -> bool:
    manifest = out_dir / MANIFEST
    if not manifest.is_file():
        return False
    old = read_json(manifest)
    present = all((out_dir / f"{s}.parquet").is_file() for s in old.get("splits", {}))
    return present and {k: old.get(k) for k in fingerprint} == fingerprint


def prepare_task(
    task: TaskSpec, out_dir: Path, glue: str | None = None, overrides: dict | None = None
) -> dict:
    """Write ``<out_dir>/<split>.parquet`` and ``manifest.json``; a no-op when inputs are unchanged."""
    origins = plan_origins(task, glue, overrides or {})
    fingerprint = _fingerprint(task, origins)
    if is_up_to_date(out_dir, fingerprint):
        log.info("%s: up to date (%s)", task.name, out_dir)
        return read_json(out_dir / MANIFEST)
    splits = {}
    with atomic_dir(out_dir) as tmp:
        for split, origin in origins.items():
            frame, source = _read_split(task, origin)
            frame.to_parquet(tmp / f"{split}.parquet", index=False)
            splits[split] = {
                "rows": len(frame),
                "source": source,
                "labelled": bool(frame["label"].notna().any()),
            }
        manifest = fingerprint | {
            "task": task.name,
            "splits": splits,
            "unavailable": [s for s in task.splits if s not in origins],
        }
        write_json(tmp / MANIFEST, manifest)
    return manifest
