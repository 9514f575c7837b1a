"""Any OpenAI-compatible `/chat/completions` endpoint (OpenAI, vLLM serve, TGI, llama.cpp server, ...), through the
`openai` SDK's `AsyncOpenAI`.

What the SDK does (read in its source, openai 3.57 over httpx2): sends the request with the key as a Bearer header,
gives every attempt `timeout` seconds, and retries timeouts, dropped connections, 408/409/429 and 5xx up to
`max_retries` times. Before a retry it waits what the server asked for in `retry-after-ms` or `Retry-After` (seconds
or an HTTP date) when that is 0-120 s (a longer ask is not retried), else 0.5 s x 2^n capped at 8 s, less up to 25 %.
Other 4xx are not retried. We call `AsyncOpenAI.post`, its call for any endpoint: `chat.completions.create` would walk
its parameter types for every request, ~2 ms of CPU that changes nothing in a plain JSON body.

What we add:
- at most `max_concurrency` HTTP exchanges in flight: a semaphore in the HTTP transport, so the SDK's waits between
  retries hold no slot;
- every wait between retries stretched by a random 0-50 % from our own RNG, seeded by the OS on every call: the SDK's
  jitter comes from the global `random`, which lm-eval and transformers seed alike in every worker, and it adds none
  to a server's Retry-After, so without ours workers would retry in lockstep. Never shorter than the server asked;
- a 200 whose body is not a chat completion (truncated, not JSON, no choices) turns into a 502 in the transport, so
  the SDK retries it like any bad gateway;
- a request that still fails comes back as `Completion(error=..., finish_reason="error")`, never as fake text; so does
  a 4xx the SDK does not retry (a 400 for one over-long prompt concerns that prompt only);
- 401/403/404 mean the key, URL or model is wrong for every request: a UserError stops the run, nothing retried; so
  does a 400/422 that quotes the requested model id (transformers serve refuses a model it is not pinned to that way),
  and a response without log-probabilities to a request that asked for them (the endpoint never gives them);
- the key is read from the env var the user names (none: no Authorization header) and redacted from every message we
  produce (error bodies are quoted, and some servers echo the Authorization header in them);
- stop sequences cut the text also for servers that ignore `stop`; top log-probabilities come back as one
  {token: logprob} dict per generated token.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import math
import os
import random
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

from pydantic import BaseModel, Field, ValidationError

from harness.backends.base import BackendOptions, ChatRequest, Completion
from harness.errors import UserError

if TYPE_CHECKING:
    import httpx2

T = TypeVar("T")

DEFAULT_BASE_URL = "https://api.openai.com/v1"
OPTIONS = {"timeout": "seconds per attempt (default 120)", "max_retries": "retries after the first attempt (default 6)"}
FATAL_STATUS = {401: "the endpoint rejected the API key", 403: "the API key may not use this model",
                404: "no such endpoint or model"}
JITTER = 0.5
"""Each wait between retries is stretched by a uniform random fraction in [0, JITTER)."""
_MALFORMED = "x-sppo-bench-malformed"  # marks the 502 our transport makes of a 200 that is not a chat completion


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
    timeout_s, max_retries = _settings(options.extra)
    return OpenAIBackend(base_url, options.model, api_key, max_concurrency=options.max_concurrency,
                         timeout_s=timeout_s, max_retries=max_retries)


def _settings(extra: dict[str, str]) -> tuple[float, int]:
    unknown = sorted(set(extra) - set(OPTIONS))
    if unknown:
        known = "; ".join(f"{k}: {v}" for k, v in OPTIONS.items())
        raise UserError(f"openai backend option {', '.join(map(repr, unknown))} is unknown; the options are {known}")
    try:
        timeout_s, max_retries = float(extra.get("timeout", 120.0)), int(extra.get("max_retries", 6))
    except ValueError as exc:
        raise UserError(f"openai backend options {extra}: {exc}; give numbers") from None
    if not (math.isfinite(timeout_s) and timeout_s > 0) or max_retries < 0:
        raise UserError(f"openai backend options {extra}: timeout must be a positive number of seconds and "
                        "max_retries a whole number >= 0")
    return timeout_s, max_retries


class OpenAIBackend:
    name = "openai"

    def __init__(self, base_url: str, model: str, api_key: str | None, *, max_concurrency: int = 8,
                 timeout_s: float = 120.0, max_retries: int = 6) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._api_key = api_key
        self.max_concurrency = max(1, max_concurrency)
        self.timeout_s = timeout_s
        self.max_retries = max_retries

    def __repr__(self) -> str:  # never show the key
        return f"OpenAIBackend({self.base_url!r}, {self.model!r})"

    @property
    def fingerprint(self) -> str:
        return f"openai:{self.model}:{hashlib.sha256(self.base_url.encode()).hexdigest()[:12]}"

    def generate(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        return _run_sync(self.agenerate(requests))

    async def agenerate(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        async with _client(self) as client:
            tasks = [asyncio.ensure_future(self._complete(client, r)) for r in requests]
            try:
                return list(await asyncio.gather(*tasks))
            finally:  # after a UserError: stop the other requests before the client closes under them
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _complete(self, client: Any, request: ChatRequest) -> Completion:
        import openai
        from openai.types.chat import ChatCompletion

        try:
            response = await client.post("/chat/completions", cast_to=ChatCompletion, body=self._body(request),
                                         options=self._options())
        except openai.APIStatusError as exc:
            if exc.status_code in FATAL_STATUS:
                raise UserError(self._redact(
                    f"{self.base_url}/chat/completions: HTTP {exc.status_code}, {FATAL_STATUS[exc.status_code]} "
                    f"({_snippet(exc.response.text)}); check --base-url, --model and the key's variable")) from None
            if exc.status_code in (400, 422) and _names_model(exc.response.text, self.model):
                raise UserError(self._redact(
                    f"{self.base_url}/chat/completions: model {self.model!r} is not served there (HTTP "
                    f"{exc.status_code}: {_snippet(exc.response.text)}); check --model / --judge-model")) from None
            if exc.response.headers.get(_MALFORMED):
                problem = f"malformed response body ({exc.response.json()['error']['message']})"
            else:
                problem = f"HTTP {exc.status_code}: {_snippet(exc.response.text)}"
            return _failed(self._redact(_after_attempts(exc.response.request, problem)))
        except openai.APITimeoutError as exc:
            return _failed(_after_attempts(exc.request, f"timed out after {self.timeout_s:g} s"))
        except openai.APIConnectionError as exc:
            cause = exc.__cause__
            problem = f"connection failed ({cause.__class__.__name__}: {cause})" if cause else "connection failed"
            return _failed(self._redact(_after_attempts(exc.request, problem)))
        if request.params.top_logprobs and not _has_logprobs(response):
            raise UserError(f"{self.base_url}/chat/completions returns no log-probabilities (asked for top_logprobs="
                            f"{request.params.top_logprobs}); a judge that reads its verdict from them (the official "
                            "AlpacaEval judge) cannot run there: serve it where logprobs are returned (vLLM, OpenAI) "
                            "or use --judge local")
        return _completion(response, request)

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

    def _options(self) -> dict[str, Any]:
        import openai

        return {} if self._api_key else {"headers": {"Authorization": openai.Omit()}}  # keyless server: send none

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key else text


def _client(backend: OpenAIBackend) -> Any:
    """An AsyncOpenAI (close it: `async with`) over our transport, with our jitter on the SDK's retry waits."""
    import httpx2  # the SDK's HTTP library
    import openai

    class Client(openai.AsyncOpenAI):
        def _calculate_retry_timeout(self, *args: Any, **kwargs: Any) -> float:
            return float(super()._calculate_retry_timeout(*args, **kwargs)) * (1 + JITTER * rng.random())

    rng = random.Random()  # seeded from os.urandom: differs per call, process and machine
    limits = httpx2.Limits(max_connections=None, max_keepalive_connections=backend.max_concurrency)  # slots bound it
    transport = _Transport(httpx2.AsyncHTTPTransport(limits=limits), backend.max_concurrency)
    http_client = httpx2.AsyncClient(transport=cast("httpx2.AsyncBaseTransport", transport), follow_redirects=True)
    return Client(api_key=backend._api_key or "no-key", base_url=backend.base_url, timeout=backend.timeout_s,
                  max_retries=backend.max_retries, http_client=http_client)


