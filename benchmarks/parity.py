"""Parity: mtdnn's trainer against HF ``Trainer`` on the same rows, steps, seeds and readout.

For each task and seed, both train the same encoder from the same pre-trained weights:

* mtdnn: ``mtdnn.train.build_run`` (which resolves the rows, the equal-exposure epochs and the
  pooling exactly as ``mtdnn finetune`` does) then ``mtdnn.training.loop.fit``; no best-epoch selection.
* HF ``Trainer``: on mtdnn's own training rows (the same token ids, taken from the built run),
  for the same number of optimizer updates (counted in mtdnn's run), with the same lr, batch size,
  warm-up ratio, weight decay (0.01, biases and LayerNorm excluded), grad-norm clip, linear
  schedule, seed, autocast policy and length-grouped batches. Readout ``cls``:
  ``AutoModelForSequenceClassification`` (the encoder's pooler, dropout, Linear); ``mean``: a small
  module (AutoModel, attention-masked mean of the token states, dropout, Linear). Head dropout is
  the task's (CoLA 0.05); a regression head's bias starts at the mean training label when mtdnn's
  does.

Both are scored on the full official dev split with ``mtdnn.metrics.compute_metrics`` (last epoch).
Budgets: ``full`` = the full training set, 3 epochs, lr 5e-5, warm-up 0.1 (the reference
HF-Trainer setting); ``default`` = the default profile's standard fine-tuning baseline
(``stage_config(params, "finetune", task, init="base")``, then the runner's resolution);
``equal`` = its equal-exposure baseline (``init="equal"``: the same rows, the multi-task epochs
added); ``baselines`` = both of those.

Usage:
    python benchmarks/parity.py                                   # 4 tasks x 3 seeds, hours
    python benchmarks/parity.py --budget default --json parity-default.json
    python benchmarks/parity.py --budget baselines --json parity-baselines.json  # both baselines
    python benchmarks/parity.py --tasks rte,stsb --seeds 1 --max-train 64 --budget full  # smoke
    python benchmarks/parity.py --merge rte.json mrpc.json  # one report from split runs
    python benchmarks/parity.py --budget default --tasks stsb --hf-order mtdnn  # HF on our batches

One process per core at one thread each is the fastest way through the pairs on a CPU: split the
tasks or seeds across processes (``--tasks rte --json rte.json`` beside ``--tasks mrpc,cola --json
mc.json``), then ``--merge`` their JSON files into one summary.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import gc
import json
import shutil
import statistics
import sys
import time
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

if TYPE_CHECKING:
    import datasets
    import torch
    from transformers import Trainer, TrainingArguments

    from mtdnn.config import TrainConfig
    from mtdnn.runtime.batching import TaskData
    from mtdnn.tasks import TaskSpec

FULL = {"lr": 5e-5, "epochs": 3.0, "warmup": 0.1}  # ANCHORS.md's HF Trainer quality setting
NOISE = 2.0  # points: a difference within this (or within the larger std) is "parity"


@dataclasses.dataclass
class Outcome:
    """One trained model: its dev metrics and what the run was."""

    impl: str  # "mtdnn" | "hf"
    task: str
    seed: int
    metrics: dict[str, float]
    steps: int  # optimizer updates
    ramp: int  # updates before the lr first reaches its peak: the warm-up as it actually ran
    train_s: float  # the training call itself
    wall_s: float  # model load + training + dev evaluation
    threads: int
    extra: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Ours:
    """mtdnn's side of a pair, plus what HF needs to train on exactly the same things."""

    outcome: Outcome
    train: TaskData  # the training rows the run used, in its order
    cfg: TrainConfig  # after the runner's resolution (exposure epochs)
    pooling: str  # resolved readout: cls | mean
    dtype: torch.dtype | None  # autocast dtype; None: fp32
    device: torch.device
    head_bias: float | None  # a regression head's initial bias (None: classification)
    batches: list[list[int]]  # row indices into ``train`` of every batch, in run order


