"""Model identity by content: one fingerprint of a checkpoint, used by the generation cache, the unit keys, lm-eval's
request cache, vLLM, SPPO's step keys, and written into every record (`provenance.checkpoint_sha256`).

The fingerprint is sha256 over every file that can change an output: the weights (whole files, not a sample of
bytes), the model and generation configs, the tokenizer files, and the chat template actually used (an override
given with --chat-template counts instead of the saved one). Two checkpoints differing anywhere in their weights get
different fingerprints; the same bytes at another path get the same one. Hashing a multi-GB checkpoint takes a while,
so each file's digest is remembered by (path, size, mtime, ctime, inode) in a small SQLite table under the cache home,
and a rerun reads only a sampled 6 MiB of each file to check the memo (see `_FileHashes`).

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


CHUNK = 1 << 20
SAMPLED_CHUNKS = 6
"""Chunks re-read on every cache hit: the first, the last and 4 seeded-random 1 MiB chunks (6 MiB per file)."""


class _FileHashes:
    """sha256 of whole files, remembered in SQLite so a rerun does not rehash a multi-GB checkpoint.

    The memo is keyed by (path, size, mtime_ns, ctime_ns, inode), as git's index is: an edit that restores the mtime
    with `os.utime` still moves the ctime, which only the kernel sets. On every hit a sampled set of 1 MiB chunks
    (first, last, and seeded-random ones, their digests stored when the file was hashed) is re-read and compared;
    a mismatch rehashes the whole file."""

    def __init__(self, db: Path | None) -> None:
        self.db = db

    def sha256(self, path: Path) -> str:
        st = path.stat()
        key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}|{st.st_ino}"
        known = self._get(key)
        if known is not None:
            digest, samples = known
            offsets = [int(o) for o in samples]
            if _chunk_digests(path, offsets) == samples:
                return digest
        digest = _whole_sha256(path)
        offsets = sample_offsets(st.st_size, digest)
        self._put(key, digest, _chunk_digests(path, offsets))
        return digest

    def _connect(self) -> sqlite3.Connection | None:
        if self.db is None:
            return None
        try:
            os.makedirs(self.db.parent, exist_ok=True)
            conn = sqlite3.connect(str(self.db), timeout=30, isolation_level=None)
            conn.execute("CREATE TABLE IF NOT EXISTS file_sha256_v2 (key TEXT PRIMARY KEY, sha256 TEXT NOT NULL, "
                         "samples TEXT NOT NULL)")
            return conn
        except sqlite3.Error:
            return None  # an unusable memo only costs a rehash

    def _get(self, key: str) -> tuple[str, dict[str, str]] | None:
        conn = self._connect()
        if conn is None:
            return None
        try:
            row = conn.execute("SELECT sha256, samples FROM file_sha256_v2 WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error:
            row = None
        finally:
            conn.close()
        if not row:
            return None
        try:
            samples = json.loads(row[1])
        except ValueError:
            return None
        return (str(row[0]), samples) if isinstance(samples, dict) and samples else None

    def _put(self, key: str, digest: str, samples: dict[str, str]) -> None:
        conn = self._connect()
        if conn is None:
            return
        try:
            conn.execute("INSERT OR REPLACE INTO file_sha256_v2 (key, sha256, samples) VALUES (?, ?, ?)",
                         (key, digest, json.dumps(samples)))
        except sqlite3.Error:
            pass
        finally:
            conn.close()


def sample_offsets(size: int, seed: str) -> list[int]:
    """Offsets of the chunks verified on a cache hit: first, last, and SAMPLED_CHUNKS - 2 drawn with a seed taken from
    the file's own digest (they differ from file to file, and an edit cannot know them from the path alone)."""
    import random

    n_chunks = max(1, -(-size // CHUNK))
    picked = {0, n_chunks - 1}
    rng = random.Random(seed)
    while len(picked) < min(SAMPLED_CHUNKS, n_chunks):
        picked.add(rng.randrange(n_chunks))
    return sorted(c * CHUNK for c in picked)


def _chunk_digests(path: Path, offsets: list[int]) -> dict[str, str]:
    out = {}
    try:
        with path.open("rb") as f:
            for offset in offsets:
                f.seek(offset)
                out[str(offset)] = hashlib.sha256(f.read(CHUNK)).hexdigest()
    except OSError:
        return {}
    return out


def _whole_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()
