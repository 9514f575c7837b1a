"""Atomic file writes: temp file in the same folder, fsync, rename. A crash leaves the old file or the new one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from harness.errors import UserError


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