# ----------------------------------------------------------------------------- configs


def profile_params(profile: str) -> dict:
    """A shipped profile by name (``default``) or a params YAML path, validated."""
    from mtdnn.config import load_params

    if Path(profile).is_file():
        return load_params(profile)
    src = resources.files("mtdnn") / "profiles" / f"{profile}.yaml"
    with resources.as_file(src) as path:
        return load_params(path)


BUDGETS = {
    "full": "full training set, 3 epochs, lr 5e-5, warm-up 0.1",
    "default": "the profile's standard fine-tuning baseline (finetune, init=base)",
    "equal": "the profile's equal-exposure baseline (finetune, init=equal)",
}
BUDGET_SETS = {"both": ["full", "default"], "baselines": ["default", "equal"]}


def budget_config(budget: str, task: str, args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig mtdnn's baseline gets under ``budget``, without any selection."""
    from mtdnn.config import TrainConfig, stage_config
    from mtdnn.errors import MtdnnError

    if budget == "full":
        cfg = TrainConfig(**FULL)
    else:
        init = "equal" if budget == "equal" else "base"
        knobs = stage_config(profile_params(args.profile), "finetune", task, init=init)
        cfg = TrainConfig.from_dict(knobs)
    if cfg.head != "linear":
        raise MtdnnError(f"{args.profile}: finetune.head: parity needs 'linear', got '{cfg.head}'")
    cfg = cfg.with_overrides(
        eval_each_epoch=False,  # the record only; it costs time
        holdout_examples=None,  # no best-epoch selection: the last epoch is the model
        max_eval_examples=None,  # the full official dev split
        checkpoint_every=None,
        compile=False,
        precision=args.precision,
    )
    if args.pooling != "auto" or budget == "full":
        cfg = cfg.with_overrides(pooling=args.pooling)
    return cap(cfg, args.max_train)


def cap(cfg: TrainConfig, n: int | None) -> TrainConfig:
    """``--max-train``: at most ``n`` rows (a prefix of the same seeded order), exposure too."""
    if n is None:
        return cfg
    least = lambda c: n if c is None else min(c, n)  # noqa: E731
    exposure = cfg.exposure
    if exposure is not None:
        exposure = exposure | {"max_train_examples": least(exposure["max_train_examples"])}
    return cfg.with_overrides(max_train_examples=least(cfg.max_train_examples), exposure=exposure)


def dev_sets(spec: TaskSpec, encoder: str, max_len: int) -> list[TaskData]:
    """Every official dev split of ``spec``, in full, from mtdnn's tokenized cache."""
    from mtdnn import paths
    from mtdnn.runtime.batching import load_task_data

    tok = paths.tokenized_dir(encoder, max_len, spec.name)
    return [load_task_data(spec, tok, s) for s in spec.dev_splits if (tok / f"{s}.arrow").is_file()]


def merged(per_split: list[dict[str, float]], names: list[str]) -> dict[str, float]:
    """One metric dict; with several dev splits (MNLI-m/mm) the keys say which."""
    if len(per_split) == 1:
        return per_split[0]
    return {f"{n}/{k}": v for n, m in zip(names, per_split, strict=True) for k, v in m.items()}


# ----------------------------------------------------------------------------- mtdnn


def run_ours(
    spec: TaskSpec, cfg: TrainConfig, seed: int, args: argparse.Namespace, work: Path, dev: list
) -> Ours:
    """``build_run`` + ``fit`` as ``mtdnn finetune`` does; updates counted, dev scored in full."""
    import torch

    from mtdnn.model.inference import decode, infer, score
    from mtdnn.train import build_run
    from mtdnn.training.loop import Callback, fit

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    out = work / f"ours-{spec.name}-{seed}"
    run = build_run([spec], args.encoder, args.max_len, cfg, seed, out)
    head = run.model.heads[spec.name]
    bias = float(head.out.bias.detach()[0]) if spec.num_outputs == 1 else None
    lrs: list[float] = []
    ends: list[float] = []
    batches: list[list[int]] = []

    class Updates(Callback):
        def on_step_begin(self, state, task, rows) -> None:
            batches.append([int(i) for i in rows])  # row indices into run.train, in run order

        def on_update_begin(self, state) -> None:
            lrs.append(state.opt.param_groups[0]["lr"])  # the lr this update uses

        def on_update_end(self, state) -> None:
            ends.append(time.perf_counter())

    t1 = time.perf_counter()
    fit(run, callbacks=[Updates()], progress=False)  # one line per run is printed here instead
    train_s = ends[-1] - t1 if ends else 0.0  # to the last update: fit's model write is not timed
    bs = run.cfg.eval_batch_size
    per_split = [
        score(d, decode(d, infer(run.model, spec.name, d, bs, run.device, run.dtype))) for d in dev
    ]
    outcome = Outcome(
        "mtdnn",
        spec.name,
        seed,
        merged(per_split, [d.split for d in dev]),
        len(lrs),
        ramp(lrs),
        train_s,
        time.perf_counter() - t0,
        torch.get_num_threads(),
        {"epochs": run.cfg.epochs, "rows": len(run.train[spec.name]), "lr": run.cfg.lr}
        | {"head_bias": bias, "lrs": lrs},
    )
    shutil.rmtree(out, ignore_errors=True)
    pooling = run.meta["model_options"].get("pooling", "cls")
    return Ours(
        outcome, run.train[spec.name], run.cfg, pooling, run.dtype, run.device, bias, batches
    )


# ----------------------------------------------------------------------------- HF Trainer


def mean_pool_model(
    enc_path: str, num_outputs: int, dropout: float, bias: float | None
) -> torch.nn.Module:
    """AutoModel + attention-masked mean of the last hidden states + dropout + Linear, returning
    what ``Trainer`` expects: ``{"loss", "logits"}`` (MSE for one output, cross-entropy else)."""
    import torch
    from torch import nn
    from transformers import AutoModel

    class MeanPool(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = AutoModel.from_pretrained(enc_path, dtype=torch.float32)
            self.encoder.pooler = None  # never trained, never used: as in mtdnn's mean readout
            self.dropout = nn.Dropout(dropout)
            self.out = nn.Linear(self.encoder.config.hidden_size, num_outputs)
            if bias is not None:
                nn.init.constant_(self.out.bias, bias)

        def forward(self, input_ids, attention_mask, token_type_ids=None, labels=None) -> dict:
            h = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            m = attention_mask.unsqueeze(-1).to(h.dtype)
            logits = self.out(self.dropout((h * m).sum(1) / m.sum(1).clamp(min=1.0)))
            if labels is None:
                return {"logits": logits}
            if num_outputs == 1:
                loss = nn.functional.mse_loss(logits.squeeze(-1).float(), labels.float())
            else:
                loss = nn.functional.cross_entropy(logits.float(), labels.long())
            return {"loss": loss, "logits": logits}

    return MeanPool()


def hf_model(spec: TaskSpec, enc_path: str, ours: Ours) -> torch.nn.Module:
    """The HF model for ``ours.pooling``, with mtdnn's head dropout and regression-bias start."""
    import torch
    from transformers import AutoModelForSequenceClassification

    dropout = ours.cfg.dropout if ours.cfg.dropout is not None else spec.dropout
    if ours.pooling == "mean":
        return mean_pool_model(enc_path, spec.num_outputs, dropout, ours.head_bias)
    model = AutoModelForSequenceClassification.from_pretrained(
        enc_path, num_labels=spec.num_outputs, classifier_dropout=dropout, dtype=torch.float32
    )
    if ours.head_bias is not None:  # mtdnn calibrates (or not); do the same
        with torch.no_grad():
            model.classifier.bias.fill_(ours.head_bias)
    return model


def hf_args(ours: Ours, seed: int, out: Path) -> TrainingArguments:
    """TrainingArguments matching mtdnn's run knob for knob (see benchmarks/README.md)."""
    import torch
    from transformers import TrainingArguments

    c = ours.cfg
    return TrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=c.batch_size,
        per_device_eval_batch_size=c.eval_batch_size,
        gradient_accumulation_steps=c.grad_accum,
        learning_rate=c.lr,
        weight_decay=c.weight_decay,
        max_grad_norm=c.clip_norm or 0.0,
        max_steps=ours.outcome.steps,  # mtdnn's updates: epochs x ceil(rows / batch), min_steps
        warmup_steps=c.warmup,  # a ratio (transformers 5: a float < 1 is a ratio)
        lr_scheduler_type="linear",
        seed=seed,
        bf16=ours.dtype == torch.bfloat16,
        fp16=ours.dtype == torch.float16,
        use_cpu=ours.device.type == "cpu",
        train_sampling_strategy="group_by_length" if c.group_by_length else "random",
        save_strategy="no",
        eval_strategy="no",
        logging_strategy="no",
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
    )


def hf_dataset(data: TaskData) -> datasets.Dataset:
    import datasets

    return datasets.Dataset.from_list(common.token_examples(data))


def hf_trainer(
    spec: TaskSpec,
    ours: Ours,
    seed: int,
    encoder: str,
    out: Path,
    lrs: list[float],
    schedule: str = "hf",
    order: str = "hf",
) -> Trainer:
    """A ``Trainer`` on mtdnn's rows, appending the lr of every update to ``lrs``. ``schedule``
    "mtdnn" replaces HF's linear schedule by mtdnn's own lr sequence, update for update: a
    diagnostic that isolates the one known difference between the two (HF's warm-up starts at lr 0
    and reaches the peak an update or two later). ``order`` "mtdnn" makes HF train on mtdnn's
    batches, the same rows in the same order (a diagnostic for the batch sampler: HF's length
    grouping runs each mega-batch's batches back to back, longest first; mtdnn shuffles them)."""
    from transformers import (
        AutoTokenizer,
        DataCollatorWithPadding,
        PrinterCallback,
        Trainer,
        TrainerCallback,
        set_seed,
    )

    from mtdnn.model.encoders import resolve_encoder

    class LrLog(TrainerCallback):
        def on_step_begin(self, args, state, control, optimizer=None, **kw) -> None:
            lrs.append(optimizer.param_groups[0]["lr"])  # the lr this update uses

    enc_path = resolve_encoder(encoder)
    tok = AutoTokenizer.from_pretrained(enc_path)
    set_seed(seed)  # the head's initialisation; Trainer re-seeds for dropout and batch order
    trainer = Trainer(
        model=hf_model(spec, enc_path, ours),
        args=hf_args(ours, seed, out),
        train_dataset=hf_dataset(ours.train),
        data_collator=DataCollatorWithPadding(tok),
        processing_class=tok,
        callbacks=[LrLog()],
    )
    trainer.remove_callback(PrinterCallback)  # its end-of-training dict is noise in this log
    if schedule == "mtdnn":
        follow_lrs(trainer, ours.outcome.extra["lrs"])
    if order == "mtdnn":
        follow_batches(trainer, ours.batches)
    return trainer


def follow_batches(trainer: Trainer, batches: list[list[int]]) -> None:
    """Make ``trainer`` take mtdnn's batches as they ran: one epoch of all of them, in order
    (a batch sampler, since each of mtdnn's epochs ends on its own short batch)."""
    from torch.utils.data import DataLoader

    if trainer.args.gradient_accumulation_steps != 1 or len(batches) != trainer.args.max_steps:
        raise ValueError("--hf-order mtdnn needs one batch per update")

    def get_train_dataloader() -> DataLoader:
        data = trainer._remove_unused_columns(trainer.train_dataset, description="Training")
        loader = DataLoader(data, batch_sampler=batches, collate_fn=trainer.data_collator)
        return trainer.accelerator.prepare(loader)

    trainer.get_train_dataloader = get_train_dataloader


def follow_lrs(trainer: Trainer, sequence: list[float]) -> None:
    """Make ``trainer`` take update ``k`` at ``sequence[k]`` (mtdnn's lrs, as logged)."""
    import torch

    peak = trainer.args.learning_rate

    def create_scheduler(num_training_steps: int, optimizer=None):
        factors = [lr / peak for lr in sequence]
        trainer.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer or trainer.optimizer, lambda k: factors[min(k, len(factors) - 1)]
        )
        return trainer.lr_scheduler

    trainer.create_scheduler = create_scheduler


