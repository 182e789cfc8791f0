"""Malformed input of every kind: exit code 2, exactly one line on stderr naming the offending file
(and line) or params key and what was expected, no traceback, and no output left behind."""

from __future__ import annotations

import copy
import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from fixtures import (
    COLA_TRAIN,
    QNLI_PAIRS,
    RTE_HEADER,
    RTE_TRAIN,
    SNLI_GLUE_ROWS,
    STSB_HEADER,
    STSB_TRAIN,
    jsonl_text,
    make_rte,
    make_snli,
    make_stsb,
    snli_record,
    tsv_text,
    write_tsv,
)
from helpers import REPO


@dataclass
class Case:
    argv: list
    names: list[str]  # the offending file (with :line) or params key, as it must appear
    expects: list[str]  # what was expected / what is wrong, as it must appear
    out: Path | None = None  # an output path that must not exist afterwards
    env: dict = field(default_factory=dict)


CASES: dict[str, Callable[[Path], Case]] = {}


def case(fn: Callable[[Path], Case]) -> Callable[[Path], Case]:
    CASES[fn.__name__.removeprefix("case_")] = fn
    return fn


# --- helpers -----------------------------------------------------------------------------------------


def prepare(tmp: Path, task: str, glue: Path | None = None, **kw) -> Case:
    out = tmp / "out" / task
    argv = ["prepare", "--task", task, "--out", out]
    if glue is not None:
        argv += ["--glue-dir", glue]
    return Case(argv=argv, out=out, **kw)


def rte(tmp: Path) -> Path:
    """A tiny GLUE_DIR with real RTE rows; returns RTE/train.tsv (the file the cases corrupt)."""
    return make_rte(tmp / "glue") / "RTE" / "train.tsv"


def rte_case(tmp: Path, names: list[str], expects: list[str]) -> Case:
    return prepare(tmp, "rte", tmp / "glue", names=names, expects=expects)


def set_line(path: Path, lineno: int, text: str) -> None:
    lines = path.read_text(encoding="utf-8").split("\n")
    lines[lineno - 1] = text
    path.write_text("\n".join(lines), encoding="utf-8")


def params(tmp: Path, edit: Callable[[dict], None] | None = None, name="params.yaml") -> Path:
    """The shipped params.yaml, edited, written to ``tmp/name``."""
    data = yaml.safe_load((REPO / "params.yaml").read_text())
    data = copy.deepcopy(data)
    if edit:
        edit(data)
    path = tmp / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def check(tmp: Path, edit: Callable[[dict], None], names, expects) -> Case:
    path = params(tmp, edit, "bad-params.yaml")
    return Case(argv=["check", "--params", path], names=[str(path), *names], expects=expects)


def task_file(tmp: Path, text: str) -> Case:
    """A custom task YAML listed in params data.task_files."""
    tasks = tmp / "my_tasks.yaml"
    tasks.write_text(text)
    path = params(tmp, lambda p: p["data"].update(task_files=[str(tasks)]))
    return Case(argv=["check", "--params", path], names=[str(tasks)], expects=[])


CUSTOM_TASK = """\
my-nli:
  type: classification
  labels: [entailment, not_entailment]
  metrics: [accuracy]
  local:
    dir: MyNLI
    columns: {text_a: premise, text_b: hypothesis, label: label}
    splits:
      train: {file: train.tsv}
"""


# --- malformed data files (a GLUE_DIR with real RTE / STS-B / SNLI rows, one file corrupted) --------


@case
def case_missing_column(tmp):
    train = rte(tmp)
    write_tsv(train, ["index", "sentence1", "hypothesis", "label"], RTE_TRAIN)
    return rte_case(tmp, [f"{train}:1"], ["missing column 'sentence2'", "'hypothesis'"])


@case
def case_wrong_label(tmp):
    train = rte(tmp)
    set_line(train, 3, "\t".join(RTE_TRAIN[1][:3] + ["entailed"]))
    return rte_case(tmp, [f"{train}:3"], ["'entailed'", "['entailment', 'not_entailment']"])


@case
def case_empty_file(tmp):
    train = rte(tmp)
    train.write_bytes(b"")
    return rte_case(tmp, [str(train)], ["empty file"])


