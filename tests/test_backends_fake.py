"""The deterministic fake backend other plumbing tests rely on."""

from __future__ import annotations

import math
from pathlib import Path

from harness.backends.base import ChatBackend, ChatRequest, ChoiceRequest, ChoiceScorer, SamplingParams
from harness.backends.fake import FAKE_ERROR, FakeBackend


def _ask(text: str, **params) -> ChatRequest:
    return ChatRequest(({"role": "user", "content": text},), SamplingParams(**params))


def test_protocols_and_determinism():
    a, b = FakeBackend(), FakeBackend()
    assert isinstance(a, ChatBackend) and isinstance(a, ChoiceScorer)
    requests = [_ask(f"q{i}", temperature=0.7) for i in range(10)]
    assert a.generate(requests) == b.generate(requests)
    texts = {a.generate([_ask("q", seed=s)])[0].text for s in range(8)}
    assert len(texts) > 1  # the seed is part of what the text derives from
    assert FakeBackend("other").generate(requests) != a.generate(requests)


def test_limits_stops_logprobs_and_errors():
    fake = FakeBackend()
    short = fake.generate([_ask(f"q{i}", max_new_tokens=2) for i in range(20)])
    assert all(c.completion_tokens == 2 and c.finish_reason == "length" for c in short)  # fake texts have >= 3 words
    full = fake.generate([_ask("stop test")])[0]
    word = full.text.split()[1]
    cut = fake.generate([_ask("stop test", stop=(word,))])[0]
    assert cut.text == full.text[: full.text.index(word)] and cut.finish_reason == "stop"
    top = fake.generate([_ask("lp", top_logprobs=3)])[0]
    assert top.top_logprobs is not None and len(top.top_logprobs) == top.completion_tokens
    bad = fake.generate([_ask(f"x {FAKE_ERROR}")])[0]
    assert bad.error and bad.finish_reason == "error" and bad.text == ""


def test_choice_logprobs_normalised_and_stable():
    fake = FakeBackend()
    req = ChoiceRequest(({"role": "user", "content": "grade"},), ("1", "2", "3", "4"), "[[")
    got = fake.choice_logprobs([req])[0]
    assert set(got) == set(req.choices) and math.isclose(sum(math.exp(v) for v in got.values()), 1.0)
    assert fake.choice_logprobs([req]) == [got] and fake.choice_calls == 2


def test_backend_modules_import_light():
    import subprocess
    import sys

    code = ("import sys, harness.backends, harness.backends.hf, harness.backends.openai_api, "
            "harness.backends.vllm_backend, harness.backends.cache, harness.commands.generate; "
            "print(sorted(m for m in ('torch', 'transformers', 'httpx', 'vllm', 'openai') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
