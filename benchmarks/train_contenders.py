"""The contenders of ``train_throughput.py``: one function each, one timed epoch over fixed rows.

Every contender trains the bundled MiniLM-L6 on the same rows (``Rows``: what
``TrainConfig(max_train_examples=N)`` picks) with the same token ids, batch 32, lr 5e-5 and grad
clip 1.0, and returns a ``Result`` whose timed window runs from before the first batch is collated
to the end of the last optimizer step. Model loading and optimizer construction stay outside it.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path

import numpy as np

from mtdnn.runtime.batching import padded_width
from mtdnn.training.loop import Callback

import common

LR, CLIP, SEED, BATCH = 5e-5, 1.0, 42, 32
PAD_MULTIPLE = 8  # (g) pads each batch to a multiple of this many tokens


# ----------------------------------------------------------------------------- rows and results


@dataclasses.dataclass
class Rows:
    spec: object  # TaskSpec
    rows: np.ndarray  # indices into the full train split (what cap_rows picks)
    data: object  # TaskData subset, in `rows` order

    @property
    def lengths(self) -> np.ndarray:
        return self.data.lengths


def load_rows(specs, n: int, encoder: str, max_len: int) -> dict[str, Rows]:
    from mtdnn import paths
    from mtdnn.runtime.batching import cap_rows, load_task_data

    out = {}
    for spec in specs:
        full = load_task_data(spec, paths.tokenized_dir(encoder, max_len, spec.name), "train")
        rows = cap_rows(len(full), n, 0, spec.name)  # = TrainConfig(max_train_examples=n)
        out[spec.name] = Rows(spec, rows, full.subset(rows))
    return out


@dataclasses.dataclass
class Result:
    key: str
    task: str
    examples: int
    tokens: int  # real (unpadded) tokens in the timed epoch
    padded: int  # tokens after padding (what was computed)
    seconds: float  # timed window
    steps: int
    others: float  # share of the machine other processes used during the window (0 = quiet)
    extra: dict = dataclasses.field(default_factory=dict)

    @property
    def ex_s(self) -> float:
        return self.examples / self.seconds

    @property
    def tok_s(self) -> float:
        return self.tokens / self.seconds


def step_times(t0: float, ends: list[float]) -> list[float]:
    """Seconds per optimizer step, from the window's start and each step's end."""
    return np.diff([t0, *ends]).round(4).tolist()


# ----------------------------------------------------------------------------- (a), (b): HF


def hf_dataset(key: str, r: Rows, pad: int, max_len: int):
    """The rows as a ``datasets.Dataset``; (a) pads every example to max_len, as run_glue.py does."""
    import datasets

    feats = common.token_examples(r.data)
    for f in feats:
        n = len(f["input_ids"])
        f["length"] = n
        if key == "a":
            f["input_ids"] = f["input_ids"] + [pad] * (max_len - n)
            f["token_type_ids"] = f["token_type_ids"] + [0] * (max_len - n)
            f["attention_mask"] = f["attention_mask"] + [0] * (max_len - n)
    return datasets.Dataset.from_list(feats)


def hf_arguments(key: str, out: Path) -> dict:
    """TrainingArguments for (a) run_glue.py's defaults or (b) the best documented CPU setup."""
    kw = dict(
        output_dir=str(out),
        per_device_train_batch_size=BATCH,
        learning_rate=LR,
        max_grad_norm=CLIP,
        num_train_epochs=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        seed=SEED,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    if key == "a":
        return kw | dict(bf16=False, train_sampling_strategy="random")
    return kw | dict(bf16=True, train_sampling_strategy="group_by_length")


def hf_clock():
    """A TrainerCallback that snaps the epoch's start and every step's end."""
    from transformers import TrainerCallback

    class Clock(TrainerCallback):
        def __init__(self) -> None:
            self.t0, self.ends = None, []

        def on_epoch_begin(self, args, state, control, **kw):
            self.t0 = common.snap()

        def on_step_end(self, args, state, control, **kw):
            self.ends.append(common.snap())

    return Clock()


def run_hf(key: str, r: Rows, enc_path: str, tmp: Path, warmup: int, max_len: int) -> Result:
    """(a) or (b): HF Trainer; the warm-up is a Trainer with ``max_steps=warmup`` on the same model."""
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
        default_data_collator,
    )

    tok = AutoTokenizer.from_pretrained(enc_path)
    ds = hf_dataset(key, r, tok.pad_token_id, max_len)
    inner = default_data_collator if key == "a" else DataCollatorWithPadding(tok)
    seen: list[tuple[int, int, int]] = []  # (batch, width, real tokens) per collated batch

    def collate(features):
        batch = inner(features)
        b, w = batch["input_ids"].shape
        seen.append((b, w, int(batch["attention_mask"].sum())))
        return batch

    model = AutoModelForSequenceClassification.from_pretrained(
        enc_path, num_labels=r.spec.num_outputs
    )
    kw = hf_arguments(key, tmp / f"hf-{key}")

    def trainer(args: dict, callbacks=()) -> Trainer:
        return Trainer(
            model=model,
            args=TrainingArguments(**args),
            train_dataset=ds,
            data_collator=collate,
            processing_class=tok,
            callbacks=list(callbacks),
        )

    if warmup:
        trainer(kw | {"max_steps": warmup}).train()
    seen.clear()
    clock = hf_clock()
    trainer(kw, [clock]).train()
    real = sum(s[2] for s in seen)
    assert real == int(r.lengths.sum()), (real, int(r.lengths.sum()))
    t0, t1 = clock.t0, clock.ends[-1]
    padded = sum(s[0] * s[1] for s in seen)
    others = common.others_share(t0, t1)
    extra = {"threads": torch.get_num_threads()}
    return Result(
        key, r.spec.name, len(r.rows), real, padded, t1.t - t0.t, len(clock.ends), others, extra
    )