@case
def case_header_only(tmp):
    train = rte(tmp)
    write_tsv(train, RTE_HEADER, [])
    return rte_case(tmp, [str(train)], ["split 'train'", "no data rows"])


@case
def case_nul_bytes(tmp):
    train = rte(tmp)
    set_line(train, 4, "12\tValero Energy\x00\x00\x00Corp.\tValero.\tentailment")
    return rte_case(tmp, [f"{train}:4"], ["NUL", "expected a UTF-8 text file"])


@case
def case_binary_garbage(tmp):
    train = rte(tmp)
    data = gzip.compress(train.read_bytes(), mtime=0)  # a .gz saved under the .tsv name
    train.write_bytes(data)
    line = data.count(b"\n", 0, data.index(b"\x00")) + 1
    return rte_case(tmp, [f"{train}:{line}"], ["expected a UTF-8 text file"])


@case
def case_non_utf8(tmp):
    train = rte(tmp)
    text = tsv_text(RTE_HEADER, RTE_TRAIN).replace("Yukos", "Y\u00fckos")
    train.write_bytes(text.encode("latin-1"))  # line 5 holds the Latin-1 byte 0xfc
    return rte_case(tmp, [f"{train}:5"], ["not valid UTF-8", "0xfc"])


@case
def case_comma_delimited(tmp):
    train = rte(tmp)
    train.write_text(
        "index,sentence1,sentence2,label\n"
        '0,No Weapons of Mass Destruction Found in Iraq Yet.,"Weapons of Mass Destruction '
        'Found in Iraq.",not_entailment\n'
    )
    return rte_case(tmp, [f"{train}:1"], ["missing column 'index'", "tab-separated"])


@case
def case_truncated_line(tmp):
    train = rte(tmp)
    set_line(train, 3, "5\tBritain said, Friday, that it has barred cleric")
    return rte_case(tmp, [f"{train}:3"], ["expected at least 4 tab-separated fields", "found 2"])


@case
def case_duplicate_uid(tmp):
    train = rte(tmp)
    set_line(train, 5, "\t".join(["5"] + RTE_TRAIN[3][1:]))
    return rte_case(tmp, [f"{train}:5", f"{train}:3"], ["duplicate uid '5'"])


@case
def case_test_file_missing_column(tmp):
    rte(tmp)
    test = tmp / "glue" / "RTE" / "test.tsv"
    test.write_text(test.read_text().replace("index\t", "idx\t", 1))
    return rte_case(tmp, [f"{test}:1"], ["missing column 'index'"])


def stsb_case(tmp: Path, score: str, expects: list[str]) -> Case:
    train = make_stsb(tmp / "glue") / "STS-B" / "train.tsv"
    rows = copy.deepcopy(STSB_TRAIN)
    rows[1][-1] = score
    write_tsv(train, STSB_HEADER, rows)
    return prepare(tmp, "stsb", tmp / "glue", names=[f"{train}:3"], expects=expects)


@case
def case_stsb_score_nan(tmp):
    return stsb_case(tmp, "nan", ["NaN", "[0.0, 5.0]"])


@case
def case_stsb_score_out_of_range(tmp):
    return stsb_case(tmp, "7.5", ["7.5", "[0.0, 5.0]"])


@case
def case_stsb_score_not_a_number(tmp):
    return stsb_case(tmp, "3,8", ["'3,8' is not a number"])


def snli_case(tmp: Path, lines: list[str], bad_line: int, expects: list[str]) -> Case:
    make_snli(tmp / "glue")
    dev = tmp / "glue" / "SNLI" / "snli_1.0_dev.jsonl"
    dev.write_text("".join(line + "\n" for line in lines))
    return prepare(tmp, "snli", tmp / "glue", names=[f"{dev}:{bad_line}"], expects=expects)


def snli_lines() -> list[str]:
    return jsonl_text([snli_record(r) for r in SNLI_GLUE_ROWS]).splitlines()


