"""Model identity by content: one fingerprint of a checkpoint, used by the generation cache, the unit keys, lm-eval's
request cache, vLLM, SPPO's step keys, and written into every record (`provenance.checkpoint_sha256`).

The fingerprint is sha256 over every file that can change an output: the weights (whole files, not a sample of
bytes), the model and generation configs, the tokenizer files, and the chat template actually used (an override
given with --chat-template counts instead of the saved one). Two checkpoints differing anywhere in their weights get
different fingerprints; the same bytes at another path get the same one. Hashing a multi-GB checkpoint takes a while,
so each file's digest is remembered by (path, size, mtime, inode) in a small SQLite table under the cache home, and a
rerun does not read the weights again.

A hub id is identified by the files of its snapshot in the local Hugging Face cache when they are there; otherwise
only by its id and revision (said in `Identity.kind`), which is weaker and recorded as such.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

VERSION = 2
LOADER_KEYS = frozenset({"local_files_only", "cache_dir", "force_download", "token", "use_auth_token", "proxies",
                         "revision", "subfolder", "_commit_hash"})
"""Keys `save_pretrained` copies from the loading call into tokenizer_config.json (e.g. `local_files_only` when the
hub was offline); they cannot change an output, so the fingerprint leaves them out (v2)."""
WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.pt", "*.gguf", "model.safetensors.index.json",
                   "pytorch_model.bin.index.json")
CONFIG_FILES = ("config.json", "generation_config.json")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt",
                   "tokenizer.model", "added_tokens.json", "chat_template.jinja", "chat_template.json")


@dataclass(frozen=True)
class Identity:
    sha256: str
    """The fingerprint (64 hex digits)."""
    kind: str
    """"content" (files hashed) or "hub-id" (only the id and revision were available)."""
    files: int = 0

    @property
    def short(self) -> str:
        return self.sha256[:12]


def fingerprint(source: str | Path, chat_template: str | None = None, cache_db: Path | None = None) -> str:
    """The content fingerprint of a local checkpoint folder or hub id (see `identify`)."""
    return identify(source, chat_template, cache_db).sha256


def identify(source: str | Path, chat_template: str | None = None, cache_db: Path | None = None) -> Identity:
    local: Path | None = Path(source).expanduser()
    if local is None or not local.is_dir():
        local, revision = _hub_snapshot(str(source))
        if local is None:
            payload = {"v": VERSION, "hub": str(source), "revision": revision, "chat_template": chat_template}
            return Identity(_digest(payload), "hub-id")
    files = checkpoint_files(local)
    hashes = _FileHashes(cache_db)
    payload = {"v": VERSION, "files": [[f.name, _file_digest(f, hashes)] for f in files], "chat_template": chat_template}
    return Identity(_digest(payload), "content", len(files))


def _file_digest(path: Path, hashes: _FileHashes) -> str:
    """sha256 of the file; for tokenizer_config.json, of its JSON without the loader-only keys."""
    if path.name == "tokenizer_config.json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return hashes.sha256(path)  # not JSON: its bytes are its identity
        if isinstance(data, dict):
            return _digest({k: v for k, v in data.items() if k not in LOADER_KEYS})
    return hashes.sha256(path)


def checkpoint_files(folder: Path) -> list[Path]:
    """The files of a checkpoint folder that change outputs, in name order (sub-folders are not part of a model)."""
    picked = {p for pattern in WEIGHT_PATTERNS for p in folder.glob(pattern) if p.is_file()}
    picked |= {folder / n for n in (*CONFIG_FILES, *TOKENIZER_FILES) if (folder / n).is_file()}
    return sorted(picked, key=lambda p: p.name)


def _hub_snapshot(repo_id: str) -> tuple[Path | None, str | None]:
    """The local snapshot folder of a hub model (no download), and its revision."""
    try:
        from huggingface_hub import snapshot_download

        path = Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # not cached, not a valid id, offline: identified by id only
        return None, None
    return path, path.name


def _digest(payload: object) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()


class _FileHashes:
    """sha256 of whole files, remembered by (path, size, mtime_ns, inode) in SQLite so a rerun does not rehash."""

    def __init__(self, db: Path | None) -> None:
        self.db = db

    def sha256(self, path: Path) -> str:
        st = path.stat()
        key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}"
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

    def _connect(self) -> sqlite3.Connection | None:
        if self.db is None:
            return None
        try:
            os.makedirs(self.db.parent, exist_ok=True)
            conn = sqlite3.connect(str(self.db), timeout=30, isolation_level=None)
            conn.execute("CREATE TABLE IF NOT EXISTS file_sha256 (key TEXT PRIMARY KEY, sha256 TEXT NOT NULL)")
            return conn
        except sqlite3.Error:
            return None  # an unusable memo only costs a rehash

    def _get(self, key: str) -> str | None:
        conn = self._connect()
        if conn is None:
            return None
        try:
            row = conn.execute("SELECT sha256 FROM file_sha256 WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error:
            row = None
        finally:
            conn.close()
        return str(row[0]) if row else None

    def _put(self, key: str, digest: str) -> None:
        conn = self._connect()
        if conn is None:
            return
        try:
            conn.execute("INSERT OR REPLACE INTO file_sha256 (key, sha256) VALUES (?, ?)", (key, digest))
        except sqlite3.Error:
            pass
        finally:
            conn.close()