def hf_predict(trainer: Trainer, data: TaskData, dtype: torch.dtype | None) -> np.ndarray:
    """The trained HF model's outputs for ``data``, in the order of ``data``'s labels.

    Not ``trainer.predict``: with ``train_sampling_strategy="group_by_length"`` transformers 5's
    eval sampler groups by length too, so its predictions come back in another order than the
    labels (which scored HF's CoLA at MCC -1.6 against shuffled labels)."""
    import torch
    from torch.utils.data import DataLoader

    model = trainer.model.eval()
    device = next(model.parameters()).device
    batch_size = trainer.args.per_device_eval_batch_size
    loader = DataLoader(
        hf_dataset(data), batch_size, shuffle=False, collate_fn=trainer.data_collator
    )
    outputs = []
    with torch.inference_mode(), torch.autocast(device.type, dtype, enabled=dtype is not None):
        for batch in loader:
            inputs = {k: v.to(device) for k, v in batch.items() if k != "labels"}
            outputs.append(model(**inputs)["logits"].float().cpu().numpy())
    return np.concatenate(outputs)


def run_hf(
    spec: TaskSpec, ours: Ours, seed: int, args: argparse.Namespace, work: Path, dev: list
) -> Outcome:
    """HF ``Trainer`` on mtdnn's rows for mtdnn's number of updates; dev scored in full."""
    import torch

    from mtdnn.metrics import compute_metrics

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    lrs: list[float] = []
    out = work / f"hf-{spec.name}-{seed}"
    trainer = hf_trainer(spec, ours, seed, args.encoder, out, lrs, args.hf_schedule, args.hf_order)
    t1 = time.perf_counter()
    trainer.train()
    train_s = time.perf_counter() - t1
    per_split = []
    for d in dev:
        out = hf_predict(trainer, d, ours.dtype)
        preds = out.reshape(-1) if spec.num_outputs == 1 else out.argmax(-1)
        per_split.append(compute_metrics(spec, preds, d.labels))
    steps = trainer.state.global_step
    outcome = Outcome(
        "hf",
        spec.name,
        seed,
        merged(per_split, [d.split for d in dev]),
        steps,
        ramp(lrs),
        train_s,
        time.perf_counter() - t0,
        torch.get_num_threads(),
        {"optim": str(trainer.args.optim), "sampling": trainer.args.train_sampling_strategy}
        | {"lrs": lrs},
    )
    shutil.rmtree(work / f"hf-{spec.name}-{seed}", ignore_errors=True)
    return outcome


