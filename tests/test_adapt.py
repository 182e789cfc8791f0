"""Domain adaptation cells on SciTail, from its official tsv_format layout (through the workflow) and
from a Hub-style dataset directory (through a task declared in YAML) — no code change for either."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from fixtures import read_tsv, write_tsv
from helpers import REPO, subprocess_env

from mtdnn.cellpreds import predictions_path, read_predictions, split_rows
from mtdnn.config import validate
from mtdnn.grid import Grid


def scitail_rows(derived_dir: Path, n: int) -> list[list[str]]:
    """Real premise/hypothesis pairs (SNLI test rows) relabelled into SciTail's two classes."""
    _, rows = read_tsv(derived_dir / "SNLI" / "test.tsv", n)
    return [[p, h, "entails" if lab == "entailment" else "neutral"] for p, h, lab in rows]


def smoke_params(**adapt) -> dict:
    params = yaml.safe_load((REPO / "mtdnn/profiles/smoke.yaml").read_text())
    params["adapt"] |= adapt
    params["data"]["sources"] = {}
    return params


def test_scitail_official_layout_through_the_workflow(tmp_path, derived_dir):
    glue = tmp_path / "glue"
    base = glue / "SciTailV1.1" / "tsv_format"
    rows = scitail_rows(derived_dir, 40)
    for split in ("train", "dev", "test"):
        write_tsv(base / f"scitail_1.0_{split}.tsv", None, rows)  # headerless, as released
    project = tmp_path / "project"
    shutil.copytree(REPO / "workflow", project / "workflow")
    params = smoke_params(datasets=["scitail"], sizes=[8], seeds=[1], eval_splits=["dev", "test"])
    # This GLUE_DIR holds SciTail alone: the GLUE tasks the profile names are opted out.
    params["data"]["optional_tasks"] = sorted(
        set(params["mtl"]["tasks"]) | set(params["finetune"]["tasks"])
    )
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    key = Grid(validate(copy.deepcopy(params))).adapt_key("base")  # the knob key in its path
    target = f"results/cells/adapt/base/minilm/scitail/n8/{key}/seed1.json"
    env = subprocess_env({"GLUE_DIR": glue})
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", target],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    cell = json.loads((project / target).read_text())
    expected = {"task": "scitail", "init": "base", "n": 8, "size": "n8"}
    assert {k: cell["cell"][k] for k in expected} == expected
    assert set(cell["metrics"]) == {"dev", "test"}
    assert 0 <= cell["metrics"]["dev"]["accuracy"] <= 100
    raw = cell["provenance"]["data_sha256"]["raw"]
    assert any(p.endswith("scitail_1.0_train.tsv") for p in raw)
    # the rule's second output: the predictions both splits were scored on, for the bootstrap
    preds = read_predictions(project / predictions_path(target))
    for split in ("dev", "test"):
        rows = split_rows(preds, split, target)
        right = 100.0 * float((rows["label"] == rows["prediction"]).mean())
        assert right == pytest.approx(cell["metrics"][split]["accuracy"], abs=1e-9)


def test_scitail_from_a_hub_style_directory(tmp_path, derived_dir, run_cli):
    hub = tmp_path / "hub" / "scitail"
    rows = scitail_rows(derived_dir, 40)
    frame = pd.DataFrame(rows, columns=["premise", "hypothesis", "label"])
    for split in ("train", "validation", "test"):
        (hub / "tsv_format").mkdir(parents=True, exist_ok=True)
        frame.to_parquet(hub / "tsv_format" / f"{split}-00000-of-00001.parquet", index=False)
    task = {
        "scitail-hub": {
            "type": "classification",
            "labels": ["entails", "neutral"],
            "metrics": ["accuracy"],
            "hub": {
                "path": str(hub),
                "name": "tsv_format",
                "columns": {"text_a": "premise", "text_b": "hypothesis", "label": "label"},
                "splits": {"train": "train", "dev": "validation", "test": "test"},
            },
        }
    }
    (tmp_path / "tasks.yaml").write_text(yaml.safe_dump(task))
    params = smoke_params(datasets=["scitail-hub"], sizes=[8], seeds=[1])
    params["data"]["task_files"] = [str(tmp_path / "tasks.yaml")]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    env = {"HF_DATASETS_CACHE": tmp_path / "hf-cache"}
    assert run_cli(["prepare", "--task", "scitail-hub"], tmp_path, env).returncode == 0
    assert run_cli(["tokenize", "--task", "scitail-hub"], tmp_path, env).returncode == 0
    r = run_cli(
        ["adapt", "--task", "scitail-hub", "--size", "n8", "--seed", "1", "--out", "cell.json"],
        tmp_path,
        env,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    cell = json.loads((tmp_path / "cell.json").read_text())
    assert cell["cell"]["n"] == 8 and "dev" in cell["metrics"]
    assert set(read_predictions(tmp_path / "cell.preds.parquet")["split"]) == set(cell["metrics"])
