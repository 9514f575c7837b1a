"""The content-addressed generation cache: hits cost no backend call, errors are not stored, concurrent writers are
safe, and a failing write (disk full) leaves a readable cache and still returns the results."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from harness.backends import load_backend
from harness.backends.base import BackendOptions, ChatRequest, ChoiceRequest, SamplingParams
from harness.backends.cache import CachedBackend, CachedScoringBackend, GenerationCache, request_key, with_cache
from harness.backends.fake import FAKE_ERROR, FakeBackend
from harness.errors import UserError
from harness.settings import Settings


def _ask(text: str, **params) -> ChatRequest:
    return ChatRequest(({"role": "user", "content": text},), SamplingParams(**params))


def test_repeat_costs_no_backend_call(tmp_path):
    fake = FakeBackend()
    cached = with_cache(fake, tmp_path / "c.sqlite")
    requests = [_ask(f"q{i}") for i in range(5)]
    first = cached.generate(requests)
    assert fake.calls == 5 and not any(c.cached for c in first)
    second = with_cache(fake, tmp_path / "c.sqlite").generate(requests)  # a new wrapper, same file: a new run
    assert fake.calls == 5 and all(c.cached for c in second)
    assert [c.text for c in second] == [c.text for c in first]
    assert [c.completion_tokens for c in second] == [c.completion_tokens for c in first]


def test_key_covers_fingerprint_messages_params_and_seed(tmp_path):
    base = _ask("q", temperature=0.7, seed=1)
    keys = {request_key("fp", base), request_key("fp2", base), request_key("fp", _ask("q2", temperature=0.7, seed=1)),
            request_key("fp", _ask("q", temperature=0.7, seed=2)), request_key("fp", _ask("q", temperature=0.8, seed=1)),
            request_key("fp", _ask("q", temperature=0.7, seed=1, max_new_tokens=7))}
    assert len(keys) == 6
    assert request_key("fp", base) == request_key("fp", _ask("q", temperature=0.7, seed=1))


def test_partial_hits_and_duplicates_in_one_batch(tmp_path):
    fake = FakeBackend()
    cached = with_cache(fake, tmp_path / "c.sqlite")
    cached.generate([_ask("a"), _ask("b")])
    out = cached.generate([_ask("a"), _ask("c"), _ask("c"), _ask("b", seed=9)])
    assert fake.calls == 2 + 2  # "c" once, ("b", seed 9) once; "a" from the cache
    assert [c.cached for c in out] == [True, False, False, False]
    assert out[1].text == out[2].text


def test_errors_are_never_cached(tmp_path):
    fake = FakeBackend()
    cached = with_cache(fake, tmp_path / "c.sqlite")
    bad = _ask(f"please {FAKE_ERROR}")
    first = cached.generate([bad, _ask("ok")])
    assert first[0].error and first[0].finish_reason == "error" and first[0].text == ""
    again = cached.generate([bad, _ask("ok")])
    assert fake.calls == 3 and again[0].error and not again[0].cached and again[1].cached
    assert len(cached.cache) == 1


def test_disk_full_on_write_returns_results_and_keeps_cache_readable(tmp_path, caplog):
    path = tmp_path / "c.sqlite"
    fake = FakeBackend()
    with_cache(fake, path).generate([_ask("kept")])

    def tiny_disk(*args, **kwargs):  # a real SQLITE_FULL: the database may not grow past its current pages
        conn = sqlite3.connect(*args, **kwargs)
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {max(pages, 1)}")
        return conn

    full = CachedBackend(fake, path, cache=GenerationCache(path, connect=tiny_disk))
    big = [_ask("x" * 5000 + str(i)) for i in range(20)]
    out = full.generate(big)
    assert len(out) == 20 and all(c.error is None and c.text for c in out)
    assert "could not store 20 results" in caplog.text and "full" in caplog.text
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    reopened = with_cache(FakeBackend(), path)
    assert reopened.generate([_ask("kept")])[0].cached  # the old content is intact
    assert len(reopened.cache) == 1  # the failed batch left nothing half-written


def test_operational_error_mid_write_is_rolled_back(tmp_path, caplog):
    path = tmp_path / "c.sqlite"

    class FailingConn:
        """Proxy whose bulk insert fails like an I/O error would."""

        def __init__(self, conn):
            self._conn = conn

        def executemany(self, *args):
            self._conn.executemany(*args)  # the rows go in, then the "disk" fails before COMMIT
            raise sqlite3.OperationalError("disk I/O error")

        def __getattr__(self, name):
            return getattr(self._conn, name)

    failing = GenerationCache(path, connect=lambda *a, **k: FailingConn(sqlite3.connect(*a, **k)))
    assert failing.put_many("chat", "fp", [("k1", {"text": "t"})]) is False
    assert "disk I/O error" in caplog.text
    assert GenerationCache(path).get_many(["k1"]) == {}  # rolled back, not half-written


def _writer(path: str, worker: int) -> None:
    backend = with_cache(FakeBackend(), Path(path))
    for batch in range(5):
        backend.generate([_ask(f"w{worker}-b{batch}-{i}") for i in range(4)] + [_ask("shared")])


def test_concurrent_writers(tmp_path):
    path = tmp_path / "c.sqlite"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(path), w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    assert len(GenerationCache(path)) == 4 * 5 * 4 + 1


def test_choice_logprobs_cached_only_for_scorers(tmp_path):
    fake = FakeBackend()
    cached = with_cache(fake, tmp_path / "c.sqlite")
    assert isinstance(cached, CachedScoringBackend)
    req = ChoiceRequest(({"role": "user", "content": "grade"},), ("1", "2", "3"), "Rating: [[")
    first = cached.choice_logprobs([req, req])
    assert cached.choice_logprobs([req]) == first[:1] and fake.choice_calls == 1

    class GenerateOnly:
        name = "plain"
        fingerprint = "plain"

        def generate(self, requests):
            return []

    assert not hasattr(with_cache(GenerateOnly(), tmp_path / "d.sqlite"), "choice_logprobs")


def test_load_backend_wraps_unless_no_cache(tmp_path):
    settings = Settings(home=tmp_path / "home", offline=True)
    cached = load_backend(BackendOptions(backend="fake"), settings)
    assert isinstance(cached, CachedBackend) and cached.fingerprint == "fake:fake"
    cached.generate([_ask("q")])
    assert settings.cache_db.exists()
    plain = load_backend(BackendOptions(backend="fake", use_cache=False), settings)
    assert isinstance(plain, FakeBackend)


def test_unknown_backend_suggests(tmp_path):
    with pytest.raises(UserError, match="unknown backend 'opnai'; did you mean 'openai'"):
        load_backend(BackendOptions(backend="opnai"), Settings(home=tmp_path, offline=True))


def test_corrupt_cache_file_is_a_user_error(tmp_path):
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(UserError, match="unreadable.*--no-cache"):
        with_cache(FakeBackend(), path).generate([_ask("q")])