@case
def case_snli_invalid_json(tmp):
    lines = snli_lines()
    lines[1] = lines[1][: len(lines[1]) // 2]  # a line cut short
    return snli_case(tmp, lines, 2, ["invalid JSON"])


@case
def case_snli_missing_key(tmp):
    lines = snli_lines()
    obj = json.loads(lines[2])
    del obj["sentence2"]
    lines[2] = json.dumps(obj)
    return snli_case(tmp, lines, 3, ["missing key 'sentence2'"])


@case
def case_snli_not_an_object(tmp):
    lines = snli_lines()
    lines[0] = json.dumps(list(json.loads(lines[0]).values()))
    return snli_case(tmp, lines, 1, ["expected a JSON object"])


@case
def case_snli_wrong_label(tmp):
    lines = snli_lines()
    lines[3] = lines[3].replace('"gold_label": "contradiction"', '"gold_label": "contradicts"')
    return snli_case(tmp, lines, 4, ["'contradicts'", "'entailment', 'neutral', 'contradiction'"])


@case
def case_extra_field(tmp):
    """A tab inside a sentence (files are read with no quoting) shifts every later column."""
    train = rte(tmp)
    row = RTE_TRAIN[1]
    set_line(train, 3, "\t".join([row[0], row[1][:40], row[1][40:], row[2], row[3]]))
    return rte_case(
        tmp, [f"{train}:3"], ["expected 4 tab-separated fields (as the header)", "found 5"]
    )


@case
def case_extra_field_headerless(tmp):
    """CoLA's train.tsv has no header: its rows must all be as wide as the first one."""
    glue = tmp / "glue"
    train = write_tsv(glue / "CoLA" / "train.tsv", None, COLA_TRAIN)
    write_tsv(glue / "CoLA" / "dev.tsv", None, COLA_TRAIN)
    shifted = ["One more pseudo generalization", "and I'm giving up."]  # a tab in the sentence
    set_line(train, 2, "\t".join(COLA_TRAIN[1][:3] + shifted))
    expects = ["expected 4 tab-separated fields (as line 1)", "found 5"]
    return prepare(tmp, "cola", glue, names=[f"{train}:2"], expects=expects)


@case
def case_empty_sentence(tmp):
    train = rte(tmp)
    set_line(train, 2, "\t".join([RTE_TRAIN[0][0], "", *RTE_TRAIN[0][2:]]))
    return rte_case(tmp, [f"{train}:2"], ["empty text_a", "split 'train'", "non-empty sentence"])


@case
def case_empty_second_sentence(tmp):
    train = rte(tmp)
    set_line(train, 4, "\t".join([*RTE_TRAIN[2][:2], " ", RTE_TRAIN[2][3]]))
    return rte_case(tmp, [f"{train}:4"], ["empty text_b", "task rte"])


@case
def case_no_dev_split(tmp):
    dev = rte(tmp).parent / "dev.tsv"
    dev.unlink()
    return rte_case(tmp, ["task rte", "dev", str(dev)], ["not found", "HF_HUB_OFFLINE"])


@case
def case_missing_label_in_train(tmp):
    """An empty label field on a labelled split: refused, never read as an unlabelled row."""
    train = rte(tmp)
    set_line(train, 3, "\t".join(RTE_TRAIN[1][:3] + [""]))
    return rte_case(tmp, [f"{train}:3"], ["label ''", "['entailment', 'not_entailment']"])


def hub_case(tmp: Path, config: str, split: str, label: float, expects: list[str]) -> Case:
    """A Hub-style mirror (data.hub_dir) of one GLUE config whose ``split`` has ``label`` in its
    second row; the other rows are real rows of the official files, in the Hub's form."""
    from hub_fixtures import glue_split, write_split

    folder = tmp / "hub" / "nyu-mll" / "glue" / config
    data = {"glue": make_stsb(make_rte(tmp / "glue"))}
    for hub_split in ("train", "validation", "test"):
        columns = glue_split(data, config, hub_split, 2)
        if hub_split == split:
            columns["label"] = [columns["label"][0].as_py(), label]
        write_split(folder, hub_split, columns)
    params(tmp, lambda p: p["data"].update(hub_dir=str(tmp / "hub"), sources={}))
    return prepare(tmp, config, names=[f"hub:{folder}/{split}: row 1"], expects=expects)


@case
def case_hub_no_label_in_train(tmp):
    """The Hub's -1 on a training row: an error, never an unlabelled example."""
    expects = ["no label in split 'train'", "['entailment', 'not_entailment']", "['test']"]
    return hub_case(tmp, "rte", "train", -1, expects)


@case
def case_hub_stsb_sentinel_in_dev(tmp):
    """STS-B's -1.0 means "no score" on the Hub's test split only; in dev it is refused."""
    return hub_case(tmp, "stsb", "validation", -1.0, ["no label in split 'dev'", "[0.0, 5.0]"])


@case
def case_hub_label_index_out_of_range(tmp):
    return hub_case(tmp, "rte", "train", 2, ["label index 2 out of range for task rte"])


@case
def case_hub_split_files_missing(tmp):
    mirror = tmp / "hub"
    (mirror / "nyu-mll" / "glue" / "rte").mkdir(parents=True)
    params(tmp, lambda p: p["data"].update(hub_dir=str(mirror), sources={}))
    folder = mirror / "nyu-mll" / "glue" / "rte"
    return prepare(tmp, "rte", names=[str(folder)], expects=["no train-*.parquet files"])


@case
def case_ranking_task_on_binary_pairs(tmp):
    """qnli-rank needs candidate lists; GLUE's QNLI v2 rows are independent binary pairs."""
    qnli = tmp / "glue" / "QNLI"
    header = ["index", "question", "sentence", "label"]
    rows = [[str(i), *r] for i, r in enumerate(QNLI_PAIRS)]
    write_tsv(qnli / "train.tsv", header, rows)
    write_tsv(qnli / "dev.tsv", header, rows)
    expects = ["not in ranking form", "of 3 groups, 2 have a single candidate, 1 no 'entailment'"]
    return prepare(tmp, "qnli-rank", tmp / "glue", names=[str(qnli / "train.tsv")], expects=expects)


# --- tasks and task files ------------------------------------------------------------------------------


@case
def case_unknown_task(tmp):
    return prepare(tmp, "rtee", rte(tmp).parents[1], names=["'rtee'"], expects=["known: ", "rte"])


@case
def case_unknown_task_field(tmp):
    c = task_file(tmp, CUSTOM_TASK + "  colour: blue\n")
    c.expects = ["my-nli.colour", "unknown key", "allowed: "]
    return c


@case
def case_unknown_task_type(tmp):
    c = task_file(tmp, CUSTOM_TASK.replace("type: classification", "type: clasification"))
    c.expects = ["my-nli.type", "'clasification'", "classification, regression, ranking"]
    return c


@case
def case_unknown_metric(tmp):
    c = task_file(tmp, CUSTOM_TASK.replace("[accuracy]", "[accuracy, auc]"))
    c.expects = ["my-nli.metrics", "'auc'", "accuracy, f1, mcc, pearson, spearman"]
    return c


@case
def case_task_hub_no_label_not_a_number(tmp):
    hub = "  hub: {path: me/my-nli, columns: {text_a: premise}, no_label: yes}\n"
    c = task_file(tmp, CUSTOM_TASK + hub)
    c.expects = ["my-nli.hub.no_label", "True", "number"]
    return c


@case
def case_task_local_split_without_text_a(tmp):
    c = task_file(tmp, CUSTOM_TASK.replace("columns: {text_a: premise, ", "columns: {"))
    c.expects = ["my-nli.local.columns", "'text_a' is a required property"]
    return c


@case
def case_task_redefines_builtin(tmp):
    c = task_file(tmp, CUSTOM_TASK.replace("my-nli:", "rte:"))
    c.expects = ["duplicate task name 'rte'"]
    return c


@case
def case_duplicate_task_in_one_file(tmp):
    c = task_file(tmp, CUSTOM_TASK + CUSTOM_TASK.replace("[accuracy]", "[f1]"))
    c.names = [f"{c.names[0]}:10"]  # the second definition
    c.expects = ["duplicate task name 'my-nli'"]
    return c


@case
def case_task_file_invalid_yaml(tmp):
    c = task_file(tmp, CUSTOM_TASK.replace("[accuracy]", "[accuracy"))
    c.names = [f"{c.names[0]}:5"]
    c.expects = ["invalid YAML", "expected ',' or ']'"]
    return c


@case
def case_task_file_missing(tmp):
    missing = tmp / "nope.yaml"
    path = params(tmp, lambda p: p["data"].update(task_files=[str(missing)]))
    return Case(
        ["check", "--params", path], names=[str(missing)], expects=["cannot read task file"]
    )


# --- where data comes from -------------------------------------------------------------------------------


@case
def case_glue_dir_env_nowhere(tmp):
    nowhere = tmp / "no-such-glue"
    c = prepare(
        tmp, "rte", names=[f"GLUE_DIR={nowhere}"], expects=["directory not found", "RTE/train.tsv"]
    )
    c.env = {"GLUE_DIR": nowhere}
    return c


@case
def case_glue_dir_arg_nowhere(tmp):
    nowhere = tmp / "no-such-glue"
    return prepare(
        tmp, "rte", nowhere, names=["--glue-dir", str(nowhere)], expects=["directory not found"]
    )


@case
def case_hub_offline_no_local_data(tmp):
    return prepare(
        tmp,
        "mnli",
        names=["mnli", "nyu-mll/glue"],
        expects=["GLUE_DIR", "HF_HUB_OFFLINE", "data.sources"],
    )


def sources_case(tmp: Path, source: dict, names, expects) -> Case:
    params(tmp, lambda p: p["data"]["sources"].update(rte={"train": source}))
    return prepare(tmp, "rte", names=names, expects=expects)


RTE_COLUMNS = {"uid": "index", "text_a": "sentence1", "text_b": "sentence2", "label": "label"}


@case
def case_source_escapes_project(tmp):
    src = {"file": "../../etc/passwd", "columns": RTE_COLUMNS}
    return sources_case(
        tmp,
        src,
        ["data.sources.rte.train.file", "'../../etc/passwd'"],
        ["escapes the project", "absolute path"],
    )


@case
def case_source_file_missing(tmp):
    missing = tmp / "derived" / "rte_train.tsv"
    src = {"file": str(missing), "columns": RTE_COLUMNS}
    return sources_case(tmp, src, [str(missing)], ["file not found"])


@case
def case_source_parquet_corrupt(tmp):
    bad = tmp / "rte_train.parquet"
    bad.write_text(tsv_text(RTE_HEADER, RTE_TRAIN))  # a TSV with a .parquet name
    src = {"file": str(bad), "format": "parquet", "columns": RTE_COLUMNS}
    return sources_case(tmp, src, [str(bad)], ["not a readable parquet file"])


# --- params.yaml -------------------------------------------------------------------------------------------


@case
def case_params_wrong_type(tmp):
    return check(
        tmp, lambda p: p["tokenize"].update(max_len="x"), ["tokenize.max_len"], ["'x'", "integer"]
    )


@case
def case_params_negative_lr(tmp):
    return check(tmp, lambda p: p["mtl"].update(lr=-0.001), ["mtl.lr"], ["-0.001", "minimum of 0"])


@case
def case_params_size_above_one(tmp):
    return check(
        tmp,
        lambda p: p["adapt"].update(sizes=[1.5]),
        ["adapt.sizes.0"],
        ["1.5", "<= 1", "integer >= 2"],
    )


@case
def case_params_size_zero(tmp):
    return check(
        tmp, lambda p: p["adapt"].update(sizes=[0, 549]), ["adapt.sizes.0"], ["> 0", "integer >= 2"]
    )


@case
def case_params_unknown_encoder(tmp):
    return check(
        tmp, lambda p: p.update(encoder="bert-huge"), ["encoder"], ["'bert-huge'", "minilm"]
    )


@case
def case_params_unknown_mtl_task(tmp):
    return check(
        tmp,
        lambda p: p["mtl"]["tasks"].append("mnli-x"),
        ["mtl.tasks"],
        ["unknown task 'mnli-x'", "known: "],
    )


@case
def case_params_unknown_optional_task(tmp):
    return check(
        tmp,
        lambda p: p["data"].update(optional_tasks=["qnlii"]),
        ["data.optional_tasks"],
        ["unknown task 'qnlii'"],
    )


@case
def case_params_unknown_adapt_encoder(tmp):
    return check(
        tmp,
        lambda p: p["adapt"].update(encoder="bert-bsae"),
        ["adapt.encoder"],
        ["unknown alias 'bert-bsae'", "bert-base"],
    )


@case
def case_subsample_of_unlabelled_rows(tmp):
    """A canonical train split with a missing label (written by hand or by an older version)."""
    import pandas as pd

    canonical = tmp / "canonical" / "snli"
    canonical.mkdir(parents=True)
    rows = [snli_record(r) for r in SNLI_GLUE_ROWS]
    labels = [r["gold_label"] for r in rows[:3]] + [None]
    pd.DataFrame(
        {
            "uid": [r["pairID"] for r in rows],
            "text_a": [r["sentence1"] for r in rows],
            "text_b": [r["sentence2"] for r in rows],
            "label": labels,
        }
    ).to_parquet(canonical / "train.parquet", index=False)
    out = tmp / "out" / "draw.tsv"
    argv = ["subsample", "--task", "snli", "--size", "n3", "--seed", "1"]
    argv += ["--canonical", canonical, "--out", out]
    return Case(argv, names=["task snli"], expects=["1 of 4 training rows have no label"], out=out)


@case
def case_params_adapt_task_in_mtl(tmp):
    return check(
        tmp,
        lambda p: p["mtl"]["tasks"].append("snli"),
        ["adapt.datasets", "mtl.tasks"],
        ["'snli'", "held out"],
    )


@case
def case_params_non_integer_seed(tmp):
    return check(tmp, lambda p: p.update(seeds=[1, 2.5]), ["seeds.1"], ["2.5", "integer"])


@case
def case_params_seeds_not_a_list(tmp):
    return check(tmp, lambda p: p["adapt"].update(seeds="1,2,3"), ["adapt.seeds"], ["array"])


@case
def case_params_unknown_key(tmp):
    return check(
        tmp,
        lambda p: p["finetune"].update(learning_rate=1e-5),
        ["finetune.learning_rate"],
        ["unknown key", "allowed: ", "lr"],
    )


@case
def case_params_unknown_top_level_key(tmp):
    return check(
        tmp, lambda p: p.update(trainer={"lr": 1}), ["trainer"], ["unknown key", "allowed: ", "mtl"]
    )


@case
def case_params_invalid_yaml(tmp):
    path = tmp / "bad-params.yaml"
    text = (REPO / "params.yaml").read_text()
    lines = text.splitlines()
    lineno = next(i for i, ln in enumerate(lines, 1) if ln.strip().startswith("max_len:"))
    lines[lineno - 1] = "  max_len: [128"
    path.write_text("\n".join(lines) + "\n")
    return Case(["check", "--params", path], names=[f"{path}:"], expects=["invalid YAML"])


@case
def case_params_duplicate_key(tmp):
    path = tmp / "bad-params.yaml"
    lines = (REPO / "params.yaml").read_text().splitlines()
    lineno = next(i for i, ln in enumerate(lines, 1) if ln.startswith("  lr:"))  # mtl.lr
    lines.insert(lineno, "  lr: 1.0e-3")
    path.write_text("\n".join(lines) + "\n")
    return Case(
        ["check", "--params", path], names=[f"{path}:{lineno + 1}"], expects=["duplicate key 'lr'"]
    )


@case
def case_params_source_escapes_project(tmp):
    def edit(p):
        p["data"]["sources"]["snli"]["dev"]["file"] = "../data/snli_dev.tsv"

    return check(
        tmp, edit, ["data.sources.snli.dev.file", "'../data/snli_dev.tsv'"], ["escapes the project"]
    )


@case
def case_params_not_a_mapping(tmp):
    path = tmp / "bad-params.yaml"
    path.write_text("- encoder: minilm\n")
    return Case(["check", "--params", path], names=[str(path)], expects=["expected a mapping"])


@case
def case_params_file_missing(tmp):
    path = tmp / "no-params.yaml"
    c = prepare(tmp, "rte", rte(tmp).parents[1], names=[str(path)], expects=["file not found"])
    c.argv += ["--params", path]
    return c


# --- the command line -------------------------------------------------------------------------------------


@case
def case_tokenize_before_prepare(tmp):
    canonical, out = tmp / "data" / "canonical" / "rte", tmp / "out" / "tok"
    argv = ["tokenize", "--task", "rte", "--max-len", 64, "--canonical", canonical, "--out", out]
    return Case(argv, names=[str(canonical)], expects=["mtdnn prepare --task rte"], out=out)


@case
def case_tokenize_max_len_too_small(tmp):
    from mtdnn.prepare import prepare_task
    from mtdnn.tasks import load_tasks

    canonical, out = tmp / "canonical" / "rte", tmp / "out" / "tok"
    prepare_task(load_tasks()["rte"], canonical, str(make_rte(tmp / "glue")))
    argv = ["tokenize", "--task", "rte", "--max-len", 4, "--canonical", canonical, "--out", out]
    return Case(argv, names=["max_len"], expects=[">= 8", "got 4"], out=out)


@case
def case_tokenize_unknown_encoder(tmp):
    out = tmp / "out" / "tok"
    argv = ["tokenize", "--task", "rte", "--encoder", "bert-huge", "--canonical", tmp, "--out", out]
    return Case(argv, names=["'bert-huge'"], expects=["expected one of", "minilm"], out=out)


@case
def case_missing_required_argument(tmp):
    out = tmp / "out" / "rte"
    return Case(["prepare", "--out", out], names=["--task"], expects=["required"], out=out)


@case
def case_bad_argument_type(tmp):
    out = tmp / "out" / "tok"
    argv = ["tokenize", "--task", "rte", "--max-len", "long", "--out", out]
    return Case(argv, names=["--max-len"], expects=["invalid int value: 'long'"], out=out)


@case
def case_output_parent_is_a_file(tmp):
    afile = tmp / "afile"
    afile.write_text("not a directory\n")
    c = prepare(
        tmp, "rte", rte(tmp).parents[1], names=[], expects=["is a file, expected a directory"]
    )
    c.out = afile / "out"
    c.argv[c.argv.index("--out") + 1] = c.out
    c.names = [str(c.out)]
    return c


# --- the contract -----------------------------------------------------------------------------------------


def tree(root: Path) -> dict[str, tuple[int, int] | None]:
    """Every path under ``root``; files with (size, mtime). Directory mtimes change with any
    create-and-remove inside them, so only their existence counts."""
    return {
        str(p.relative_to(root)): None if p.is_dir() else (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
    }


def assert_contract(c: Case, result, tmp: Path, before: dict) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    msg = lines[0]
    assert msg.startswith("mtdnn: error: "), msg
    for s in c.names + c.expects:
        assert s in msg, f"{s!r} not in {msg!r}"
    if c.out is not None:
        assert not c.out.exists(), f"{c.out} was left behind"
        if c.out.parent.is_dir():
            assert not list(c.out.parent.glob(".*.tmp")), list(c.out.parent.iterdir())
            assert not list(c.out.parent.glob(".*.old"))
    assert tree(tmp) == before, "files were created or changed"


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(name, tmp_path, cli):
    c = CASES[name](tmp_path)
    (tmp_path / "out").mkdir(exist_ok=True)  # the default parent of --out; it may exist
    before = tree(tmp_path)
    result = cli(c.argv, tmp_path, env=c.env)
    assert_contract(c, result, tmp_path, before)


# Through a real process: the exit status and stderr exactly as a shell or a workflow engine sees them.
SUBPROCESS = [
    "non_utf8",
    "missing_required_argument",
    "hub_offline_no_local_data",
    "params_invalid_yaml",
    "output_parent_is_a_file",
]


@pytest.mark.parametrize("name", SUBPROCESS)
def test_bad_input_subprocess(name, tmp_path, run_cli):
    c = CASES[name](tmp_path)
    (tmp_path / "out").mkdir(exist_ok=True)
    before = tree(tmp_path)
    result = run_cli(c.argv, tmp_path, env=c.env)
    assert_contract(c, result, tmp_path, before)


# The suite may grow, never shrink: cases are removed only on purpose, with this number.
MIN_CASES = 68


def test_every_case_is_registered():
    """A ``case_*`` function without ``@case`` would never run: each one is in CASES."""
    defined = {n.removeprefix("case_") for n in globals() if n.startswith("case_")}
    assert defined == set(CASES)
    assert len(CASES) >= MIN_CASES, len(CASES)


def test_dvc_style_exponent_floats_are_numbers(tmp_path):
    """`dvc exp run -S finetune.lr=5e-5` writes 5e-05, which YAML 1.1 would read as a string."""
    import yaml

    from mtdnn.config import load_params

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["finetune"]["lr"] = 5e-05
    text = yaml.safe_dump(params).replace("lr: 5.0e-05", "lr: 5e-05")
    assert "lr: 5e-05" in text
    (tmp_path / "params.yaml").write_text(text)
    assert load_params(tmp_path / "params.yaml")["finetune"]["lr"] == 5e-05
