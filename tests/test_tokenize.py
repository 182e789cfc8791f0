"""`mtdnn tokenize` on real RTE with the bundled MiniLM tokenizer: unpadded storage, truncation,
and a cache keyed by checksums (not mtimes)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mtdnn.model.encoders import resolve_encoder
from mtdnn.prepare import MANIFEST, prepare_task
from mtdnn.tasks import load_tasks
from mtdnn.tokenize import load_split, load_tokenizer

MAX_LEN = 64
RTE = load_tasks()["rte"]


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(resolve_encoder("minilm"))


@pytest.fixture(scope="module")
def canonical(glue_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("canonical") / "rte"
    prepare_task(RTE, out, str(glue_dir))
    return out


@pytest.fixture
def tokenized(cli, canonical, tmp_path):
    """Tokenize RTE via the CLI into a fresh directory; returns a function that (re)runs it."""
    out = tmp_path / "tok" / "rte"

    def run(canonical_dir: Path = canonical) -> dict:
        r = cli(
            ["tokenize", "--task", "rte", "--encoder", "minilm", "--max-len", MAX_LEN,
             "--canonical", canonical_dir, "--out", out],
            tmp_path,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        return json.loads((out / MANIFEST).read_text())

    run.out = out
    return run


def snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    entries = [directory, *sorted(directory.iterdir())]
    return {p.name: (p.stat().st_mtime_ns, p.stat().st_ino) for p in entries}


def test_unpadded_and_truncated(tokenized, canonical, tokenizer):
    manifest = tokenized()
    assert {s: v["rows"] for s, v in manifest["splits"].items()} == {
        "train": 2490,
        "dev": 277,
        "test": 3000,
    }
    assert manifest["max_len"] == MAX_LEN
    train = load_split(tokenized.out, "train")
    ids = train["input_ids"].to_pylist()
    types = train["token_type_ids"].to_pylist()
    lengths = train["length"].to_pylist()
    assert lengths == [len(x) for x in ids] == [len(t) for t in types]
    # nothing padded on disk: lengths vary, no pad token, all within max_len
    assert len(set(lengths)) > 20
    assert max(lengths) == MAX_LEN and min(lengths) < MAX_LEN // 2
    assert not any(tokenizer.pad_token_id in x for x in ids)
    assert all(x[0] == tokenizer.cls_token_id and x[-1] == tokenizer.sep_token_id for x in ids)
    assert sum(lengths) == manifest["splits"]["train"]["tokens"]

    # a pair longer than max_len is truncated (longest first), not rejected; both segments survive
    frame = pq.read_table(canonical / "train.parquet").to_pandas()
    full = tokenizer(frame["text_a"].tolist(), frame["text_b"].tolist())["input_ids"]
    long = [i for i, x in enumerate(full) if len(x) > MAX_LEN]
    assert len(long) > 100
    for i in long[:50]:
        assert lengths[i] == MAX_LEN
        assert ids[i].count(tokenizer.sep_token_id) == 2 and 1 in types[i]
    assert train["uid"].to_pylist() == frame["uid"].tolist()

    labels = train["label"].to_pylist()
    assert labels == [RTE.labels.index(v) for v in frame["label"]]
    assert set(load_split(tokenized.out, "test")["label"].to_pylist()) == {-1}


def test_cache_reused_then_checksum_detects_edit(tokenized, canonical, tmp_path):
    first = tokenized()
    dev_ids = load_split(tokenized.out, "dev")["input_ids"].to_pylist()
    before = snapshot(tokenized.out)
    assert tokenized() == first
    assert snapshot(tokenized.out) == before  # nothing rewritten

    # edit a canonical file, then restore its mtime: only the checksum can notice
    edited = tmp_path / "canonical"
    edited.mkdir()
    for p in canonical.iterdir():
        (edited / p.name).write_bytes(p.read_bytes())
        os.utime(edited / p.name, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns))
    assert tokenized(edited)["canonical"] == first["canonical"]  # a copy is the same data
    before = snapshot(tokenized.out)

    dev = edited / "dev.parquet"
    stat = dev.stat()
    table = pq.read_table(dev).to_pandas()
    table.loc[0, "text_b"] = "Steve Jobs never worked for Apple in any capacity whatsoever."
    table.to_parquet(dev, index=False)
    os.utime(dev, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert dev.stat().st_mtime_ns == stat.st_mtime_ns

    second = tokenized(edited)
    assert second["canonical"]["dev"] != first["canonical"]["dev"]
    assert second["canonical"]["train"] == first["canonical"]["train"]
    assert snapshot(tokenized.out) != before
    new_dev = load_split(tokenized.out, "dev")["input_ids"].to_pylist()
    assert len(new_dev) == 277
    assert new_dev[0] != dev_ids[0] and new_dev[1:] == dev_ids[1:]
    assert not list(tokenized.out.parent.glob(".*.tmp"))


def test_different_max_len_is_a_different_cache(tokenized, cli, canonical, tmp_path):
    tokenized()
    out = tmp_path / "tok32"
    r = cli(
        ["tokenize", "--task", "rte", "--max-len", 32, "--canonical", canonical, "--out", out],
        tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert max(load_split(out, "dev")["length"].to_pylist()) == 32
    assert json.loads((out / MANIFEST).read_text())["max_len"] == 32
