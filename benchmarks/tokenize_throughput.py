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
    fp = T.cache_fingerprint(canonical, T.tokenizer_fingerprint(tok), max_len)
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
    arrays = (T.list_array(ids, np.int32), T.list_array(types, np.int8))
    st["list_array x2 (Python lists -> Arrow)"] = time.perf_counter() - t
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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    common.common_args(p)
    p.add_argument("--task", default="sst2")
    p.add_argument("--repeats", type=int, default=3, help="cold/cached repeats (median)")
    p.add_argument("--profile", action="store_true", help="cProfile one cold call")
    p.add_argument("--json", type=Path, help="also write the results here")
    return p.parse_args(argv)


def measure(args: argparse.Namespace, task, canonical: Path, enc_path: str, out: Path) -> dict:
    """Tokenizer loads, the cold and cached ``tokenize_task``, and ``load_task_data``, in seconds."""
    from mtdnn.runtime.batching import load_task_data
    from mtdnn.tokenize import load_tokenizer, tokenize_task

    t = time.perf_counter()
    tok = load_tokenizer(enc_path)
    first_load = time.perf_counter() - t
    t_load, _, _ = timed(lambda: load_tokenizer(enc_path), args.repeats)

    def cold():
        shutil.rmtree(out, ignore_errors=True)
        return tokenize_task(task, canonical, out, enc_path, args.max_len)

    t_cold, colds, manifest = timed(cold, args.repeats)
    cached = lambda: tokenize_task(task, canonical, out, enc_path, args.max_len)  # noqa: E731
    t_cached, cacheds, _ = timed(cached, args.repeats)
    t_data, _, data = timed(lambda: load_task_data(task, out, "train"), args.repeats)
    n = manifest["splits"]["train"]["rows"]
    assert len(data) == n
    return {
        "task": task.name,
        "examples": n,
        "tokens": manifest["splits"]["train"]["tokens"],
        "machine": common.machine(),
        "load_average": common.load_average(),
        "tokenizer_first_load_s": first_load,
        "tokenizer_load_s": t_load,
        "cold_s": t_cold,
        "cold_runs_s": colds,
        "cold_ex_s": n / t_cold,
        "cold_ex_s_excl_tokenizer_load": n / max(t_cold - t_load, 1e-9),
        "cached_s": t_cached,
        "cached_runs_s": cacheds,
        "cached_ex_s": n / t_cached,
        "cached_over_cold": t_cold / t_cached,
        "load_task_data_s": t_data,
        "stages_s": stage_breakdown(task, canonical, tok, args.max_len),
    }


def print_results(res: dict, args: argparse.Namespace) -> None:
    n, t_cold, t_load = res["examples"], res["cold_s"], res["tokenizer_load_s"]
    print(f"\n# tokenize throughput: {res['task']} train, {n:,} examples, {res['tokens']:,} tokens")
    print(f"machine: {res['machine']}; load average {res['load_average']}")
    print(f"median of {args.repeats} runs; max_len {args.max_len}; encoder {args.encoder}\n")
    rows = [
        ["import transformers (once)", f"{res['import_transformers_s']:.2f}", "-"],
        ["tokenizer load, first (after import)", f"{res['tokenizer_first_load_s']:.3f}", "-"],
        ["tokenizer load (warm)", f"{t_load:.3f}", "-"],
        ["cold: tokenize_task, no cache", f"{t_cold:.2f}", f"{res['cold_ex_s']:,.0f}"],
        [
            "cold, excluding tokenizer load",
            f"{t_cold - t_load:.2f}",
            f"{res['cold_ex_s_excl_tokenizer_load']:,.0f}",
        ],
        [
            "cached: tokenize_task, cache hit",
            f"{res['cached_s']:.3f}",
            f"{res['cached_ex_s']:,.0f}",
        ],
        [
            "load_task_data (Arrow -> numpy)",
            f"{res['load_task_data_s']:.3f}",
            f"{n / res['load_task_data_s']:,.0f}",
        ],
    ]
    print(common.table(rows, ["path", "seconds", "examples/s"]))
    print(f"\ncached / cold: {res['cached_over_cold']:.1f}x")
    verdict = "meets" if res["cold_ex_s"] >= TARGET else "MISSES"
    print(f"cold target >= {TARGET:,} ex/s: {verdict} ({res['cold_ex_s']:,.0f} ex/s)\n")
    print("cold-path stage breakdown (one run each):")
    stages = [[k, f"{v:.3f}", f"{100 * v / t_cold:.0f} %"] for k, v in res["stages_s"].items()]
    print(common.table(stages, ["stage", "seconds", "share of cold"]))


def profile_cold(task, canonical: Path, enc_path: str, out: Path, max_len: int) -> None:
    """cProfile one cold ``tokenize_task`` and print its top 15 functions by cumulative time."""
    import cProfile
    import pstats

    from mtdnn.tokenize import tokenize_task

    shutil.rmtree(out, ignore_errors=True)
    prof = cProfile.Profile()
    prof.enable()
    tokenize_task(task, canonical, out, enc_path, max_len)
    prof.disable()
    print("\ncProfile of one cold tokenize_task (top 15 by cumulative time):")
    pstats.Stats(prof, stream=sys.stdout).sort_stats("cumulative").print_stats(15)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    common.offline_env(args.threads)
    t = time.perf_counter()
    import transformers  # noqa: F401

    t_import = time.perf_counter() - t
    common.setup_env(args.threads)
    with common.scratch(args.workdir, args.keep):
        from mtdnn import paths
        from mtdnn.model.encoders import resolve_encoder

        (task,) = common.task_specs([args.task])
        canonical = train_only_canonical(task, common.prepare(task, args.glue_dir))
        enc_path = resolve_encoder(args.encoder)
        out = paths.tokenized_dir(args.encoder, args.max_len, task.name)
        res = {"import_transformers_s": t_import} | measure(args, task, canonical, enc_path, out)
        print_results(res, args)
        if args.profile:
            profile_cold(task, canonical, enc_path, out, args.max_len)
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
