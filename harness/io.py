"""Files: atomic writes (temp file in the same folder, fsync, rename: a crash leaves the old file or the new one),
atomic folder swaps, line-numbered JSONL reading, and the one slug function every derived file name goes through."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from harness.errors import UserError

SLUG_MAX = 80


def ensure_dir(path: Path) -> Path:
    for parent in [path, *path.parents]:
        if parent.exists() and not parent.is_dir():
            raise UserError(f"{path}: {parent} is a file, not a folder; choose an output path outside it")
    path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a folder; give a file path to write to")
    ensure_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the mode a plain open() would
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def read_text(path: Path, what: str = "file") -> str:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such {what}; check the path")
    if path.is_dir():
        raise UserError(f"{path} is a folder; give the {what} itself")
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read {what} ({exc.__class__.__name__}: {exc}); check its permissions and encoding") from None


def write_jsonl(path: Path, rows: Iterable[Any]) -> Path:
    """One JSON value per line, atomically."""
    return atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows))


def iter_jsonl(path: Path, what: str, text: str | None = None) -> Iterator[tuple[int, Any]]:
    """(line number, value) of every non-blank line of a JSONL file (or of `text` read from it); a line that is not
    JSON is a one-line UserError naming the file and line. Lines split on "\n" only: str.splitlines would also break
    inside strings that hold U+2028 and friends."""
    text = read_text(path, what) if text is None else text
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}:{number}: not JSON ({exc.msg}); fix or re-create the {what}") from None


def read_jsonl(path: Path, what: str, text: str | None = None) -> list[dict[str, Any]]:
    """The JSON objects of a JSONL file; a line holding anything but an object is an error naming it."""
    rows = []
    for number, value in iter_jsonl(path, what, text):
        if not isinstance(value, dict):
            raise UserError(f"{path}:{number}: expected a JSON object, got {type(value).__name__}; fix the {what}")
        rows.append(value)
    return rows


def swap_folder(built: Path, target: Path) -> None:
    """Move a fully built folder into place: a reader sees the old folder or the new one, never a half-written one.
    The old folder is kept aside until the new one is in place, and put back if the move fails."""
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    try:
        os.replace(built, target)
    except OSError:
        if old.exists() and not target.exists():
            os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def slug(text: str) -> str:
    """A safe, readable file name for any label, model name or path: one path component (no separators, no "..",
    no NUL or control characters, at most 89 characters); distinct texts stay distinct through a short hash whenever
    anything had to be replaced or cut."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "model"
    if cleaned != text or len(cleaned) > SLUG_MAX:
        cleaned = f"{cleaned[:SLUG_MAX]}-{hashlib.sha1(text.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"
    return cleaned
