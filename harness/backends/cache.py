"""Content-addressed generation cache in SQLite: a repeated request costs no forward pass.

Key = sha256 of (backend fingerprint, messages, sampling params with the seed), so a result is found again whatever
run, suite or process asked for it. Failed completions (`Completion.error`) are never stored.

Concurrency and safety: WAL journal (readers never block the writer), a busy timeout so concurrent writers wait instead
of failing, and every write batch in one `BEGIN IMMEDIATE` transaction, so a batch lands whole or not at all. A write
that fails (disk full, I/O error, lock held too long) is rolled back and logged; the completions are still returned and
the cache keeps its previous, readable content.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness.backends.base import ChatBackend, ChatRequest, ChoiceRequest, ChoiceScorer, Completion
from harness.errors import UserError
from harness.io import ensure_dir

log = logging.getLogger(__name__)

KEY_VERSION = 1
"""Bump when the meaning of a cached value changes; old entries then simply stop matching."""
_CHUNK = 500  # keys per SELECT (SQLite's default limit on bound parameters is far above this)


def with_cache(backend: ChatBackend, path: Path) -> CachedBackend:
    """Wrap `backend`; the wrapper is a ChoiceScorer exactly when the backend is one."""
    if isinstance(backend, ChoiceScorer):
        return CachedScoringBackend(backend, path)
    return CachedBackend(backend, path)


def request_key(fingerprint: str, request: ChatRequest) -> str:
    return _key({"kind": "chat", "fingerprint": fingerprint, "messages": [dict(m) for m in request.messages],
                 "params": asdict(request.params)})


def choice_key(fingerprint: str, request: ChoiceRequest) -> str:
    return _key({"kind": "choice", "fingerprint": fingerprint, "messages": [dict(m) for m in request.messages],
                 "choices": list(request.choices), "assistant_prefix": request.assistant_prefix})


class CachedBackend:
    """A ChatBackend that answers from the cache first and asks `inner` only for the requests it has not seen."""

    def __init__(self, inner: ChatBackend, path: Path, cache: GenerationCache | None = None) -> None:
        self.inner = inner
        self.name = inner.name
        self.cache = cache or GenerationCache(path)

    @property
    def fingerprint(self) -> str:
        return self.inner.fingerprint

    def generate(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        fp = self.fingerprint
        keys = [request_key(fp, r) for r in requests]
        found = {k: _completion_from(v) for k, v in self.cache.get_many(keys).items()}
        todo: dict[str, ChatRequest] = {}
        for key, request in zip(keys, requests, strict=True):
            if key not in found:
                todo.setdefault(key, request)  # identical requests in one batch are generated once
        fresh = dict(zip(todo, self.inner.generate(list(todo.values())), strict=True)) if todo else {}
        self.cache.put_many("chat", fp, ((k, _completion_value(c)) for k, c in fresh.items() if c.error is None))
        return [found[k] if k in found else fresh[k] for k in keys]


class CachedScoringBackend(CachedBackend):
    """CachedBackend for a backend that also scores choices; choice log-probs are cached the same way."""

    inner: Any

    def choice_logprobs(self, requests: Sequence[ChoiceRequest]) -> list[dict[str, float]]:
        fp = self.fingerprint
        keys = [choice_key(fp, r) for r in requests]
        found: dict[str, dict[str, float]] = self.cache.get_many(keys)
        todo: dict[str, ChoiceRequest] = {}
        for key, request in zip(keys, requests, strict=True):
            if key not in found:
                todo.setdefault(key, request)
        fresh = dict(zip(todo, self.inner.choice_logprobs(list(todo.values())), strict=True)) if todo else {}
        self.cache.put_many("choice", fp, fresh.items())
        return [found[k] if k in found else fresh[k] for k in keys]


class GenerationCache:
    """key -> JSON value table in one SQLite file. `connect` is injectable (tests simulate a full disk with it)."""

    def __init__(self, path: Path, connect: Callable[..., sqlite3.Connection] = sqlite3.connect,
                 timeout_s: float = 60.0) -> None:
        self.path = Path(path)
        self._connect_fn = connect
        self._timeout_s = timeout_s
        self._schema_ready = False

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        wanted = list(dict.fromkeys(keys))
        out: dict[str, Any] = {}
        if not wanted:
            return out
        try:
            with self._connection() as conn:
                for i in range(0, len(wanted), _CHUNK):
                    chunk = wanted[i : i + _CHUNK]
                    marks = ",".join("?" * len(chunk))
                    for key, value in conn.execute(f"SELECT key, value FROM entries WHERE key IN ({marks})", chunk):
                        out[key] = json.loads(value)
        except sqlite3.DatabaseError as exc:
            self._read_failed(exc)
        return out

    def put_many(self, kind: str, fingerprint: str, items: Iterable[tuple[str, Any]]) -> bool:
        """Store all items in one transaction; False (and a warning) when the write failed and was rolled back."""
        rows = [(k, kind, fingerprint, json.dumps(v, ensure_ascii=False), time.time()) for k, v in items]
        if not rows:
            return True
        try:
            with self._connection() as conn:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.executemany("INSERT OR REPLACE INTO entries (key, kind, fingerprint, value, created) "
                                     "VALUES (?, ?, ?, ?, ?)", rows)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
        except sqlite3.Error as exc:
            log.warning("generation cache %s: could not store %d results (%s); they are returned but not cached",
                        self.path, len(rows), exc)
            return False
        return True

    def __len__(self) -> int:
        with self._connection() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0])

    def _connection(self) -> _Closing:
        ensure_dir(self.path.parent)
        conn = self._connect_fn(str(self.path), timeout=self._timeout_s, isolation_level=None)
        if not self._schema_ready:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, kind TEXT NOT NULL, "
                             "fingerprint TEXT NOT NULL, value TEXT NOT NULL, created REAL NOT NULL)")
            except BaseException:
                conn.close()
                raise
            self._schema_ready = True
        conn.execute("PRAGMA synchronous=NORMAL")
        return _Closing(conn)

    def _read_failed(self, exc: sqlite3.DatabaseError) -> None:
        if "not a database" in str(exc) or "malformed" in str(exc):
            raise UserError(f"{self.path}: the generation cache is unreadable ({exc}); delete the file or pass --no-cache")
        log.warning("generation cache %s: read failed (%s); generating without it", self.path, exc)


class _Closing:
    """`with` support that closes the connection (sqlite3's own context manager only commits)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        return self.conn

    def __exit__(self, *exc: object) -> None:
        self.conn.close()


def _key(payload: dict[str, Any]) -> str:
    text = json.dumps({"v": KEY_VERSION, **payload}, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _completion_value(c: Completion) -> dict[str, Any]:
    return {"text": c.text, "prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens,
            "finish_reason": c.finish_reason, "top_logprobs": c.top_logprobs}


def _completion_from(value: dict[str, Any]) -> Completion:
    return Completion(text=value["text"], prompt_tokens=value["prompt_tokens"],
                      completion_tokens=value["completion_tokens"], finish_reason=value["finish_reason"],
                      top_logprobs=value.get("top_logprobs"), cached=True)
