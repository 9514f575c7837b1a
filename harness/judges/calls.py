"""Running judge calls: content-addressed cache, bounded concurrency (the backend's), fail-fast when the endpoint is down.

Cache key = sha256(judge id, prompt hash, judge backend fingerprint, the task's inputs), stored in the shared SQLite
cache (`harness.backends.cache.GenerationCache`, kind "judge") under settings.home, so a rerun costs no calls. A task
whose result carries an `error` is never cached: a rerun tries it again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.backends.base import ChoiceRequest, ChoiceScorer
from harness.errors import UserError

Result = dict[str, Any]
"""JSON-able per-task outcome; `error` set (str) means the task failed for good this run."""


@dataclass(frozen=True)
class JudgeCache:
    path: Path | None
    namespace: str
    """judge id + prompt hash + backend fingerprint: part of every key."""

    def key(self, inputs: Any) -> str:
        text = json.dumps([self.namespace, inputs], sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def get_many(self, keys: Sequence[str]) -> dict[str, Result]:
        if self.path is None:
            return {}
        from harness.backends.cache import GenerationCache

        return GenerationCache(self.path).get_many(keys)

    def put_many(self, items: Sequence[tuple[str, Result]]) -> None:
        if self.path is None or not items:
            return
        from harness.backends.cache import GenerationCache

        GenerationCache(self.path).put_many("judge", self.namespace, items)


def cache_namespace(judge_id: str, prompt_hash: str, fingerprint: str) -> str:
    return f"{judge_id}|{prompt_hash}|{fingerprint}"


class EndpointDown(UserError):
    """The judge endpoint failed every call in a row: stop, keep what finished."""


def run_batched(tasks: Sequence[Any], inputs: Callable[[Any], Any], step: Callable[[list[Any]], list[Result]],
                cache: JudgeCache, concurrency: int, endpoint: str) -> list[Result]:
    """Run `step(chunk)` over the tasks not in the cache, in chunks of 32 x `concurrency` (the backend keeps up to
    `concurrency` requests in flight inside a chunk), caching each chunk's successes before the next one starts.

    A chunk in which every task failed means the endpoint is down (or refuses us): stop there with EndpointDown naming
    the URL and the last error; everything finished so far is already cached, so a rerun resumes.
    """
    keys = [cache.key(inputs(t)) for t in tasks]
    found = cache.get_many(keys)
    out: dict[str, Result] = {k: dict(v, cached=True) for k, v in found.items()}
    todo = list({k: t for k, t in zip(keys, tasks, strict=True) if k not in out}.items())
    size = 32 * max(1, concurrency)  # big enough that per-batch client setup is amortised
    for start in range(0, len(todo), size):
        chunk = todo[start : start + size]
        results = step([t for _, t in chunk])
        cache.put_many([(k, r) for (k, _), r in zip(chunk, results, strict=True) if not r.get("error")])
        for (k, _), r in zip(chunk, results, strict=True):
            out[k] = dict(r, cached=False)
        errors = [str(r["error"]) for r in results if r.get("error")]
        if errors and len(errors) == len(results):
            done = sum(1 for r in out.values() if not r.get("error"))
            raise EndpointDown(f"judge endpoint {endpoint} failed all {len(results)} calls of a batch (last: "
                               f"{errors[-1][:200]}); {done} finished judgments are kept in the cache: check the "
                               "endpoint and key, then rerun to resume")
    return [out[k] for k in keys]


def probe(endpoint: str, timeout_s: float = 5.0) -> None:
    """Fail fast when nothing listens at the endpoint's host:port (before any judging starts)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(endpoint)
    if not parts.hostname:
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout_s).close()
    except OSError as exc:
        raise EndpointDown(f"judge endpoint {endpoint} is unreachable ({exc.__class__.__name__}: {exc}); start it or "
                           "point the judge at the right URL, then rerun") from None


def run_choices(scorer: ChoiceScorer, requests: Sequence[ChoiceRequest], inputs: Sequence[Any], cache: JudgeCache,
                batch_size: int = 8) -> list[dict[str, float]]:
    """Choice log-probabilities for each request, from the cache or the scorer in chunks of `CHUNK` x `batch_size`;
    cached per request (by content) after each chunk. The requests not cached are sorted by prompt length first, so
    that the scorer's batches (which it sorts by length only within a chunk) hold prompts of similar length and
    little padding: judge prompts holding two long answers differ in length by thousands of tokens."""
    keys = [cache.key(i) for i in inputs]
    found = cache.get_many(keys)
    todo = [(k, r) for k, r in zip(keys, requests, strict=True) if k not in found]
    unique = dict(todo)
    items = sorted(unique.items(), key=lambda item: _prompt_chars(item[1]))
    size = CHUNK * max(1, batch_size)
    for start in range(0, len(items), size):
        chunk = items[start : start + size]
        scores = scorer.choice_logprobs([r for _, r in chunk])
        fresh = [(k, {"logprobs": s}) for (k, _), s in zip(chunk, scores, strict=True)]
        cache.put_many(fresh)
        found.update(dict(fresh))
    return [dict(found[k]["logprobs"]) for k in keys]


CHUNK = 4
"""Scorer batches per run_choices call: enough to sort by length, few enough that an interruption loses little."""


def _prompt_chars(request: ChoiceRequest) -> int:
    return sum(len(m["content"]) for m in request.messages) + len(request.assistant_prefix)
