"""Files: atomic writes (temp file in the same folder, fsync, rename: a crash leaves the old file or the new one),
atomic folder swaps, line-numbered JSONL reading, and the one slug function every derived file name goes through."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from harness.errors import UserError

SLUG_MAX = 80
TMP_MARK = ".sppo-"
"""Our temporaries are `.<name>.sppo-<random>.tmp`: the lock holder sweeps only those, never a user's own `.x.tmp`."""
NAME_MAX = 255
"""Bytes in one file name (ext4, xfs, btrfs, APFS)."""
READ_LIMIT = 1 << 30
"""The most a reader takes in (1 GiB): a file beyond it is refused, not read without end."""


def ensure_dir(path: Path) -> Path:
    for parent in [path, *path.parents]:
        if parent.exists() and not parent.is_dir():
            raise UserError(f"{path}: {parent} is a file, not a folder; choose an output path outside it")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UserError(f"{path} exists and is not a folder; choose an output path outside it") from None
    except OSError as exc:
        raise _write_error(path, exc) from None
    return path


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write `data` to `path` through a temporary in the same folder (never through a symlink: the temporary is
    created exclusively, and the rename replaces a link instead of following it)."""
    path = Path(path)
    if len(os.fsencode(path.name)) > NAME_MAX:
        raise UserError(f"{path}: the file name is {len(os.fsencode(path.name))} bytes, over the {NAME_MAX}-byte limit "
                        "of file names; choose a shorter name")
    if path.is_dir():
        raise UserError(f"{path} is a folder; give a file path to write to")
    ensure_dir(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=temporary_prefix(path.name), suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _write_error(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the mode a plain open() would
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _write_error(path, exc) from None
        raise
    return path


def temporary_prefix(name: str) -> str:
    """`.<name>.sppo-`, the name cut so that the temporary's whole name (8 random characters and `.tmp` added) stays
    within NAME_MAX bytes: a legal 253-byte name gets a legal temporary."""
    room = NAME_MAX - len(".") - len(TMP_MARK) - 8 - len(".tmp")
    while len(os.fsencode(name)) > room:
        name = name[:-1]
    return f".{name}{TMP_MARK}"


def _write_error(path: Path, exc: OSError) -> UserError:
    """A write failure in one line, naming what failed: the disk (its mount point) when it is full."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return UserError(f"{path}: the disk holding {mount_point(path.parent)} is full ({exc.strerror}); free space "
                         "there or write elsewhere (finished work is kept; rerun to resume)")
    if exc.errno == errno.ENAMETOOLONG:
        return UserError(f"{path}: {exc.strerror}; choose a shorter file name")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return UserError(f"{path}: {exc.strerror}; write somewhere you can write to")
    return UserError(f"{path}: cannot write ({exc.strerror or exc}); check the folder and the disk")


def mount_point(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    while not os.path.ismount(path):
        path = path.parent
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def read_text(path: Path, what: str = "file", *, follow: bool = True, limit: int = READ_LIMIT) -> str:
    """A UTF-8 file's text. Only a regular file is read (a FIFO, a device such as /dev/zero or a socket is refused
    instead of hanging or reading without end), and at most `limit` bytes. `follow=False`: a symbolic link is refused
    (files inside a run folder, which may come from someone else)."""
    data = read_bytes(path, what, follow=follow, limit=limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: cannot read {what} (not UTF-8 at byte {exc.start}); check its encoding") from None


def read_bytes(path: Path, what: str = "file", *, follow: bool = True, limit: int = READ_LIMIT) -> bytes:
    path = Path(path)
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise UserError(f"{path}: no such {what}; check the path") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow:
            raise UserError(f"{path} is a symbolic link; a run folder's {what} must be a plain file (delete the link "
                            "and rerun)") from None
        raise UserError(f"{path}: cannot read {what} ({exc.strerror}); check its permissions") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        if stat.S_ISDIR(st.st_mode):
            raise UserError(f"{path} is a folder; give the {what} itself")
        raise UserError(f"{path} is not a regular file (a FIFO, device or socket); give the {what} itself")
    if st.st_size > limit:
        os.close(fd)
        raise UserError(f"{path}: {st.st_size} bytes, over the {limit}-byte limit for a {what}; is this the right file?")
    os.set_blocking(fd, True)
    with os.fdopen(fd, "rb") as f:
        try:
            data = f.read(limit + 1)
        except OSError as exc:
            raise UserError(f"{path}: cannot read {what} ({exc.strerror}); check the file") from None
    if len(data) > limit:
        raise UserError(f"{path}: over the {limit}-byte limit for a {what} (it grew while read); is this the right file?")
    return data


def refuse_links(root: Path, path: Path) -> None:
    """Refuse a path inside the run folder `root` whose components below `root` include a symbolic link: a folder
    copied from someone else must not send our writes elsewhere (`records/` -> /etc, say)."""
    root, path = Path(root), Path(path)
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return
    here = root
    for part in parts:
        here = here / part
        if here.is_symlink():
            raise UserError(f"{here} is a symbolic link inside the run folder {root}; a run folder holds plain files "
                            "and folders only: remove the link (or use another --out)")


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
