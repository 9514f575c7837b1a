"""Any OpenAI-compatible `/chat/completions` endpoint (OpenAI, vLLM serve, TGI, llama.cpp server, ...).

Plain httpx rather than the openai SDK: one small retry loop that we own gives the same behaviour against every
compatible server (the SDK's retries, backoff caps and error types differ by version), lets a malformed body be retried
and then recorded as an error instead of raising, and keeps the dependency to httpx, which the project already lists.

- asyncio with at most `max_concurrency` requests in flight (a semaphore; backoff sleeps do not hold a slot);
- retries on 408/409/429/5xx, timeouts, dropped connections and malformed bodies: exponential backoff with jitter,
  never shorter than the server's Retry-After / retry-after-ms;
- a request that still fails comes back as `Completion(error=..., finish_reason="error")`, never as fake text;
  401/403/404 mean the key, URL or model is wrong for every request, so they stop the run with a UserError;
- the API key is read from the env var the user names, sent only in the Authorization header and redacted from every
  message we produce.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import email.utils
import hashlib
import json
import logging
import os
import random
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from harness.backends.base import BackendOptions, ChatRequest, Completion
from harness.errors import UserError

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_BASE_URL = "https://api.openai.com/v1"
RETRY_STATUS = frozenset({408, 409, 429})
FATAL_STATUS = {401: "the endpoint rejected the API key", 403: "the API key may not use this model",
                404: "no such endpoint or model"}


def build(options: BackendOptions) -> OpenAIBackend:
    base_url = (options.base_url or DEFAULT_BASE_URL).rstrip("/")
    if not options.model:
        raise UserError(f"the openai backend needs --model NAME (the model id served at {base_url})")
    api_key = None
    if options.api_key_env:
        api_key = os.environ.get(options.api_key_env)
        if not api_key:
            raise UserError(f"environment variable {options.api_key_env} is not set; export it with the API key for "
                            f"{base_url} (or name another variable with --api-key-env)")
    extra = options.extra
    try:
        retry = RetryPolicy(max_retries=int(extra.get("max_retries", 6)), base_s=float(extra.get("retry_base", 0.5)),
                            cap_s=float(extra.get("retry_cap", 30.0)))
        timeout_s = float(extra.get("timeout", 120.0))
    except ValueError as exc:
        raise UserError(f"openai backend options {extra}: {exc}; give numbers") from None
    return OpenAIBackend(base_url, options.model, api_key, max_concurrency=options.max_concurrency,
                         timeout_s=timeout_s, retry=retry)


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 6
    base_s: float = 0.5
    cap_s: float = 30.0
    max_retry_after_s: float = 300.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Equal-jitter exponential backoff, but never shorter than what the server asked for."""
        backoff = min(self.cap_s, self.base_s * 2**attempt)
        wait = rng.uniform(backoff / 2, backoff)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_retry_after_s))
        return wait


