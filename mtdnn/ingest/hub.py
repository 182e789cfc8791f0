"""Reading a task from the Hugging Face Hub (or a local directory laid out like a Hub dataset repo)."""

from __future__ import annotations

from pathlib import Path

from mtdnn.errors import MtdnnError
from mtdnn.fileio import sha256_file, sha256_json
from mtdnn.ingest.canonical import Record
from mtdnn.ingest.readers import read_parquet
from mtdnn.ingest.sources import hub_root, split_files
from mtdnn.tasks import HubSource

Columns = dict[str, list]


def load_hub_split(hub: HubSource, split: str) -> tuple[list[Record], str]:
    """Return records for our split name and a provenance string (repo, config, fingerprint)."""
    hub_split = hub.splits[split]
    origin = f"hub:{hub.path}/{hub.name or ''}/{hub_split}"
    read = _read_local if hub_root(hub) is not None else _download
    table, fingerprint = read(hub, hub_split)
    missing = [c for c in hub.columns.values() if c not in table]
    if missing:
        raise MtdnnError(f"{hub.path}[{hub.name}/{hub_split}]: missing column '{missing[0]}'")
    cols = {k: table[c] for k, c in hub.columns.items()}
    if "label" in cols and hub.no_label is not None:
        cols["label"] = [_unless_sentinel(v, hub.no_label) for v in cols["label"]]
    n = len(next(iter(cols.values())))
    records = [{k: cols[k][i] for k in cols} | {"_loc": f"{origin}: row {i}"} for i in range(n)]
    return records, f"{origin}@{fingerprint}"


def _download(hub: HubSource, hub_split: str) -> tuple[Columns, str]:
    import datasets  # imported lazily: it is slow to import and only needed for Hub data

    ds = datasets.load_dataset(hub.path, hub.name, split=hub_split)
    return ds.to_dict(), ds._fingerprint


def _read_local(hub: HubSource, hub_split: str) -> tuple[Columns, str]:
    """A Hub-style local repo (``data.hub_dir``, or the HF cache's snapshot when the Hub cannot be
    used): its split's parquet shards, read as they are.
    Files are named explicitly (datasets' own inference would fold MNLI's validation_matched and
    validation_mismatched into one "validation" split), and nothing is cached or downloaded. The
    fingerprint is the sha256 of the shards."""
    files = split_files(hub, hub_split)
    if not files:
        raise MtdnnError(
            f"{Path(hub_root(hub), hub.name or '')}: no {hub_split}-*.parquet files (expected the "
            "Hub's layout, <repo>/<config>/<split>-00000-of-00001.parquet)"
        )
    frames = [read_parquet(Path(f)) for f in files]
    columns = {c: [v for frame in frames for v in frame[c].tolist()] for c in frames[0].columns}
    return columns, sha256_json([sha256_file(f) for f in files])[:16]


def _unless_sentinel(value, no_label: float):
    """The Hub's "no label" value (-1, STS-B's -1.0) as a missing label; anything else as is."""
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return None if is_number and value == no_label else value
