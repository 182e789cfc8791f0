"""A local snapshot of the Hub's dataset repos, in the Hub's own layout and with its quirks.

``make_hub_mirror(root, glue, derived)`` writes ``root/<owner>/<repo>/<config>/<split>-00000-of-00001
.parquet`` for ``nyu-mll/glue`` (the nine GLUE tasks and AX), ``stanfordnlp/snli`` and
``allenai/scitail``: the layout `hf download --repo-type dataset` leaves, read through
``data.hub_dir``. The texts are real rows of the local GLUE copy and of the derived MNLI/QQP/SNLI
files (QNLI's train rows are dev rows: the local copy has no QNLI train). What the Hub does
differently from the official files is kept:

- labels are ClassLabel ints in the task's label order, STS-B scores floats, ``idx`` counts rows;
- every GLUE test split is unlabelled: label -1, STS-B -1.0;
- SNLI marks pairs without annotator consensus with -1 in train, validation and test alike
  (785 / 158 / 176 rows on the Hub; here the first rows of each split carry the marker);
- two official QQP train rows have an empty question2 (huggingface/datasets#277); one is here.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

NLI = ["entailment", "neutral", "contradiction"]
BINARY = ["0", "1"]
RTE = ["entailment", "not_entailment"]
# SNLI rows per split that carry the Hub's no-consensus label -1 (the first ones).
NO_CONSENSUS = {"train": 3, "validation": 2, "test": 1}

# config -> (text columns, label names (None: a float score), {Hub split: source}). A source is
# (file under the data root, has a header, text field indices, label field index or None for an
# unlabelled split, first data row). Files starting with "derived/" are read from the derived rows.
GLUE = {
    "cola": (("sentence",), BINARY, {
        "train": ("CoLA/train.tsv", False, (3,), 1, 0),
        "validation": ("CoLA/dev.tsv", False, (3,), 1, 0),
        "test": ("CoLA/test.tsv", True, (1,), None, 0),
    }),
    "sst2": (("sentence",), BINARY, {
        "train": ("SST-2/train.tsv", True, (0,), 1, 0),
        "validation": ("SST-2/dev.tsv", True, (0,), 1, 0),
        "test": ("SST-2/test.tsv", True, (1,), None, 0),
    }),
    "mrpc": (("sentence1", "sentence2"), BINARY, {
        "train": ("MRPC/train.tsv", True, (3, 4), 0, 0),
        "validation": ("MRPC/dev.tsv", True, (3, 4), 0, 0),
        "test": ("MRPC/test.tsv", True, (3, 4), None, 0),
    }),
    "stsb": (("sentence1", "sentence2"), None, {
        "train": ("STS-B/train.tsv", True, (7, 8), 9, 0),
        "validation": ("STS-B/dev.tsv", True, (7, 8), 9, 0),
        "test": ("STS-B/test.tsv", True, (7, 8), None, 0),
    }),
    "qqp": (("question1", "question2"), BINARY, {
        "train": ("derived/QQP/train_subset.tsv", True, (3, 4), 5, 0),
        "validation": ("derived/QQP/dev_sample1k.tsv", True, (3, 4), 5, 0),
        "test": ("derived/QQP/dev_sample1k.tsv", True, (3, 4), None, 100),
    }),
    "mnli": (("premise", "hypothesis"), NLI, {
        "train": ("derived/MNLI/train_subset.glue.tsv", True, (8, 9), 11, 0),
        "validation_matched": ("derived/MNLI/dev_matched_sample1k.glue.tsv", True, (8, 9), 15, 0),
        "validation_mismatched": (
            "derived/MNLI/dev_mismatched_sample1k.glue.tsv", True, (8, 9), 15, 0,
        ),
        "test_matched": ("derived/MNLI/dev_matched_sample1k.glue.tsv", True, (8, 9), None, 100),
        "test_mismatched": (
            "derived/MNLI/dev_mismatched_sample1k.glue.tsv", True, (8, 9), None, 100,
        ),
    }),
    "qnli": (("question", "sentence"), RTE, {
        "train": ("QNLI/dev.tsv", True, (1, 2), 3, 100),
        "validation": ("QNLI/dev.tsv", True, (1, 2), 3, 0),
        "test": ("QNLI/test.tsv", True, (1, 2), None, 0),
    }),
    "rte": (("sentence1", "sentence2"), RTE, {
        "train": ("RTE/train.tsv", True, (1, 2), 3, 0),
        "validation": ("RTE/dev.tsv", True, (1, 2), 3, 0),
        "test": ("RTE/test.tsv", True, (1, 2), None, 0),
    }),
    "wnli": (("sentence1", "sentence2"), BINARY, {
        "train": ("WNLI/train.tsv", True, (1, 2), 3, 0),
        "validation": ("WNLI/dev.tsv", True, (1, 2), 3, 0),
        "test": ("WNLI/test.tsv", True, (1, 2), None, 0),
    }),
    "ax": (("premise", "hypothesis"), NLI, {
        "test": ("diagnostic/diagnostic.tsv", True, (1, 2), None, 0),
    }),
}  # fmt: skip
SNLI_SOURCES = {
    "train": "derived/SNLI/train_subset.tsv",
    "validation": "derived/SNLI/dev.tsv",
    "test": "derived/SNLI/test.tsv",
}


def read_rows(path: Path, header: bool, start: int, n: int) -> list[list[str]]:
    """``n`` tab-separated rows (no quoting, as GLUE's files are) from data row ``start`` on."""
    lines = path.read_text(encoding="utf-8-sig").splitlines()[1 if header else 0 :]
    return [line.split("\t") for line in lines[start : start + n]]


def write_split(folder: Path, split: str, columns: dict) -> Path:
    """One Hub parquet shard, named as the Hub names its single-shard splits."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{split}-00000-of-00001.parquet"
    pq.write_table(pa.table(columns), path)
    return path


def _label(raw: str, labels: list[str] | None) -> int | float:
    return float(raw) if labels is None else labels.index(raw)


def glue_split(data: dict[str, Path], config: str, split: str, n: int) -> dict:
    """The Hub columns of one GLUE split: texts, label (or the -1 / -1.0 sentinel), idx."""
    names, labels, sources = GLUE[config]
    file, header, texts, label, start = sources[split]
    root = data["derived"] if file.startswith("derived/") else data["glue"]
    rows = read_rows(root / file.removeprefix("derived/"), header, start, n)
    columns = {name: [r[i] for r in rows] for name, i in zip(names, texts, strict=True)}
    sentinel = -1.0 if labels is None else -1
    values = [sentinel if label is None else _label(r[label], labels) for r in rows]
    columns["label"] = pa.array(values, pa.float32() if labels is None else pa.int64())
    columns["idx"] = pa.array(range(len(rows)), pa.int32())
    if config == "qqp" and split == "train":
        columns["question2"][1] = ""  # as the Hub's train rows 310121 and 362225
    return columns


def snli_split(derived: Path, split: str, n: int) -> dict:
    rows = read_rows(derived / SNLI_SOURCES[split].removeprefix("derived/"), True, 0, n)
    labels = [-1 if i < NO_CONSENSUS[split] else NLI.index(r[2]) for i, r in enumerate(rows)]
    return {
        "premise": [r[0] for r in rows],
        "hypothesis": [r[1] for r in rows],
        "label": pa.array(labels, pa.int64()),
    }


def scitail_split(derived: Path, split: str, n: int) -> dict:
    """SciTail's tsv_format config keeps its label strings; the pairs are real SNLI test rows."""
    rows = read_rows(derived / "SNLI" / "test.tsv", True, 0, n)
    return {
        "premise": [r[0] for r in rows],
        "hypothesis": [r[1] for r in rows],
        "label": ["entails" if r[2] == "entailment" else "neutral" for r in rows],
    }


def make_hub_mirror(root: Path, glue: Path, derived: Path, n: int = 24) -> Path:
    """Write the three Hub repos under ``root`` (a ``data.hub_dir``); returns ``root``."""
    data = {"glue": glue, "derived": derived}
    for config, (_, _, sources) in GLUE.items():
        for split in sources:
            columns = glue_split(data, config, split, n)
            write_split(root / "nyu-mll" / "glue" / config, split, columns)
    for split in SNLI_SOURCES:
        write_split(
            root / "stanfordnlp" / "snli" / "plain_text", split, snli_split(derived, split, n)
        )
        folder = root / "allenai" / "scitail" / "tsv_format"
        write_split(folder, split, scitail_split(derived, split, n))
    return root


def drop_config(root: Path, config: str) -> None:
    """Remove one GLUE config from the mirror (a partial snapshot)."""
    shutil.rmtree(root / "nyu-mll" / "glue" / config)


# --- a fake Hub server ----------------------------------------------------------------------------
# `mtdnn fetch` talks to the Hub through huggingface_hub; these tests point HF_ENDPOINT at this
# stand-in instead (the real Hub is unreachable from CI). It answers the four calls
# `snapshot_download` makes: the repo's revision (its commit), its file tree, and HEAD/GET of a file
# under /resolve/ with the headers the client reads (X-Repo-Commit, ETag, Content-Length).

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class FakeHub:
    """Serve ``repos`` ({(kind, repo id): directory}, kind "datasets" or "models") on 127.0.0.1.

    ``requests`` logs every (method, path) answered, so a test can tell what was downloaded."""

    def __init__(self, repos: dict[tuple[str, str], Path]) -> None:
        self.repos = repos
        self.requests: list[tuple[str, str]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeHub:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def downloads(self) -> list[str]:
        """The paths of the file bodies served (GET under /resolve/)."""
        return [p for m, p in self.requests if m == "GET" and "/resolve/" in p]

    def files(self, kind: str, repo: str) -> list[str]:
        root = self.repos[(kind, repo)]
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())

    def find(self, path: str) -> tuple[str, str, str] | None:
        """(kind, repo id, rest of the path) for a request path, or None."""
        for kind, repo in self.repos:
            for prefix in (f"/api/{kind}/{repo}/", f"/{repo}/" if kind == "models" else None,
                           f"/{kind}/{repo}/"):  # fmt: skip
                if prefix and path.startswith(prefix):
                    return kind, repo, path[len(prefix) :]
        return None


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet: the request log is hub.requests
            pass

        def do_HEAD(self) -> None:
            self._answer(body=False)

        def do_GET(self) -> None:
            self._answer(body=True)

        def _answer(self, body: bool) -> None:
            path = urllib.parse.urlsplit(self.path).path
            hub.requests.append((self.command, path))
            found = hub.find(urllib.parse.unquote(path))
            kind, repo, rest = found or ("", "", "")
            if found and path.startswith("/api/") and rest.startswith(("revision/", "tree/")):
                files = hub.files(kind, repo)
                doc = _repo_doc(repo, files) if rest.startswith("revision/") else _tree(hub, found)
                return self._send(200, json.dumps(doc).encode(), {}, body)
            if found and rest.startswith("resolve/"):
                file = hub.repos[(kind, repo)] / rest.split("/", 2)[2]
                if file.is_file():
                    data = file.read_bytes()
                    etag = f'"{hashlib.sha256(data).hexdigest()}"'
                    headers = {"X-Repo-Commit": COMMIT, "ETag": etag}
                    return self._send(200, data, headers, body)
            self._send(404, b'{"error": "not found"}', {"X-Error-Code": "EntryNotFound"}, body)

        def _send(self, code: int, data: bytes, headers: dict, body: bool) -> None:
            self.send_response(code)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if body:
                self.wfile.write(data)

    return Handler


def _repo_doc(repo: str, files: list[str]) -> dict:
    return {
        "id": repo,
        "sha": COMMIT,
        "private": False,
        "siblings": [{"rfilename": f} for f in files],
    }


def _tree(hub: FakeHub, found: tuple[str, str, str]) -> list[dict]:
    kind, repo, _ = found
    root = hub.repos[(kind, repo)]
    return [
        {
            "type": "file",
            "path": f,
            "size": (root / f).stat().st_size,
            "oid": hashlib.sha1((root / f).read_bytes()).hexdigest(),
        }
        for f in hub.files(kind, repo)
    ]
