"""The table ``train_throughput.py`` prints: ex/s, tokens/s, padding efficiency, ratios and MFU.

Useful FLOPs of the rows = 6 * P * sum(len) + 12 * L * H * sum(len^2), with P the transformer
blocks' parameters (no embeddings, pooler, head) and len the real (unpadded) lengths. MFU is
useful FLOP/s divided by the GEMM peak of the dtype the runs compute in, measured in the same run:
bf16 where the CPU has it natively (autocast then pays), fp32 otherwise (autocast is off there).
"""

from __future__ import annotations

import numpy as np

import common
from train_contenders import Result, Rows

NAMES = {
    "a": "(a) HF Trainer, pad 128, fp32",
    "b": "(b) HF Trainer, dyn pad + group_by_length, bf16",
    "c": "(c) plain loop, sorted buckets, bf16, fused AdamW",
    "d": "(d) mtdnn fit, single task",
    "e": "(e) mtdnn fit, all tasks (Algorithm 1)",
    "f": "(f) mtdnn fit, single task, torch.compile",
    "g": "(g) mtdnn fit, single task, pad_to_multiple_of 8",
}
HEADER = [
    "task",
    "contender",
    "ex/s",
    "real tok/s",
    "pad eff",
    "vs (b)",
    "vs (a)",
    "GFLOP/s",
    "MFU",
    "others' CPU",
    "all runs (ex/s)",
]


def useful_flops(lengths: np.ndarray, params: int, layers: int, hidden: int) -> float:
    lengths = lengths.astype(np.float64)
    return 6.0 * params * lengths.sum() + 12.0 * layers * hidden * (lengths**2).sum()


def encoder_shape(enc_path: str) -> tuple[int, int, int]:
    """Transformer-block parameters, layers and hidden size: what ``useful_flops`` needs."""
    from transformers import AutoModel

    m = AutoModel.from_pretrained(enc_path)
    params = sum(p.numel() for p in m.encoder.layer.parameters())
    return params, m.config.num_hidden_layers, m.config.hidden_size


def pick(rs: list[Result], quiet: float) -> Result:
    """The median of the runs taken while the machine was quiet, else the least disturbed run."""
    ok = sorted((r for r in rs if r.others <= quiet), key=lambda r: r.seconds)
    return ok[len(ok) // 2] if ok else min(rs, key=lambda r: r.others)


def contenders_of(label: str, tasks: list[str], med: dict, results: dict) -> dict:
    """Per contender: the picked runs covering ``tasks`` (all of them for "all"), every run, ex/s."""
    agg = {}
    for k in "abcdfg":
        if k in med and all(t in med[k] for t in tasks):
            runs = results[k][tasks[0]] if len(tasks) == 1 else []
            agg[k] = ([med[k][t] for t in tasks], runs)
    if label == "all" and "e" in med:
        name = "+".join(tasks)
        agg["e"] = ([med["e"][name]], results["e"][name])
    return {
        k: (picked, runs, sum(r.examples for r in picked) / sum(r.seconds for r in picked))
        for k, (picked, runs) in agg.items()
    }


def table_row(label: str, k: str, entry, agg: dict, flops: float, peak: float, quiet: float):
    picked, runs, ex_s = entry
    sec = sum(r.seconds for r in picked)
    tokens = sum(r.tokens for r in picked)
    others = max(r.others for r in picked)
    return [
        label,
        NAMES[k] + (" (sum of tasks)" if label == "all" and k != "e" else ""),
        f"{ex_s:.1f}",
        f"{tokens / sec:,.0f}",
        f"{tokens / sum(r.padded for r in picked):.2f}",
        f"{ex_s / agg['b'][2]:.2f}x" if "b" in agg else "-",
        f"{ex_s / agg['a'][2]:.1f}x" if "a" in agg else "-",
        f"{flops / sec / 1e9:.0f}",
        f"{100 * flops / sec / peak:.0f} %",
        f"{100 * others:.0f} %" + (" *" if others > quiet else ""),
        " ".join(f"{r.ex_s:.1f}" + ("*" if r.others > quiet else "") for r in runs),
    ]


def switching_line(med: dict, tasks: list[str]) -> list[str]:
    """(e) against the sum of (d): what running the tasks as one multi-task epoch costs."""
    if "e" not in med or "d" not in med or len(tasks) < 2 or not all(t in med["d"] for t in tasks):
        return []
    e = med["e"]["+".join(tasks)]
    single = sum(med["d"][t].seconds for t in tasks)
    return [
        f"\n(e) vs (d): the {len(tasks)} single-task epochs took {single:.1f} s in all, the one "
        f"multi-task epoch over the same rows {e.seconds:.1f} s -> (e)/(d) = "
        f"{single / e.seconds:.2f}x (1.00x = task switching costs nothing)"
    ]


def fit_lines(results: dict, quiet: float) -> list[str]:
    """What ``fit`` spends outside the timed loop, for the mtdnn contenders."""
    lines = []
    for k in "de":
        for t, rs in results.get(k, {}).items():
            x = pick(rs, quiet).extra
            lines.append(
                f"{k} {t}: fit() wall {x['fit_wall_s']:.1f} s, of which {x['after_loop_s']:.1f} s "
                f"after the timed loop (end-of-epoch resume checkpoint + final model write); fit's "
                f"own summary: {x['fit_summary_ex_s']:.1f} ex/s; autocast dtype {x['dtype']}"
            )
    return lines


def mfu_dtype(peak: dict) -> str:
    """bf16 when it was probed (the CPU has it natively), else fp32."""
    return "bfloat16" if "bfloat16" in peak else "float32"


def report(results: dict, data: dict[str, Rows], shape, peak: dict, quiet: float) -> str:
    """The markdown table, one group per task plus "all", and the notes under it."""
    params, layers, hidden = shape
    compute_peak = max(peak[mfu_dtype(peak)].values()) * 1e9
    med = {k: {t: pick(v, quiet) for t, v in d.items()} for k, d in results.items()}
    tasks = list(data)
    groups = [(t, [t]) for t in tasks] + ([("all", tasks)] if len(tasks) > 1 else [])
    rows = []
    for label, ts in groups:
        flops = sum(useful_flops(data[t].lengths, params, layers, hidden) for t in ts)
        agg = contenders_of(label, ts, med, results)
        rows += [table_row(label, k, e, agg, flops, compute_peak, quiet) for k, e in agg.items()]
    lines = [common.table(rows, HEADER)]
    lines.append(
        f"* = other processes used more than {100 * quiet:.0f} % of the machine during that run "
        "(contended); the table uses the median of the quiet runs, else the least contended one."
    )
    return "\n".join(lines + switching_line(med, tasks) + fit_lines(results, quiet))
