"""`mtdnn tokenize`: canonical parquet → Arrow token ids, cached per (encoder, task, max_len).

Nothing is padded on disk: batches are padded dynamically. A ``length`` column feeds length grouping.
The cache is keyed by the sha256 of every canonical file plus the tokenizer itself, so an edited file
is noticed even when its mtime is not.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mtdnn.errors import MtdnnError
from mtdnn.fileio import atomic_dir, read_json, sha256_file, sha256_json, write_json
from mtdnn.prepare import MANIFEST
from mtdnn.tasks import TaskSpec, TaskType

log = logging.getLogger(__name__)
CHUNK = (
    4096  # examples per tokenizer call: big enough for the Rust batch path, small enough for RAM
)


def load_tokenizer(path: str):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path, use_fast=True)
    if not tok.is_fast:
        raise MtdnnError(f"{path}: no fast tokenizer available")
    tok.model_max_length = 1 << 30  # silence the length warning: we truncate explicitly
    return tok


def tokenizer_fingerprint(tok) -> str:
    return sha256_json(tok.backend_tokenizer.to_str())


def _label_ids(task: TaskSpec, labels: list) -> np.ndarray:
    if task.type is TaskType.REGRESSION:
        return np.array([np.nan if v is None else v for v in labels], dtype=np.float32)
    index = {name: i for i, name in enumerate(task.labels)}
    return np.array([-1 if v is None else index[v] for v in labels], dtype=np.int64)


def list_array(seqs: list[list[int]], dtype) -> pa.ListArray:
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int32, count=len(seqs))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    values = np.fromiter((t for s in seqs for t in s), dtype=dtype, count=int(offsets[-1]))
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values))


def _type_ids(enc, pair: bool) -> list[list[int]]:
    if "token_type_ids" in enc:
        return enc["token_type_ids"]
    if not pair:
        return [[0] * len(x) for x in enc["input_ids"]]
    # Tokenizers without segment embeddings (RoBERTa) still need the split for SAN's memories.
    return [[1 if s == 1 else 0 for s in e.sequence_ids] for e in enc.encodings]


def encode(tok, text_a: list[str], text_b: list[str] | None, max_len: int) -> tuple[list, list]:
    """Batched fast tokenization with longest-first truncation; returns (input_ids, type_ids)."""
    ids, types = [], []
    for lo in range(0, len(text_a), CHUNK):
        a = text_a[lo : lo + CHUNK]
        b = text_b[lo : lo + CHUNK] if text_b is not None else None
        enc = tok(a, b, truncation="longest_first", max_length=max_len, padding=False)
        ids.extend(enc["input_ids"])
        types.extend(_type_ids(enc, b is not None))
    return ids, types


def tokenize_frame(task: TaskSpec, table: pa.Table, tok, max_len: int) -> pa.Table:
    cols = table.to_pydict()
    pair = any(v is not None for v in cols["text_b"])
    ids, types = encode(tok, cols["text_a"], cols["text_b"] if pair else None, max_len)
    out = {
        "uid": pa.array(cols["uid"], pa.string()),
        "input_ids": list_array(ids, np.int32),
        "token_type_ids": list_array(types, np.int8),
        "length": pa.array(np.fromiter(map(len, ids), np.int32, len(ids))),
        "label": pa.array(_label_ids(task, cols["label"])),
    }
    if task.type is TaskType.RANKING:
        _, group_ids = np.unique(np.array(cols["group"], dtype=object), return_inverse=True)
        out["group"] = pa.array(group_ids.astype(np.int64))
    return pa.table(out)


def cache_fingerprint(canonical_dir: Path, tok_fp: str, max_len: int) -> dict:
    splits = sorted(p.stem for p in canonical_dir.glob("*.parquet"))
    files = {s: sha256_file(canonical_dir / f"{s}.parquet") for s in splits}
    return {"canonical": files, "tokenizer": tok_fp, "max_len": max_len}


def tokenize_task(
    task: TaskSpec, canonical_dir: Path, out_dir: Path, encoder_path: str, max_len: int
) -> dict:
    """Write ``<out_dir>/<split>.arrow`` + manifest; reuse the cache when nothing changed."""
    if not (canonical_dir / MANIFEST).is_file():
        raise MtdnnError(
            f"{canonical_dir}: no prepared data (run `mtdnn prepare --task {task.name}`)"
        )
    if max_len < 8:
        raise MtdnnError(f"tokenize.max_len: expected an integer >= 8, got {max_len}")
    tok = load_tokenizer(encoder_path)
    fp = cache_fingerprint(canonical_dir, tokenizer_fingerprint(tok), max_len)
    if (out_dir / MANIFEST).is_file() and _same(read_json(out_dir / MANIFEST), fp):
        log.info("%s: tokenized cache is up to date (%s)", task.name, out_dir)
        return read_json(out_dir / MANIFEST)
    stats = {}
    with atomic_dir(out_dir) as tmp:
        for split in fp["canonical"]:
            table = tokenize_frame(
                task, pq.read_table(canonical_dir / f"{split}.parquet"), tok, max_len
            )
            with (
                pa.OSFile(str(tmp / f"{split}.arrow"), "wb") as sink,
                pa.ipc.new_file(sink, table.schema) as w,
            ):
                w.write_table(table)
            stats[split] = {
                "rows": table.num_rows,
                "tokens": int(pa.compute.sum(table["length"]).as_py()),
            }
        write_json(tmp / MANIFEST, fp | {"task": task.name, "splits": stats})
    return read_json(out_dir / MANIFEST)


def _same(old: dict, new: dict) -> bool:
    return all(old.get(k) == v for k, v in new.items())


def load_split(tokenized_dir: Path, split: str) -> pa.Table:
    path = tokenized_dir / f"{split}.arrow"
    try:
        with pa.memory_map(str(path)) as src:
            return pa.ipc.open_file(src).read_all()
    except FileNotFoundError:
        raise MtdnnError(
            f"{path}: not found (split '{split}' was not prepared/tokenized)"
        ) from None
    except pa.ArrowInvalid as e:
        raise MtdnnError(f"{path}: corrupt Arrow file ({e})") from None
