"""Reading a task from the Hugging Face Hub (or a local directory laid out like a Hub dataset repo)."""

from __future__ import annotations

from pathlib import Path

from mtdnn.canonical import Record
from mtdnn.errors import MtdnnError
from mtdnn.sources import split_files
from mtdnn.tasks import HubSource


def load_hub_split(hub: HubSource, split: str) -> tuple[list[Record], str]:
    """Return records for our split name and a provenance string (repo, config, fingerprint)."""
    import datasets  # imported lazily: it is slow to import and only needed for Hub data

    hub_split = hub.splits[split]
    if Path(hub.path).is_dir():
        # A Hub-style local repo. Its files are named explicitly: datasets' own inference folds
        # MNLI's validation_matched and validation_mismatched into one "validation" split.
        files = split_files(hub, hub_split)
        if not files:
            raise MtdnnError(
                f"{Path(hub.path, hub.name or '')}: no {hub_split}-*.parquet files (expected the "
                "Hub's layout, <repo>/<config>/<split>-00000-of-00001.parquet)"
            )
        ds = datasets.load_dataset("parquet", data_files={hub_split: files}, split=hub_split)
    else:
        ds = datasets.load_dataset(hub.path, hub.name, split=hub_split)
    missing = [c for c in hub.columns.values() if c not in ds.column_names]
    if missing:
        raise MtdnnError(f"{hub.path}[{hub.name}/{hub_split}]: missing column '{missing[0]}'")
    cols = {k: ds[c] for k, c in hub.columns.items()}
    if "label" in cols and hub.no_label is not None:
        cols["label"] = [_unless_sentinel(v, hub.no_label) for v in cols["label"]]
    origin = f"hub:{hub.path}/{hub.name or ''}/{hub_split}"
    records = [
        {k: cols[k][i] for k in cols} | {"_loc": f"{origin}: row {i}"} for i in range(len(ds))
    ]
    return records, f"{origin}@{ds._fingerprint}"


def _unless_sentinel(value, no_label: float):
    """The Hub's "no label" value (-1, STS-B's -1.0) as a missing label; anything else as is."""
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return None if is_number and value == no_label else value