# ----------------------------------------------------------------------------- report


def ramp(lrs: list[float]) -> int:
    """Updates taken before the lr first reaches its peak: the warm-up as it actually ran."""
    peak = max(lrs, default=0.0)
    return next((i for i, lr in enumerate(lrs) if lr >= peak * (1 - 1e-9)), 0)


def mean_std(xs: list[float]) -> tuple[float, float]:
    return float(np.mean(xs)), statistics.stdev(xs) if len(xs) > 1 else 0.0


def summarise(outcomes: list[Outcome], tasks: list[str]) -> list[dict]:
    """Per task and metric: both means ± std over seeds, the difference, and the verdict (every
    metric within NOISE points or within the larger std: "parity"; else "GAP")."""
    rows = []
    for task in tasks:
        ours = [o for o in outcomes if o.task == task and o.impl == "mtdnn"]
        hf = [o for o in outcomes if o.task == task and o.impl == "hf"]
        if not ours or not hf:
            continue
        metrics = {}
        for m in ours[0].metrics:
            a, b = mean_std([o.metrics[m] for o in ours]), mean_std([o.metrics[m] for o in hf])
            diff = a[0] - b[0]
            ok = abs(diff) <= max(NOISE, a[1], b[1])  # NaN fails: a constant predictor is a GAP
            metrics[m] = {"mtdnn": a, "hf": b, "diff": diff, "parity": bool(ok)}
        verdict = "parity" if all(v["parity"] for v in metrics.values()) else "GAP"
        rows.append({"task": task, "seeds": len(ours), "metrics": metrics, "verdict": verdict})
    return rows


