"""One writer per run directory: an advisory lock (fcntl) held by `eval` and `train-and-eval` for their whole run.

A second process on the same run stops with a one-line error naming the holder (pid, host, command, start time), or
waits for it with --wait. Holding the lock also makes it safe to sweep the temporary files (`.<name>.*.tmp`) that a
killed writer left behind: only ours (`.<name>.sppo-<random>.tmp`, harness.io), never a user's own `.x.tmp`.

A run folder may come from someone else, so the lock file is opened without following a symbolic link: a lock that
is a link (to any file the user can write) is refused instead of truncating the link's target.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from harness.errors import UserError
from harness.io import TMP_MARK, ensure_dir, read_text

LOCK_FILE = ".sppo-bench.lock"


@contextlib.contextmanager
def run_lock(root: Path, wait: bool = False, poll_s: float = 0.5) -> Iterator[None]:
    ensure_dir(root)
    path = root / LOCK_FILE
    fd = _open_lock(path)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not wait:
                    raise UserError(f"{root} is in use by another sppo-bench process ({_holder(path)}); wait for it "
                                    "to finish, pass --wait to queue behind it, or use another --out") from None
                time.sleep(poll_s)
        info = {"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join(sys.argv[:4]),
                "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        remove_stale_temporaries(root)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _open_lock(path: Path) -> int:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UserError(f"{path} is a symbolic link; a run folder's lock must be a plain file: delete the link (it "
                            "may point at a file of yours) or use another --out") from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise UserError(f"{path} is not a plain file (a FIFO or device); delete it or use another --out")
    return fd


def remove_stale_temporaries(root: Path) -> int:
    """Delete the `.<name>.sppo-<random>.tmp` files atomic writes leave when their process is killed (call under the
    lock). Symbolic links are neither followed nor deleted; other hidden `.tmp` files are the user's and stay."""
    removed = 0
    for folder, _dirs, files in os.walk(root, followlinks=False):
        for name in files:
            if not (name.startswith(".") and TMP_MARK in name and name.endswith(".tmp")):
                continue
            tmp = Path(folder) / name
            with contextlib.suppress(OSError):
                if stat.S_ISREG(tmp.lstat().st_mode):
                    tmp.unlink()
                    removed += 1
    return removed


def _holder(path: Path) -> str:
    try:
        info = json.loads(read_text(path, "lock file", follow=False, limit=1 << 16) or "{}")
    except (OSError, ValueError, UserError):
        return "holder unknown"
    if not isinstance(info, dict):
        return "holder unknown"
    return f"pid {info.get('pid')} on {info.get('host')}, `{info.get('command')}` since {info.get('started')}"
