"""Evaluation speed: mtdnn's dev-set inference against HF ``Trainer.predict`` on the same rows.

Every contender scores the same dev rows (the full official dev split of each task, with mtdnn's
token ids) with the bundled MiniLM-L6, under the same autocast policy (bf16 where the CPU has it
natively, as ``precision: auto`` resolves it; else fp32):

  (a) HF ``Trainer.predict``, its defaults: ``per_device_eval_batch_size`` 8,
      ``DataCollatorWithPadding``, rows in dataset order;
  (b) HF ``Trainer.predict`` at mtdnn's eval batch size (64), otherwise as (a);
  (c) a plain ``inference_mode`` loop: ``AutoModelForSequenceClassification``, batches of 64 in
      dataset order, dynamic padding, logits gathered on the device and copied once at the end;
  (d) mtdnn: ``mtdnn.model.inference.infer``, what every table cell uses.

Each contender runs once untimed on the first batch, then the whole dev set ``--repeats`` times;
the table shows the median examples/s and the ratios to (a) and (b). Models are built outside the
timed window. Other processes on the machine are measured as in ``train_throughput.py``.

Usage:
    python benchmarks/eval_throughput.py                   # SST-2, MRPC, RTE, STS-B, CoLA; ~3 min
    python benchmarks/eval_throughput.py --tasks rte --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from pathlib import Path

import common

CONTENDERS = {
    "a": "HF Trainer.predict, defaults (batch 8)",
    "b": "HF Trainer.predict, batch 64",
    "c": "plain inference_mode loop, batch 64",
    "d": "mtdnn infer (length-sorted, batch 64)",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    common.common_args(p)
    p.add_argument("--tasks", default="sst2,mrpc,rte,stsb,cola", help="comma-separated tasks")
    p.add_argument("--repeats", type=int, default=3, help="timed passes per contender (median)")
    p.add_argument("--batch", type=int, default=64, help="eval batch of (b), (c) and (d)")
    args = p.parse_args(argv)
    args.tasks = [t for t in args.tasks.split(",") if t]
    return args


def dev_rows(spec, encoder: str, max_len: int):
    """The task's first dev split, as mtdnn's tokenized cache holds it."""
    from mtdnn import paths
    from mtdnn.runtime.batching import load_task_data

    return load_task_data(
        spec, paths.tokenized_dir(encoder, max_len, spec.name), spec.dev_splits[0]
    )


def hf_predict(model, rows, tokenizer, batch: int | None, dtype, work: Path) -> Callable[[], None]:
    """(a) or (b): one ``Trainer.predict`` over the rows (a Trainer built once, outside the clock)."""
    import datasets
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    feats = [{k: v for k, v in f.items() if k != "labels"} for f in common.token_examples(rows)]
    dataset = datasets.Dataset.from_list(feats)
    kw = dict(output_dir=str(work), report_to="none", use_cpu=True, disable_tqdm=True)
    kw |= dict(dataloader_num_workers=0, bf16=dtype is not None)
    if batch is not None:
        kw["per_device_eval_batch_size"] = batch
    trainer = Trainer(
        model=model,
        args=TrainingArguments(**kw),
        data_collator=DataCollatorWithPadding(tokenizer),
    )
    return lambda: trainer.predict(dataset)


def plain_loop(model, rows, batch: int, dtype) -> Callable[[], None]:
    """(c): dataset order, dynamic padding, one copy to the host at the end."""
    import numpy as np
    import torch

    from mtdnn.runtime.batching import collate

    def run() -> None:
        model.eval()
        outs = []
        cast = torch.autocast("cpu", dtype or torch.float32, enabled=dtype is not None)
        with torch.inference_mode(), cast:
            for lo in range(0, len(rows), batch):
                b = collate(rows, np.arange(lo, min(lo + batch, len(rows))))
                b.pop("labels"), b.pop("groups", None)
                outs.append(model(**b).logits.float())
        torch.cat(outs).numpy()

    return run


def ours(spec, rows, batch: int, args, dtype, work: Path) -> Callable[[], None]:
    """(d): the model `mtdnn finetune` builds (encoder, readout, head), scored by ``infer``."""
    import torch

    from mtdnn.config import TrainConfig
    from mtdnn.model.inference import infer
    from mtdnn.train import build_run

    cfg = TrainConfig(max_train_examples=8, precision="auto", eval_batch_size=batch)
    run = build_run([spec], args.encoder, args.max_len, cfg, 1, work / f"ours-{spec.name}")
    device = torch.device("cpu")
    return lambda: infer(run.model, spec.name, rows, batch, device, dtype)


def timed(fn: Callable[[], None], repeats: int) -> tuple[float, float]:
    """(median seconds of ``repeats`` passes, others' CPU share over them), after one warm pass."""
    fn()
    seconds, others = [], []
    for _ in range(repeats):
        a = common.snap()
        fn()
        b = common.snap()
        seconds.append(b.t - a.t)
        others.append(common.others_share(a, b))
    return statistics.median(seconds), max(others)


def contenders(spec, rows, args, dtype, work: Path) -> dict[str, Callable[[], None]]:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from mtdnn.model.encoders import resolve_encoder

    path = resolve_encoder(args.encoder)
    tok = AutoTokenizer.from_pretrained(path)

    def hf():
        return AutoModelForSequenceClassification.from_pretrained(path, num_labels=spec.num_outputs)

    return {
        "a": hf_predict(hf(), rows, tok, None, dtype, work / "a"),
        "b": hf_predict(hf(), rows, tok, args.batch, dtype, work / "b"),
        "c": plain_loop(hf(), rows, args.batch, dtype),
        "d": ours(spec, rows, args.batch, args, dtype, work),
    }


def measure(args: argparse.Namespace, work: Path) -> list[list[str]]:
    import torch

    from mtdnn.runtime.precision import dtype_name, resolve_dtype

    dtype = resolve_dtype("auto", torch.device("cpu"))
    print(f"machine: {common.machine()}; autocast {dtype_name(dtype)}", flush=True)
    table = []
    for spec in common.task_specs(args.tasks):
        common.prepare(spec, args.glue_dir)
        common.tokenize(spec, args.encoder, args.max_len)
        rows = dev_rows(spec, args.encoder, args.max_len)
        secs = {}
        for key, fn in contenders(spec, rows, args, dtype, work).items():
            secs[key], others = timed(fn, args.repeats)
            mark = " *" if others > 0.10 else ""
            print(f"  {spec.name:5s} ({key}) {len(rows) / secs[key]:8.1f} ex/s{mark}", flush=True)
        for key, s in secs.items():
            table.append(
                [spec.name, f"({key}) {CONTENDERS[key]}", f"{len(rows)}", f"{len(rows) / s:,.1f}"]
                + [f"{secs[ref] / s:.2f}×" for ref in ("a", "b")]
            )
    return table


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    common.setup_env(args.threads)
    common.require_bench_group("eval_throughput.py")
    with common.scratch(args.workdir, args.keep) as work:
        table = measure(args, work)
    header = ["task", "contender", "dev rows", "ex/s", "vs (a)", "vs (b)"]
    print("\n" + common.table(table, header))
    print("\n* = other processes used more than 10 % of the machine during a timed pass")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