def fmt(pair: tuple[float, float]) -> str:
    return f"{pair[0]:.1f} ± {pair[1]:.1f}"


def summary_table(summary: list[dict]) -> str:
    rows = []
    for s in summary:
        ms = s["metrics"]
        rows.append(
            [
                s["task"],
                " / ".join(ms),
                " / ".join(fmt(v["mtdnn"]) for v in ms.values()),
                " / ".join(fmt(v["hf"]) for v in ms.values()),
                " / ".join(f"{v['diff']:+.1f}" for v in ms.values()),
                s["verdict"],
            ]
        )
    head = [
        "task",
        "metric(s)",
        "mtdnn mean ± std",
        "HF Trainer mean ± std",
        "mtdnn − HF",
        "verdict",
    ]
    return common.table(rows, head)


def runs_table(outcomes: list[Outcome]) -> str:
    """One line per (task, seed): both scores, the schedule and the seconds."""
    pairs: dict[tuple[str, int], dict[str, Outcome]] = {}
    for o in outcomes:
        pairs.setdefault((o.task, o.seed), {})[o.impl] = o
    rows = []
    for (task, seed), p in pairs.items():
        if len(p) < 2:
            continue
        a, b = p["mtdnn"], p["hf"]
        rows.append(
            [
                task,
                str(seed),
                f"{a.extra['rows']} × {a.extra['epochs']:.3g}",
                f"{a.extra['lr']:g}",
                f"{a.steps} / {b.steps}",
                f"{a.ramp} / {b.ramp}",
                f"{a.extra['lrs'][0]:.2g} / {b.extra['lrs'][0]:.2g}"
                if a.steps and b.steps
                else "-",
                " / ".join(f"{v:.1f}" for v in a.metrics.values()),
                " / ".join(f"{v:.1f}" for v in b.metrics.values()),
                f"{a.train_s:.0f} / {b.train_s:.0f}",
                f"{a.wall_s:.0f} / {b.wall_s:.0f}",
            ]
        )
    head = [
        "task",
        "seed",
        "rows × epochs",
        "lr",
        "updates mtdnn / HF",
        "updates before peak lr",
        "first lr",
        "mtdnn",
        "HF",
        "train s mtdnn / HF",
        "wall s mtdnn / HF",
    ]
    return common.table(rows, head)


