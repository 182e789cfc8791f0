"""`mtdnn submit`: GLUE leaderboard files: one TSV per task with GLUE's file names and label strings."""

from __future__ import annotations

from pathlib import Path

from mtdnn import paths
from mtdnn.fileio import atomic_path
from mtdnn.model.build import load_model
from mtdnn.model.inference import decode, infer, prediction_frame
from mtdnn.runtime.batching import load_task_data
from mtdnn.runtime.precision import pick_device, resolve_dtype
from mtdnn.tasks import TaskSpec, load_tasks

# (task, test split) -> GLUE submission file name
GLUE_FILES = {
    ("cola", "test"): "CoLA.tsv",
    ("sst2", "test"): "SST-2.tsv",
    ("mrpc", "test"): "MRPC.tsv",
    ("stsb", "test"): "STS-B.tsv",
    ("qqp", "test"): "QQP.tsv",
    ("mnli", "test_matched"): "MNLI-m.tsv",
    ("mnli", "test_mismatched"): "MNLI-mm.tsv",
    ("qnli", "test"): "QNLI.tsv",
    ("rte", "test"): "RTE.tsv",
    ("wnli", "test"): "WNLI.tsv",
    ("ax", "test"): "AX.tsv",
}


def write_task(
    model_dir: Path, task: TaskSpec, out_dir: Path, registry: dict[str, TaskSpec] | None = None
) -> list[Path]:
    """Predict every test split of ``task`` and write GLUE's ``index<TAB>prediction`` files.

    ``registry`` must hold every task the model has a head for (default: the built-in ones)."""
    registry = (registry if registry is not None else load_tasks()) | {task.name: task}
    model, cfg = load_model(model_dir, registry, extra=[task])
    device = pick_device()
    model.to(device)
    tok_dir = paths.tokenized_dir(cfg["encoder"], cfg["max_len"], task.name)
    written = []
    for split in task.test_splits:
        data = load_task_data(task, tok_dir, split)
        preds = decode(
            data, infer(model, task.name, data, 64, device, resolve_dtype("auto", device))
        )
        frame = prediction_frame(data, preds)[["uid", "prediction"]].rename(
            columns={"uid": "index"}
        )
        dest = out_dir / GLUE_FILES.get((task.name, split), f"{task.name}-{split}.tsv")
        with atomic_path(dest) as tmp:
            frame.to_csv(tmp, sep="\t", index=False, float_format="%.3f")
        written.append(dest)
    return written
