"""Tasks are data: YAML blocks parsed into frozen dataclasses. Unknown keys or values fail at load."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from mtdnn.errors import MtdnnError
from mtdnn.validation import check, load_schema


class TaskType(str, enum.Enum):
    CLASSIFICATION = "classification"
    REGRESSION = "regression"
    RANKING = "ranking"


class HeadKind(str, enum.Enum):
    LINEAR = "linear"
    SAN = "san"


@dataclass(frozen=True)
class FileSource:
    """One split read from one file; ``columns`` maps canonical names to header names or indices."""

    file: str
    format: str = "tsv"
    header: bool = True
    columns: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    drop_labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class LocalSource:
    dir: str
    splits: MappingProxyType  # split name -> FileSource


@dataclass(frozen=True)
class HubSource:
    path: str
    name: str | None
    columns: MappingProxyType
    splits: MappingProxyType  # our split name -> Hub split name
    # The value the Hub stores for "no label": ClassLabel -1 (GLUE test splits, SNLI's pairs without
    # annotator consensus), -1.0 for STS-B's test scores. None: every value is a real label.
    no_label: float | None = None


@dataclass(frozen=True)
class TaskSpec:
    name: str
    type: TaskType
    metrics: tuple[str, ...]
    labels: tuple[str, ...] = ()
    label_range: tuple[float, float] | None = None
    primary_metric: str = ""
    positive_label: str | None = None
    dropout: float = 0.1
    train_split: str | None = "train"
    dev_splits: tuple[str, ...] = ("dev",)
    test_splits: tuple[str, ...] = ("test",)
    predict_with: str | None = None
    # Splits that come without labels (GLUE's test splits): a missing label is fine there. On any
    # other split a row without a label is an error, or dropped and counted with drop_unlabelled.
    unlabelled_splits: tuple[str, ...] = ("test",)
    drop_unlabelled: bool = False  # SNLI: pairs without annotator consensus are not examples
    drop_empty_text: bool = False  # QQP: two official train rows have an empty question2
    local: LocalSource | None = None
    hub: HubSource | None = None

    @property
    def num_outputs(self) -> int:
        return len(self.labels) if self.type is TaskType.CLASSIFICATION else 1

    @property
    def splits(self) -> tuple[str, ...]:
        head = (self.train_split,) if self.train_split else ()
        return head + self.dev_splits + self.test_splits

    def is_labelled(self, split: str) -> bool:
        """Whether every row of ``split`` must carry a label."""
        return split not in self.unlabelled_splits

    @property
    def head_task(self) -> str:
        """The task whose head makes this task's predictions (AX uses MNLI's)."""
        return self.predict_with or self.name


_FILE_KEYS = (
    "format",
    "header",
    "columns",
    "drop_labels",
)  # a local block's defaults for its splits


def _file_source(block: dict, defaults: dict, where: str) -> FileSource:
    """One split's file; the shape was checked against the schema, so only the merge is left."""
    merged = {k: v for k, v in defaults.items() if k in _FILE_KEYS} | block
    columns = merged.get("columns", {})
    if "text_a" not in columns:
        raise MtdnnError(f"{where}.columns: 'text_a' is required (here or in the local block)")
    return FileSource(
        file=str(merged["file"]),
        format=merged.get("format", "tsv"),
        header=bool(merged.get("header", True)),
        columns=MappingProxyType(dict(columns)),
        drop_labels=tuple(str(x) for x in merged.get("drop_labels", ())),
    )


def parse_file_source(block: dict, where: str) -> FileSource:
    """A standalone file source (params' generic local sources, validated by the params schema)."""
    return _file_source(block, {}, where)


def _local(block: dict, where: str) -> LocalSource:
    splits = block.get("splits") or {}
    parsed = {s: _file_source(b, block, f"{where}.splits.{s}") for s, b in splits.items()}
    return LocalSource(dir=str(block.get("dir", "")), splits=MappingProxyType(parsed))


def _hub(block: dict, splits: tuple[str, ...]) -> HubSource:
    default_splits = {s: ("validation" if s == "dev" else s) for s in splits}
    return HubSource(
        path=str(block["path"]),
        name=block.get("name"),
        columns=MappingProxyType(dict(block["columns"])),
        splits=MappingProxyType(dict(block.get("splits") or default_splits)),
        no_label=block.get("no_label"),
    )