def environment(args: argparse.Namespace) -> dict:
    import torch
    import transformers

    return {
        "cpu": common.cpu_info(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "threads": torch.get_num_threads(),
        "load_average": common.load_average(),
        "encoder": args.encoder,
        "max_len": args.max_len,
    }


def report(budget: str, env: dict, setup: dict, summary: list[dict], runs: list[Outcome]) -> str:
    cpu = env["cpu"]
    flags = ", ".join(f"{f} {'yes' if cpu[f] else 'no'}" for f in ("avx512_bf16", "amx_bf16"))
    what = BUDGETS[budget]
    return "\n".join(
        [
            f"## Parity, budget `{budget}`: {what}",
            "",
            f"{cpu['model']} ({cpu['cores']} cores; {flags}); {env['date']}; torch {env['torch']}, "
            f"transformers {env['transformers']}, {env['threads']} threads; encoder "
            f"{env['encoder']}, max_len {env['max_len']}; readout {setup['pooling']}; "
            f"precision {setup['precision']}; batch {setup['batch_size']}, "
            f"warm-up {setup['warmup']}, weight decay {setup['weight_decay']}, clip "
            f"{setup['clip_norm']}.",
            "",
            summary_table(summary),
            "",
            f"Verdict: 'parity' when every metric's difference is within {NOISE:g} points or within "
            "the larger of the two stds (sample std over seeds); else 'GAP'.",
            "",
            runs_table(runs),
        ]
    )


# ----------------------------------------------------------------------------- main


def run_budget(budget: str, args: argparse.Namespace, work: Path) -> dict:
    """Every (task, seed) pair of one budget, mtdnn first (HF then copies its rows and updates)."""
    from mtdnn.errors import MtdnnError
    from mtdnn.model.encoders import resolve_encoder

    resolve_encoder(args.encoder)  # fail fast on an unknown encoder
    outcomes: list[Outcome] = []
    setup: dict = {}
    for spec in common.task_specs(args.tasks):
        if spec.type.value == "ranking":
            raise MtdnnError(f"--tasks: {spec.name} is a ranking task; parity covers GLUE heads")
        dev = dev_sets(spec, args.encoder, args.max_len)
        cfg = budget_config(budget, spec.name, args)
        for seed in args.seeds:
            ours = run_ours(spec, cfg, seed, args, work, dev)
            theirs = run_hf(spec, ours, seed, args, work, dev)
            outcomes += [ours.outcome, theirs]
            if theirs.steps != ours.outcome.steps:
                print(f"  WARNING: HF took {theirs.steps} updates, mtdnn {ours.outcome.steps}")
            for o in (ours.outcome, theirs):
                print(
                    f"  {budget:7s} {o.task:5s} seed {o.seed} {o.impl:5s} "
                    f"{json.dumps({k: round(v, 2) for k, v in o.metrics.items()})} "
                    f"{o.steps} updates, train {o.train_s:.0f} s, wall {o.wall_s:.0f} s",
                    flush=True,
                )
            setup = {
                "pooling": ours.pooling,
                "precision": str(ours.dtype or "fp32").removeprefix("torch."),
                **{k: getattr(ours.cfg, k) for k in ("batch_size", "warmup")},
                **{k: getattr(ours.cfg, k) for k in ("weight_decay", "clip_norm")},
                # diagnostics only; merging refuses to mix them with plain runs
                **{
                    f"hf_{k}": "mtdnn"
                    for k in ("schedule", "order")
                    if vars(args)[f"hf_{k}"] != "hf"
                },
            }
            del ours, theirs
            gc.collect()
    summary = summarise(outcomes, args.tasks)
    return {"setup": setup, "summary": summary, "runs": [dataclasses.asdict(o) for o in outcomes]}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    common.common_args(p)
    p.add_argument("--tasks", default="rte,mrpc,stsb,cola", help="comma-separated GLUE tasks")
    p.add_argument("--seeds", default="1,2,3", help="comma-separated seeds (default 1,2,3)")
    p.add_argument("--budget", choices=[*BUDGETS, *BUDGET_SETS], default="full")
    p.add_argument("--profile", default="default", help="profile (name or YAML) for 'default'")
    p.add_argument("--pooling", choices=["auto", "cls", "mean"], default="auto")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto")
    p.add_argument("--max-train", type=int, help="at most N training rows per task (smoke runs)")
    p.add_argument(
        "--hf-schedule",
        choices=["hf", "mtdnn"],
        default="hf",
        help="HF's lr schedule: its own linear warm-up and decay (default), or mtdnn's lr "
        "sequence update for update (a diagnostic for the warm-up difference)",
    )
    p.add_argument(
        "--hf-order",
        choices=["hf", "mtdnn"],
        default="hf",
        help="HF's batches: its own sampler (default), or mtdnn's batches, the same rows in "
        "the same order (a diagnostic for the batch sampler)",
    )
    p.add_argument("--json", type=Path, help="also write the table and every run here")
    p.add_argument(
        "--merge", type=Path, nargs="+", metavar="JSON", help="report from these --json files"
    )
    args = p.parse_args(argv)
    args.tasks = [t for t in args.tasks.split(",") if t]
    args.seeds = [int(s) for s in args.seeds.split(",") if s]
    return args


def read_results(path: Path) -> tuple[dict, dict[str, tuple[dict, list[Outcome]]]]:
    """One ``--json`` file: its environment and, per budget, its setup and runs."""
    from mtdnn.errors import MtdnnError

    try:
        doc = json.loads(path.read_text())
        budgets = {
            b: (r["setup"], [Outcome(**o) for o in r["runs"]]) for b, r in doc["budgets"].items()
        }
        return doc["environment"], budgets
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise MtdnnError(f"{path}: expected a parity.py --json file ({e!r})") from None


def merge(paths: list[Path]) -> tuple[dict, dict]:
    """The environment of the first file and, per budget, every run of every file re-summarised.
    Refused: the same (budget, task, seed, trainer) twice (it would count a seed twice), and
    files whose setups differ within a budget (readout, precision, batch...)."""
    from mtdnn.errors import MtdnnError

    env: dict = {}
    setups: dict[str, dict] = {}
    runs: dict[str, list[Outcome]] = {}
    for path in paths:
        file_env, budgets = read_results(path)
        env = env or file_env
        for budget, (setup, outcomes) in budgets.items():
            if setups.setdefault(budget, setup) != setup:
                raise MtdnnError(
                    f"{path}: its {budget} setup {setup} differs from {setups[budget]}"
                )
            runs.setdefault(budget, []).extend(outcomes)
    results = {}
    for budget, outcomes in runs.items():
        keys = [(o.task, o.seed, o.impl) for o in outcomes]
        if len(set(keys)) < len(keys):
            raise MtdnnError(f"--merge: a {budget} run appears twice in {[str(p) for p in paths]}")
        tasks = list(dict.fromkeys(o.task for o in outcomes))
        results[budget] = {
            "setup": setups[budget],
            "summary": summarise(outcomes, tasks),
            "runs": [dataclasses.asdict(o) for o in outcomes],
        }
    return env, results


def measure(args: argparse.Namespace) -> tuple[dict, dict]:
    """Train every pair of the chosen budgets: the environment and the results per budget."""
    budgets = BUDGET_SETS.get(args.budget, [args.budget])
    with common.scratch(args.workdir, args.keep) as work:
        for s in common.task_specs(args.tasks):
            common.prepare(s, args.glue_dir)
            common.tokenize(s, args.encoder, args.max_len)
        env = environment(args)
        print(f"machine: {common.machine()}; load average {env['load_average']}", flush=True)
        return env, {b: run_budget(b, args, work) for b in budgets}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.merge:  # merging reads result files; measuring trains HF Trainer
        common.require_bench_group("parity.py")
    common.setup_env(args.threads)
    from mtdnn.errors import MtdnnError

    started = time.perf_counter()
    try:
        env, results = merge(args.merge) if args.merge else measure(args)
    except MtdnnError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for b, r in results.items():
        runs = [Outcome(**o) for o in r["runs"]]
        print("\n" + report(b, env, r["setup"], r["summary"], runs))
    if not args.merge:
        print(f"\ntotal wall {time.perf_counter() - started:.0f} s")
    if args.json:
        from mtdnn.fileio import atomic_path

        with atomic_path(args.json) as tmp:
            tmp.write_text(json.dumps({"environment": env, "budgets": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
