"""Tokenization throughput of `mtdnn tokenize` on real SST-2 train (67,349 sentences).

Measures, in one process:
  * tokenizer load (``load_tokenizer``; the first call also pays the transformers import),
  * the cold path: ``tokenize_task`` with no cache (canonical parquet -> Arrow), which loads the
    tokenizer itself, so it is reported both with and without that load,
  * a stage breakdown of the cold path (read parquet, to_pydict, Rust tokenizer, Python list
    conversion, Arrow arrays, Arrow write, fingerprints),
  * the cached path: a second ``tokenize_task`` call (cache hit), and ``load_task_data`` (what the
    trainer does with the cache).

Usage:
    python benchmarks/tokenize_throughput.py [--repeats 3] [--profile] [--task sst2]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

TARGET = 10_000  # ex/s, cold path


def train_only_canonical(task, src: Path) -> Path:
    """A canonical dir holding just the train split, so the figures are for the train sentences."""
    dst = Path("data/canonical-train") / task.name
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src / "train.parquet", dst / "train.parquet")
    shutil.copy2(src / "manifest.json", dst / "manifest.json")
    return dst


def timed(fn, repeats: int) -> tuple[float, list[float], object]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return common.median(times), times, out


def stage_breakdown(task, canonical: Path, tok, max_len: int) -> dict[str, float]:
    """The cold path's pieces, timed one by one with the same calls tokenize_task makes."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mtdnn import tokenize as T

    st: dict[str, float] = {}
    t = time.perf_counter()
    fp = T._fingerprint(canonical, T.tokenizer_fingerprint(tok), max_len)
    st["fingerprint (sha256 parquet + tokenizer json)"] = time.perf_counter() - t
    t = time.perf_counter()
    table = pq.read_table(canonical / "train.parquet")
    st["read parquet"] = time.perf_counter() - t
    t = time.perf_counter()
    cols = table.to_pydict()
    st["table.to_pydict"] = time.perf_counter() - t
    text_a = cols["text_a"]
    pair = any(v is not None for v in cols["text_b"])
    text_b = cols["text_b"] if pair else None
    t = time.perf_counter()
    ids, types = T.encode(tok, text_a, text_b, max_len)
    st["encode() (HF tokenizer __call__, Rust + Python lists)"] = time.perf_counter() - t
    # encode() = Rust encode_batch + HF converting every Encoding to Python lists. It runs first
    # because the tokenizer keeps the truncation settings of the last __call__, which the Rust
    # call below then reuses.
    t = time.perf_counter()
    for lo in range(0, len(text_a), T.CHUNK):
        tok._tokenizer.encode_batch(
            list(zip(text_a[lo : lo + T.CHUNK], text_b[lo : lo + T.CHUNK], strict=True))
            if pair
            else text_a[lo : lo + T.CHUNK]
        )
    st["  of which: Rust encode_batch alone"] = time.perf_counter() - t
    t = time.perf_counter()
    arrays = (T._list_array(ids, np.int32), T._list_array(types, np.int8))
    st["_list_array x2 (Python lists -> Arrow)"] = time.perf_counter() - t
    t = time.perf_counter()
    out = T.tokenize_frame(task, table, tok, max_len)
    st["tokenize_frame total (to_pydict+encode+arrays+labels)"] = time.perf_counter() - t
    tmp = Path("data/stage-write.arrow")
    t = time.perf_counter()
    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, out.schema) as w:
        w.write_table(out)
    st["Arrow IPC write"] = time.perf_counter() - t
    tmp.unlink()
    del arrays, fp
    return st


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    common.common_args(p)
    p.add_argument("--task", default="sst2")
    p.add_argument("--repeats", type=int, default=3, help="cold/cached repeats (median)")
    p.add_argument("--profile", action="store_true", help="cProfile one cold call")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)
    common.offline_env(args.threads)
    t = time.perf_counter()
    import transformers  # noqa: F401

    t_import = time.perf_counter() - t
    common.setup_env(args.threads)

    with common.scratch(args.workdir, args.keep):
        from mtdnn.model.encoders import resolve_encoder
        from mtdnn.tokenize import load_tokenizer, tokenize_task
        from mtdnn.training.batching import load_task_data

        (task,) = common.task_specs([args.task])
        canonical = train_only_canonical(task, common.prepare(task, args.glue_dir))
        enc_path = resolve_encoder(args.encoder)
        out = Path(f"data/tokenized/{args.encoder}-L{args.max_len}/{task.name}")

        t = time.perf_counter()
        tok = load_tokenizer(enc_path)
        t_first_load = time.perf_counter() - t
        t_load, loads, _ = timed(lambda: load_tokenizer(enc_path), args.repeats)

        def cold():
            shutil.rmtree(out, ignore_errors=True)
            return tokenize_task(task, canonical, out, enc_path, args.max_len)

        t_cold, colds, manifest = timed(cold, args.repeats)
        n = manifest["splits"]["train"]["rows"]
        tokens = manifest["splits"]["train"]["tokens"]
        t_cached, cacheds, _ = timed(
            lambda: tokenize_task(task, canonical, out, enc_path, args.max_len), args.repeats
        )
        t_loaddata, _, data = timed(lambda: load_task_data(task, out, "train"), args.repeats)
        assert len(data) == n
        stages = stage_breakdown(task, canonical, tok, args.max_len)

        cold_ex = n / t_cold
        cold_ex_noload = n / max(t_cold - t_load, 1e-9)
        cached_ex = n / t_cached
        res = {
            "task": task.name,
            "examples": n,
            "tokens": tokens,
            "machine": common.machine(),
            "load_average": common.load_average(),
            "import_transformers_s": t_import,
            "tokenizer_first_load_s": t_first_load,
            "tokenizer_load_s": t_load,
            "cold_s": t_cold,
            "cold_runs_s": colds,
            "cold_ex_s": cold_ex,
            "cold_ex_s_excl_tokenizer_load": cold_ex_noload,
            "cached_s": t_cached,
            "cached_runs_s": cacheds,
            "cached_ex_s": cached_ex,
            "cached_over_cold": cached_ex / cold_ex,
            "load_task_data_s": t_loaddata,
            "stages_s": stages,
        }

        print(f"\n# tokenize throughput: {task.name} train, {n:,} examples, {tokens:,} tokens")
        print(f"machine: {res['machine']}; load average {res['load_average']}")
        print(f"median of {args.repeats} runs; max_len {args.max_len}; encoder {args.encoder}\n")
        rows = [
            ["import transformers (once)", f"{t_import:.2f}", "-"],
            ["tokenizer load, first (after import)", f"{t_first_load:.3f}", "-"],
            ["tokenizer load (warm)", f"{t_load:.3f}", "-"],
            ["cold: tokenize_task, no cache", f"{t_cold:.2f}", f"{cold_ex:,.0f}"],
            ["cold, excluding tokenizer load", f"{t_cold - t_load:.2f}", f"{cold_ex_noload:,.0f}"],
            ["cached: tokenize_task, cache hit", f"{t_cached:.3f}", f"{cached_ex:,.0f}"],
            ["load_task_data (Arrow -> numpy)", f"{t_loaddata:.3f}", f"{n / t_loaddata:,.0f}"],
        ]
        print(common.table(rows, ["path", "seconds", "examples/s"]))
        print(f"\ncached / cold: {cached_ex / cold_ex:.1f}x")
        verdict = "meets" if cold_ex >= TARGET else "MISSES"
        print(f"cold target >= {TARGET:,} ex/s: {verdict} ({cold_ex:,.0f} ex/s)\n")
        print("cold-path stage breakdown (one run each):")
        print(
            common.table(
                [[k, f"{v:.3f}", f"{100 * v / t_cold:.0f} %"] for k, v in stages.items()],
                ["stage", "seconds", "share of cold"],
            )
        )

        if args.profile:
            import cProfile
            import pstats

            shutil.rmtree(out, ignore_errors=True)
            prof = cProfile.Profile()
            prof.enable()
            tokenize_task(task, canonical, out, enc_path, args.max_len)
            prof.disable()
            print("\ncProfile of one cold tokenize_task (top 15 by cumulative time):")
            pstats.Stats(prof, stream=sys.stdout).sort_stats("cumulative").print_stats(15)

        if args.json:
            args.json.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
