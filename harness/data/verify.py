"""Data identity is the hash of the bytes read: every file a pulled folder's manifest lists is checked against the
sha256 recorded when it was pulled, whenever a unit keys or reads it.

Hashing is remembered per file by (path, size, mtime_ns, ctime_ns, inode) in SQLite, so a check costs a stat per file
once the files were hashed. ctime cannot be set by a user (an edit that restores mtime still moves it), so an edited
file is rehashed and refused with its path, the expected and the actual sha256.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path

from harness.data.manifest import Manifest, load_manifest
from harness.errors import UserError


def verified_identity(folder: Path, memo_db: Path | None) -> str | None:
    """The content identity of a pulled folder (or of a sub-folder of one) after checking every listed file's bytes
    against its manifest; None for a folder no manifest describes. UserError on the first mismatch."""
    for candidate in (folder, folder.parent):
        manifest = load_manifest(candidate)
        if manifest is not None:
            verify(candidate, manifest, memo_db)
            files = sorted((p.name, n, f.sha256) for p in manifest.parts for n, f in p.files.items())
            return hashlib.sha256(json.dumps([manifest.suite, files]).encode()).hexdigest()
    return None


def files_identity(folder: Path, memo_db: Path | None) -> str:
    """sha256 over the names and content hashes of a user mirror's data files (no manifest to check them against)."""
    memo = _Memo(memo_db)
    h = hashlib.sha256()
    try:
        for p in sorted(folder.rglob("*")):
            if p.is_file() and p.suffix in {".jsonl", ".json", ".csv", ".parquet", ".txt"}:
                h.update(f"{p.relative_to(folder)}:{memo.sha256(p)}\n".encode())
    finally:
        memo.close()
    return h.hexdigest()


def verify(folder: Path, manifest: Manifest, memo_db: Path | None) -> None:
    memo = _Memo(memo_db)
    try:
        for part in manifest.parts:
            for name, info in part.files.items():
                path = folder / name
                actual = memo.sha256(path)
                if actual != info.sha256:
                    raise UserError(f"{path}: sha256 {actual} does not match the {info.sha256} recorded when it was "
                                    f"pulled; the file changed after `data pull`: run `sppo-bench data pull --suites "
                                    f"{manifest.suite} --force` to restore it")
    finally:
        memo.close()


class _Memo:
    def __init__(self, db: Path | None) -> None:
        self.conn: sqlite3.Connection | None = None
        if db is None:
            return
        try:
            os.makedirs(db.parent, exist_ok=True)
            self.conn = sqlite3.connect(str(db), timeout=30, isolation_level=None)
            self.conn.execute("CREATE TABLE IF NOT EXISTS data_sha256 (key TEXT PRIMARY KEY, sha256 TEXT NOT NULL)")
        except sqlite3.Error:
            self.conn = None  # an unusable memo only costs a rehash

    def sha256(self, path: Path) -> str:
        try:
            st = path.stat()
        except OSError as exc:
            raise UserError(f"{path}: cannot read it ({exc.strerror}); run `sppo-bench data pull --force` for its "
                            "suite") from None
        key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}|{st.st_ino}"
        known = self._get(key)
        if known:
            return known
        h = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
        digest = h.hexdigest()
        self._put(key, digest)
        return digest

    def _get(self, key: str) -> str | None:
        if self.conn is None:
            return None
        try:
            row = self.conn.execute("SELECT sha256 FROM data_sha256 WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error:
            return None
        return str(row[0]) if row else None

    def _put(self, key: str, digest: str) -> None:
        if self.conn is None:
            return
        try:
            self.conn.execute("INSERT OR REPLACE INTO data_sha256 (key, sha256) VALUES (?, ?)", (key, digest))
        except sqlite3.Error:
            pass

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