class OpenAIBackend:
    name = "openai"

    def __init__(self, base_url: str, model: str, api_key: str | None, *, max_concurrency: int = 8,
                 timeout_s: float = 120.0, retry: RetryPolicy = RetryPolicy(), seed: int = 0) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._api_key = api_key
        self.max_concurrency = max(1, max_concurrency)
        self.timeout_s = timeout_s
        self.retry = retry
        self.seed = seed

    def __repr__(self) -> str:  # never show the key
        return f"OpenAIBackend({self.base_url!r}, {self.model!r})"

    @property
    def fingerprint(self) -> str:
        return f"openai:{self.model}:{hashlib.sha256(self.base_url.encode()).hexdigest()[:12]}"

    def generate(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        return _run_sync(self.agenerate(requests))

    async def agenerate(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        import httpx

        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        slots = asyncio.Semaphore(self.max_concurrency)
        rng = random.Random(self.seed)  # jitter only; seeded so a run's schedule is reproducible
        limits = httpx.Limits(max_connections=self.max_concurrency, max_keepalive_connections=self.max_concurrency)
        async with httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(self.timeout_s), limits=limits) as client:
            return list(await asyncio.gather(*(self._complete(client, slots, rng, r) for r in requests)))

    async def _complete(self, client: Any, slots: asyncio.Semaphore, rng: random.Random,
                        request: ChatRequest) -> Completion:
        import httpx

        url = f"{self.base_url}/chat/completions"
        body = self._body(request)
        problem = "no attempt made"
        for attempt in range(self.retry.max_retries + 1):
            retry_after = None
            async with slots:
                try:
                    response = await client.post(url, json=body)
                except httpx.TimeoutException as exc:
                    problem = f"timed out after {self.timeout_s:g} s ({exc.__class__.__name__})"
                except httpx.TransportError as exc:
                    problem = f"connection failed ({exc.__class__.__name__}: {exc})"
                else:
                    status = response.status_code
                    if status == 200:
                        try:
                            return _parse(response.content, request)
                        except _Malformed as exc:
                            problem = f"malformed response body ({exc})"
                    elif status in FATAL_STATUS:
                        raise UserError(self._redact(f"{url}: HTTP {status}, {FATAL_STATUS[status]} "
                                                     f"({_snippet(response.text)}); check --base-url, --model and the "
                                                     "key's variable"))
                    elif status in RETRY_STATUS or status >= 500:
                        problem = f"HTTP {status}: {_snippet(response.text)}"
                        retry_after = _retry_after(response.headers)
                    else:
                        return _failed(self._redact(f"HTTP {status}: {_snippet(response.text)}"))
            if attempt < self.retry.max_retries:
                wait = self.retry.delay(attempt, retry_after, rng)
                log.info("%s: %s; retry %d in %.2f s", url, self._redact(problem), attempt + 1, wait)
                await asyncio.sleep(wait)
        return _failed(self._redact(f"gave up after {self.retry.max_retries + 1} attempts: {problem}"))

    def _body(self, request: ChatRequest) -> dict[str, Any]:
        p = request.params
        body: dict[str, Any] = {"model": self.model, "messages": [dict(m) for m in request.messages],
                                "temperature": p.temperature, "top_p": p.top_p, "max_tokens": p.max_new_tokens,
                                "seed": p.seed}
        if p.stop:
            body["stop"] = list(p.stop)
        if p.top_logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = p.top_logprobs
        return body

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key else text


class _Malformed(Exception):
    pass


def _parse(content: bytes, request: ChatRequest) -> Completion:
    try:
        data = json.loads(content)
        choice = data["choices"][0]
        text = choice["message"].get("content") or ""
        if not isinstance(text, str):
            raise TypeError(f"message content is {type(text).__name__}")
        usage = data.get("usage") or {}
        top = None
        if request.params.top_logprobs:
            items = (choice.get("logprobs") or {}).get("content") or []
            top = [{t["token"]: float(t["logprob"]) for t in item["top_logprobs"]} for item in items]
        prompt_tokens, completion_tokens = int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise _Malformed(f"{exc.__class__.__name__}: {_snippet(str(exc))}") from None
    finish = "length" if choice.get("finish_reason") == "length" else "stop"
    cut = min((text.index(s) for s in request.params.stop if s and s in text), default=None)
    if cut is not None:  # servers that ignore `stop` (or echo it) still get the vLLM/OpenAI semantics
        text, finish = text[:cut], "stop"
    return Completion(text=text, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                      finish_reason=finish, top_logprobs=top)


def _retry_after(headers: Any) -> float | None:
    """Seconds from `retry-after-ms`, `Retry-After: <seconds>` or `Retry-After: <HTTP date>`; None if absent/garbled."""
    try:
        if "retry-after-ms" in headers:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
    except (ValueError, TypeError):
        return None


def _failed(error: str) -> Completion:
    return Completion(text="", prompt_tokens=0, completion_tokens=0, finish_reason="error", error=error)


def _snippet(text: str, limit: int = 200) -> str:
    return " ".join(text.split())[:limit] or "(empty body)"


def _run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """asyncio.run, also when the caller already runs an event loop (notebooks): then in a worker thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()