def parse_task(name: str, block: dict, source: str = "<tasks>") -> TaskSpec:
    """One task block, already checked against ``task.schema.yaml``; here the checks that span
    fields."""
    where = f"{source}: {name}"
    ttype = TaskType(block["type"])
    metrics = tuple(block["metrics"])
    labels = tuple(str(x) for x in block.get("labels") or ())
    if ttype is not TaskType.REGRESSION and len(labels) < 2:
        raise MtdnnError(f"{where}.labels: a {ttype.value} task needs at least two labels")
    primary = block.get("primary_metric", metrics[0])
    if primary not in metrics:
        raise MtdnnError(f"{where}.primary_metric: '{primary}' is not in metrics {metrics}")
    dev_splits = tuple(block.get("dev_splits", ("dev",)))
    test_splits = tuple(block.get("test_splits", ("test",)))
    train_split = block.get("train_split", "train")
    all_splits = ((train_split,) if train_split else ()) + dev_splits + test_splits
    rng = block.get("label_range")
    unlabelled = tuple(block.get("unlabelled_splits", test_splits))
    unknown = sorted(set(unlabelled) - set(all_splits))
    if unknown:
        raise MtdnnError(f"{where}.unlabelled_splits: '{unknown[0]}' is not one of {all_splits}")
    return TaskSpec(
        name=name,
        type=ttype,
        metrics=metrics,
        labels=labels,
        label_range=tuple(float(x) for x in rng) if rng else None,
        primary_metric=primary,
        positive_label=block.get("positive_label"),
        dropout=float(block.get("dropout", 0.1)),
        train_split=train_split,
        dev_splits=dev_splits,
        test_splits=test_splits,
        predict_with=block.get("predict_with"),
        unlabelled_splits=unlabelled,
        drop_unlabelled=block.get("drop_unlabelled", False),
        drop_empty_text=block.get("drop_empty_text", False),
        local=_local(block["local"], f"{where}.local") if "local" in block else None,
        hub=_hub(block["hub"], all_splits) if "hub" in block else None,
    )


class DuplicateKeyError(yaml.YAMLError):
    """A mapping names the same key twice (PyYAML would silently keep the last one)."""

    def __init__(self, key: Any, line: int, top_level: bool) -> None:
        super().__init__(f"duplicate key '{key}'")
        self.key, self.line, self.top_level = key, line, top_level


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses duplicate mapping keys."""

    def construct_document(self, node):
        self._root = node
        return super().construct_document(node)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:  # unhashable: SafeLoader reports it
                continue
            if duplicate:
                top = node is getattr(self, "_root", None)
                raise DuplicateKeyError(key, key_node.start_mark.line + 1, top)
            seen.add(key)
        return super().construct_mapping(node, deep)


# YAML 1.1 reads "5e-05" (no dot) as a string, yet that is how DVC writes `-S lr=5e-5` back into
# params.yaml; YAML 1.2 and every user mean a float.
UniqueKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _read_yaml(path: Path | str, text: str) -> dict:
    try:
        data = yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except DuplicateKeyError as e:
        what = "task name" if e.top_level else "key"
        raise MtdnnError(f"{path}:{e.line}: duplicate {what} '{e.key}'") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise MtdnnError(f"{path}{line}: invalid YAML ({problem})") from None
    if not isinstance(data, dict):
        raise MtdnnError(f"{path}: expected a mapping of task name to task block")
    return data


def _builtin_files() -> list[tuple[str, str]]:
    root = resources.files("mtdnn") / "tasks"
    return sorted(
        (f"mtdnn/tasks/{p.name}", p.read_text()) for p in root.iterdir() if p.name.endswith(".yaml")
    )


def load_tasks(extra_files: list[str | Path] = ()) -> dict[str, TaskSpec]:
    """Built-in tasks plus user YAML files. A duplicate name anywhere is an error."""
    sources = _builtin_files()
    for path in extra_files:
        try:
            sources.append((str(path), Path(path).read_text(encoding="utf-8")))
        except OSError as e:
            raise MtdnnError(f"{path}: cannot read task file ({e.strerror})") from None
    tasks: dict[str, TaskSpec] = {}
    task_file = load_schema("task.schema.yaml")
    for path, text in sources:
        doc = _read_yaml(path, text)
        check(doc, task_file, path)
        for name, block in doc.items():
            if name in tasks:
                raise MtdnnError(f"{path}: duplicate task name '{name}'")
            tasks[name] = parse_task(str(name), block, path)
    _check_references(tasks)
    return tasks


def _check_references(tasks: dict[str, TaskSpec]) -> None:
    for t in tasks.values():
        if t.predict_with and t.predict_with not in tasks:
            raise MtdnnError(f"task {t.name}: predict_with names unknown task '{t.predict_with}'")


def get_task(tasks: dict[str, TaskSpec], name: str) -> TaskSpec:
    if name not in tasks:
        raise MtdnnError(f"unknown task '{name}' (known: {', '.join(sorted(tasks))})")
    return tasks[name]
