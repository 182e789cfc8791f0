"""Atomic file writes and checksums: a failed job must never leave a file that looks complete."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mtdnn.errors import MtdnnError


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while block := f.read(chunk):
                h.update(block)
    except FileNotFoundError:
        raise MtdnnError(f"{path}: file not found") from None
    except OSError as e:
        raise MtdnnError(f"{path}: cannot read ({e.strerror or e})") from None
    return h.hexdigest()


def sha256_json(obj: Any) -> str:
    """Stable hash of a JSON-able object (sorted keys), used for params hashes."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def _umask_mode(mode: int) -> int:
    """``mode`` filtered by the process umask: what ``open``/``mkdir`` would have created."""
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


def _check_writable(dest: Path) -> None:
    blocker = next((p for p in (dest.parent, *dest.parent.parents) if p.is_file()), None)
    if blocker is not None:
        raise MtdnnError(
            f"{dest}: cannot create output directory ({blocker} is a file, expected a directory)"
        )
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MtdnnError(f"{dest}: cannot create output directory ({e.strerror})") from None
    if not os.access(dest.parent, os.W_OK):
        raise MtdnnError(f"{dest}: output directory is not writable")


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temp path beside ``dest``; rename it onto ``dest`` only if the block succeeds.

    Same directory => same filesystem => ``os.replace`` is atomic. The file is fsynced first so a
    crash right after the rename cannot expose an empty file.
    """
    dest = Path(dest)
    _check_writable(dest)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=suffix + ".tmp", dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        os.chmod(tmp_path, _umask_mode(0o666))  # mkstemp makes 0600; outputs are shared artefacts
        yield tmp_path
        if tmp_path.is_file():
            with open(tmp_path, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp_path, dest)
    except BaseException as e:
        _discard(tmp_path, dest, e)


def _discard(tmp: Path, dest: Path, error: BaseException) -> None:
    """Remove the partial copy; an I/O failure (a full disk) becomes a one-line error."""
    _remove(tmp)
    if isinstance(error, OSError):
        raise MtdnnError(f"{dest}: write failed ({error.strerror or error})") from None
    raise error


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def write_text(dest: str | os.PathLike, text: str) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(dest: str | os.PathLike, obj: Any) -> None:
    write_text(dest, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def json_object(text: str, where: str, what: str = "a JSON object") -> dict:
    """``text`` parsed as one JSON object; anything else is one line naming ``where``."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise MtdnnError(f"{where}: invalid JSON ({e.msg} at column {e.colno})") from None
    if not isinstance(obj, dict):
        raise MtdnnError(f"{where}: expected {what}, got {type(obj).__name__}")
    return obj


def read_json(path: str | os.PathLike) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MtdnnError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise MtdnnError(f"{path}: not valid JSON ({e})") from None


def recover_dir(dest: str | os.PathLike) -> None:
    """Undo a swap that was killed between its two renames: the previous copy is still complete."""
    dest = Path(dest)
    old = dest.with_name(f".{dest.name}.old")
    if not dest.exists() and old.is_dir():
        os.replace(old, dest)


@contextlib.contextmanager
def atomic_dir(dest: str | os.PathLike) -> Iterator[Path]:
    """Build a directory beside ``dest`` and swap it in only when complete."""
    dest = Path(dest)
    _check_writable(dest)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        os.chmod(tmp, _umask_mode(0o777))  # mkdtemp makes 0700
        yield tmp
        old = dest.with_name(f".{dest.name}.old")
        _remove(old)
        if dest.exists():
            os.replace(dest, old)
        os.replace(tmp, dest)
        _remove(old)
    except BaseException as e:
        _discard(tmp, dest, e)