class _Transport:
    """An httpx2 transport around the real one: at most `slots` exchanges in flight (body read included); a 200 that
    is not a chat completion becomes a 502 Bad Gateway marked `_MALFORMED`, which the SDK retries."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, slots: int) -> None:
        self._inner = inner
        self._slots = asyncio.Semaphore(slots)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        import httpx2

        async with self._slots:
            response = await self._inner.handle_async_request(request)
            try:
                content = await response.aread()
            finally:
                await response.aclose()
        if response.status_code == 200:
            try:
                _Body.model_validate_json(content)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(map(str, first["loc"])) or "body"
                return httpx2.Response(502, headers={_MALFORMED: "1"}, request=request,
                                      json={"error": {"message": f"{where}: {first['msg']}"}})
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


# What we read from a response body (the SDK builds its objects without checking types).
class _TopLogprob(BaseModel):
    token: str
    logprob: float


class _TokenLogprobs(BaseModel):
    top_logprobs: list[_TopLogprob]


class _Logprobs(BaseModel):
    content: list[_TokenLogprobs] | None = None


class _Message(BaseModel):
    content: str | None = None


class _Choice(BaseModel):
    message: _Message
    finish_reason: str | None = None
    logprobs: _Logprobs | None = None


class _Usage(BaseModel):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class _Body(BaseModel):
    choices: list[_Choice] = Field(min_length=1)
    usage: _Usage | None = None


def _completion(response: Any, request: ChatRequest) -> Completion:
    choice, usage = response.choices[0], response.usage
    text = choice.message.content or ""
    top = None
    if request.params.top_logprobs:
        items = (choice.logprobs.content if choice.logprobs else None) or []
        top = [{t.token: float(t.logprob) for t in item.top_logprobs} for item in items]
    finish = "length" if choice.finish_reason == "length" else "stop"
    cut = min((text.index(s) for s in request.params.stop if s and s in text), default=None)
    if cut is not None:  # servers that ignore `stop` (or echo it) still get the vLLM/OpenAI semantics
        text, finish = text[:cut], "stop"
    return Completion(text=text, prompt_tokens=int(usage and usage.prompt_tokens or 0),
                      completion_tokens=int(usage and usage.completion_tokens or 0), finish_reason=finish,
                      top_logprobs=top)


def _names_model(body: str, model: str) -> bool:
    """A 400/422 whose body quotes the requested model names it as the problem (transformers serve: "Server is pinned
    to 'X'; requested 'Y'"); a 400 about one prompt (too long, ...) does not quote the model id."""
    return any(f"{q}{model}{q}" in body for q in ("'", '"', "`"))


def _has_logprobs(response: Any) -> bool:
    logprobs = response.choices[0].logprobs
    return bool(logprobs and logprobs.content)


def _after_attempts(request: Any, problem: str) -> str:
    """`problem`, saying how many attempts were made (the SDK numbers each one in a request header)."""
    retries = request.headers.get("x-stainless-retry-count") if request is not None else None
    return f"gave up after {int(retries) + 1} attempts: {problem}" if retries and int(retries) > 0 else problem


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