# ----------------------------------------------------------------------------- (c): plain loop


def sorted_buckets(lengths: np.ndarray) -> list[np.ndarray]:
    """Length-sorted buckets of 32 (longest first), then the bucket order shuffled."""
    order = np.argsort(-lengths, kind="stable")
    batches = [order[i : i + BATCH] for i in range(0, len(order), BATCH)]
    rng = np.random.default_rng(SEED)
    return [batches[i] for i in rng.permutation(len(batches))]


def plain_optimizer(model, total: int):
    """Fused AdamW (weight decay off for biases and LayerNorm) with linear decay over ``total``."""
    import torch
    from torch.optim.lr_scheduler import LambdaLR

    named = list(model.named_parameters())
    decay = [p for n, p in named if p.ndim >= 2 and "LayerNorm" not in n]
    plain = [p for n, p in named if p.ndim < 2 or "LayerNorm" in n]
    groups = [{"params": decay, "weight_decay": 0.01}, {"params": plain, "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=LR, fused=True)
    return opt, LambdaLR(opt, lambda s: max(0.0, (total - s) / total))


def plain_step(model, data, b: np.ndarray, opt, sched) -> None:
    """One dynamically padded bf16-autocast step over the rows ``b`` of ``data``."""
    import torch
    import torch.nn.functional as F

    lengths, starts = data.lengths, data.offsets[:-1]
    width = int(lengths[b].max())
    mask = torch.arange(width)[None, :] < torch.from_numpy(lengths[b])[:, None]
    flat = (torch.from_numpy(starts[b])[:, None] + torch.arange(width)[None, :])[mask]
    x = torch.zeros(mask.shape, dtype=torch.long)
    t = torch.zeros(mask.shape, dtype=torch.long)
    x[mask], t[mask] = torch.from_numpy(data.ids)[flat], torch.from_numpy(data.types)[flat]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(input_ids=x, attention_mask=mask.long(), token_type_ids=t).logits
    loss = F.cross_entropy(logits.float(), torch.from_numpy(data.labels)[b].long())
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP, foreach=True)
    opt.step()
    sched.step()
    opt.zero_grad(set_to_none=True)


def run_plain(r: Rows, enc_path: str, warmup: int) -> Result:
    """(c): a hand-written loop with every CPU trick the HF stack offers, as a ceiling to compare."""
    import torch
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(SEED)
    model = AutoModelForSequenceClassification.from_pretrained(
        enc_path, num_labels=r.spec.num_outputs
    )
    model.train()
    batches = sorted_buckets(r.lengths)
    opt, sched = plain_optimizer(model, warmup)
    for b in batches[:warmup]:
        plain_step(model, r.data, b, opt, sched)
    # A fresh optimizer for the timed epoch, as HF Trainer and fit() have: its state is created
    # (and its memory first touched) inside the timed window for every contender alike.
    opt, sched = plain_optimizer(model, len(batches))
    t0, ends = common.snap(), []
    for b in batches:
        plain_step(model, r.data, b, opt, sched)
        ends.append(time.perf_counter())
    t1 = common.snap()
    lengths = r.lengths
    padded = int(sum(len(b) * lengths[b].max() for b in batches))
    extra = {
        "threads": torch.get_num_threads(),
        "step_s": step_times(t0.t, ends),
        "width": [int(lengths[b].max()) for b in batches],
    }
    others = common.others_share(t0, t1)
    seconds = t1.t - t0.t
    return Result(
        "c",
        r.spec.name,
        len(r.rows),
        int(lengths.sum()),
        padded,
        seconds,
        len(batches),
        others,
        extra,
    )


# ----------------------------------------------------------------------------- (d), (e), (f): mtdnn


def ours_run(key: str, rs: list[Rows], encoder: str, max_len: int, out: Path):
    """mtdnn's ``Run`` over exactly the contenders' rows; (f) puts the encoder under torch.compile."""
    from mtdnn.config import TrainConfig
    from mtdnn.train import build_run

    n = max(len(r.rows) for r in rs)
    cfg = TrainConfig(
        max_train_examples=n,
        epochs=1,
        eval_each_epoch=False,
        precision="auto",
        batch_size=BATCH,
        compile=key == "f",  # warm-up steps absorb compiling
        pad_to_multiple_of=PAD_MULTIPLE if key == "g" else 1,
    )
    specs = [r.spec for r in rs]
    run = build_run(
        specs, encoder, max_len, cfg, SEED, out, train_rows={r.spec.name: r.rows for r in rs}
    )
    for r in rs:  # the same rows, in the same order, as every other contender
        assert np.array_equal(run.train[r.spec.name].ids, r.data.ids)
    return run


class FitClock(Callback):
    """Times ``fit`` through its hooks: the first batch's start, every update's end, and the
    batches (task, rows) in the order they ran."""

    def __init__(self) -> None:
        self.t0: float | None = None
        self.ends: list[float] = []
        self.batches: list[tuple[str, np.ndarray]] = []

    def on_step_begin(self, state, task: str, rows: np.ndarray) -> None:
        if self.t0 is None:
            self.t0 = common.snap()
        self.batches.append((task, rows))

    def on_update_end(self, state) -> None:
        self.ends.append(common.snap())


def run_ours(
    key: str, rs: list[Rows], encoder: str, max_len: int, tmp: Path, warmup: int
) -> Result:
    """(d) one task, (e) all tasks at once (Algorithm 1), (f) (d) compiled, (g) (d) padded to a
    multiple: ``fit`` itself, timed."""
    import torch

    from mtdnn.training.loop import fit

    name = "+".join(r.spec.name for r in rs)
    run = ours_run(key, rs, encoder, max_len, tmp / f"ours-{key}-{name}")
    if warmup:
        warm = dataclasses.replace(run, out=tmp / f"ours-{key}-{name}-warmup")
        fit(warm, stop_after=warmup)
        shutil.rmtree(warm.resume_dir, ignore_errors=True)
    clock = FitClock()
    t = time.perf_counter()
    summary = fit(run, callbacks=[clock])
    wall = time.perf_counter() - t
    shutil.rmtree(run.out, ignore_errors=True)
    t0, t1 = clock.t0, clock.ends[-1]
    batches = [(run.train[task].lengths[b], b) for task, b in clock.batches]
    ex = sum(len(b) for _, b in batches)
    assert ex == sum(len(r.rows) for r in rs)
    extra = {
        "fit_wall_s": wall,
        "fit_summary_ex_s": summary["train_examples_per_s"],
        "after_loop_s": wall - (t1.t - t0.t),
        "dtype": str(run.dtype),
        "threads": torch.get_num_threads(),
        "step_s": step_times(t0.t, [e.t for e in clock.ends]),
        "width": [padded_width(lens, run.cfg.pad_to_multiple_of) for lens, _ in batches],
    }
    real = sum(int(lens.sum()) for lens, _ in batches)
    padded = sum(len(b) * w for (_, b), w in zip(batches, extra["width"], strict=True))
    others = common.others_share(t0, t1)
    return Result(key, name, ex, real, padded, t1.t - t0.t, len(clock.ends), others, extra)
