"""Reading a task from the Hugging Face Hub (or a local directory laid out like a Hub dataset repo)."""

from __future__ import annotations

from pathlib import Path

from mtdnn.canonical import Record
from mtdnn.errors import MtdnnError
from mtdnn.tasks import HubSource


def load_hub_split(hub: HubSource, split: str) -> tuple[list[Record], str]:
    """Return records for our split name and a provenance string (repo, config, fingerprint)."""
    import datasets  # imported lazily: it is slow to import and only needed for Hub data

    hub_split = hub.splits[split]
    if Path(hub.path).is_dir():
        # A Hub-style local repo: <dir>/<config>/<split>-00000-of-00001.parquet
        ds = datasets.load_dataset(hub.path, data_dir=hub.name, split=hub_split)
    else:
        ds = datasets.load_dataset(hub.path, hub.name, split=hub_split)
    missing = [c for c in hub.columns.values() if c not in ds.column_names]
    if missing:
        raise MtdnnError(f"{hub.path}[{hub.name}/{hub_split}]: missing column '{missing[0]}'")
    cols = {k: ds[c] for k, c in hub.columns.items()}
    origin = f"hub:{hub.path}/{hub.name or ''}/{hub_split}"
    records = [
        {k: cols[k][i] for k in cols} | {"_loc": f"{origin}: row {i}"} for i in range(len(ds))
    ]
    return records, f"{origin}@{ds._fingerprint}"
