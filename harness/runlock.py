"""One writer per run directory: an advisory lock (fcntl) held by `eval` and `train-and-eval` for their whole run.

A second process on the same run stops with a one-line error naming the holder (pid, host, command, start time), or
waits for it with --wait. Holding the lock also makes it safe to sweep the temporary files (`.<name>.*.tmp`) that a
killed writer left behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from harness.errors import UserError
from harness.io import ensure_dir

LOCK_FILE = ".sppo-bench.lock"


@contextlib.contextmanager
def run_lock(root: Path, wait: bool = False, poll_s: float = 0.5) -> Iterator[None]:
    ensure_dir(root)
    path = root / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
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


def remove_stale_temporaries(root: Path) -> int:
    """Delete the `.<name>.<random>.tmp` files atomic writes leave when their process is killed (call under the lock)."""
    removed = 0
    for tmp in root.rglob(".*.tmp"):
        if tmp.is_file():
            with contextlib.suppress(OSError):
                tmp.unlink()
                removed += 1
    return removed


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return "holder unknown"
    return f"pid {info.get('pid')} on {info.get('host')}, `{info.get('command')}` since {info.get('started')}"
