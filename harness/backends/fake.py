"""A deterministic backend for plumbing tests only: no model, text derived from a hash of the request.

The same request (messages, temperature, top_p, seed) always gives the same text, cut by max_new_tokens and stop
strings; a different seed gives a different text. A message containing `FAKE_ERROR` yields a failed completion, so error paths can be exercised.
`calls` counts the requests that reached the backend (the cache tests use it to prove a hit costs nothing).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence

from harness.backends.base import BackendOptions, ChatRequest, ChoiceRequest, Completion

FAKE_ERROR = "[[fake-error]]"
_WORDS = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu")


def build(options: BackendOptions) -> FakeBackend:
    return FakeBackend(options.model or "fake")


class FakeBackend:
    name = "fake"

    def __init__(self, model: str = "fake") -> None:
        self.model = model
        self.calls = 0
        self.choice_calls = 0

    @property
    def fingerprint(self) -> str:
        return f"fake:{self.model}"

    def generate(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        self.calls += len(requests)
        return [self._complete(r) for r in requests]

    def choice_logprobs(self, requests: Sequence[ChoiceRequest]) -> list[dict[str, float]]:
        self.choice_calls += len(requests)
        out = []
        for r in requests:
            scores = {c: _digest(self.model, r.messages, r.assistant_prefix, c)[0] / 32.0 for c in r.choices}
            norm = math.log(sum(math.exp(v) for v in scores.values()))
            out.append({c: v - norm for c, v in scores.items()})
        return out

    def _complete(self, request: ChatRequest) -> Completion:
        prompt_tokens = sum(len(m["content"].split()) for m in request.messages)
        if any(FAKE_ERROR in m["content"] for m in request.messages):
            return Completion("", prompt_tokens, 0, finish_reason="error", error="fake backend: requested failure")
        p = request.params
        # like a real model, the text does not depend on the length limit or the stop strings (they only cut it)
        digest = _digest(self.model, request.messages, p.temperature, p.top_p, p.seed)
        n_words = 3 + digest[0] % 12
        words = [_WORDS[b % len(_WORDS)] for b in digest[1 : 1 + n_words]]
        finish = "stop"
        if len(words) > p.max_new_tokens:
            words, finish = words[: p.max_new_tokens], "length"
        text = " ".join(words)
        for stop in p.stop:
            if stop and stop in text:
                text, finish = text[: text.index(stop)], "stop"
        top = None
        if p.top_logprobs:
            top = [{w: -0.1 * (k + 1) for k, w in enumerate(_WORDS[: p.top_logprobs])} for _ in text.split()]
        return Completion(text, prompt_tokens, len(text.split()), finish_reason=finish, top_logprobs=top)


def _digest(*parts: object) -> bytes:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).digest()
