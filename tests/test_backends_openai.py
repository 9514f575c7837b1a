"""openai backend (the `openai` SDK plus our slots, jitter, redaction) against the local fake server
(tests/openai_server.py): faults injected, nothing lost, nothing leaked, nothing retried that cannot succeed."""

from __future__ import annotations

import logging
import random

import pytest

from harness.backends import load_backend
from harness.backends.base import BackendOptions, ChatRequest, SamplingParams
from harness.errors import UserError
from harness.settings import Settings
from tests.openai_server import openai_server

KEY = "sk-test-SECRET-0123456789"
FAST = {"max_retries": "2", "timeout": "0.5"}
SDK_FIRST_BACKOFF_S = 0.5  # the SDK's first wait without Retry-After (less up to 25 %), before our jitter (+0-50 %)


def _backend(url: str, tmp_path, use_cache: bool = False, concurrency: int = 4, key_env: str = "SPPO_TEST_KEY",
             **extra: str):
    options = BackendOptions(model="served-model", backend="openai", base_url=url, api_key_env=key_env,
                             max_concurrency=concurrency, use_cache=use_cache, extra={**FAST, **extra})
    return load_backend(options, Settings(home=tmp_path / "home", offline=True))


def _ask(text: str, **params) -> ChatRequest:
    return ChatRequest(({"role": "user", "content": text},), SamplingParams(**params))


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("SPPO_TEST_KEY", KEY)


def test_mixed_faults_nothing_lost_and_concurrency_bounded(tmp_path):
    faults = ["", " @@429*2", " @@500*1", " @@malformed*1", " @@drop*1", " @@slow=0.02", " @@badshape*1"]
    prompts = [f"q{i}" + faults[i % len(faults)] for i in range(30)]
    prompts += ["always broken @@500*99", "never json @@malformed*99", "refused @@400"]
    with openai_server() as server:
        out = _backend(server.url, tmp_path).generate([_ask(p) for p in prompts])
    assert len(out) == len(prompts)
    for prompt, c in zip(prompts[:30], out[:30], strict=True):
        assert c.error is None and c.finish_reason == "stop", (prompt, c)
        assert c.text == "echo: " + prompt.split(" @@")[0]
        assert c.completion_tokens == len(c.text.split()) and c.prompt_tokens == len(prompt.split())
    broken, never_json, refused = out[30:]
    assert broken.finish_reason == never_json.finish_reason == refused.finish_reason == "error"
    assert broken.text == never_json.text == refused.text == ""  # never a fake text
    assert "gave up after 3 attempts" in broken.error and "HTTP 500" in broken.error
    assert "gave up after 3 attempts" in never_json.error and "malformed response body" in never_json.error
    assert "HTTP 400" in refused.error and server.attempts["refused @@400"] == 1  # client errors are not retried
    assert server.attempts["q1 @@429*2"] == 3 and server.attempts["q4 @@drop*1"] == 2
    assert server.attempts["q6 @@badshape*1"] == 2 and server.attempts["q3 @@malformed*1"] == 2
    assert server.max_in_flight <= 4
    assert server.auth_headers == {f"Bearer {KEY}"}


def test_concurrency_bounded_and_waits_hold_no_slot(tmp_path):
    prompts = [f"p{i} @@slow=0.05" for i in range(24)]
    with openai_server() as server:
        out = _backend(server.url, tmp_path, concurrency=3).generate([_ask(p) for p in prompts])
    assert all(c.error is None for c in out)
    assert server.max_in_flight == 3  # the limit, reached and never passed
    with openai_server() as server:  # one slot: a request waiting out a Retry-After must let the other one through
        out = _backend(server.url, tmp_path, concurrency=1).generate([_ask("wait @@429*1 @@after=1"), _ask("go")])
    assert all(c.error is None for c in out)
    first, second = server.arrivals["wait @@429*1 @@after=1"]
    assert first < server.arrivals["go"][0] < second


@pytest.mark.parametrize("directive, at_least_s", [("@@after=1", 1.0), ("@@after_ms=900", 0.9)])
def test_retry_after_and_retry_after_ms_are_honoured(tmp_path, directive, at_least_s):
    prompt = f"wait @@429*1 {directive}"
    with openai_server() as server:
        out = _backend(server.url, tmp_path).generate([_ask(prompt)])
    assert out[0].error is None
    first, second = server.arrivals[prompt]
    assert at_least_s > SDK_FIRST_BACKOFF_S * 1.5  # so the wait below is the server's, not the backoff's
    assert second - first >= at_least_s  # a lower bound: the client waited at least what the server asked


def test_retry_jitter_differs_between_identical_backends(tmp_path, caplog):
    """Workers whose global `random` was seeded alike (lm-eval and transformers seed it) must not retry in lockstep,
    neither on plain backoff nor on a server's Retry-After (where the SDK itself adds no jitter)."""
    caplog.set_level(logging.INFO, logger="openai")
    waits = []
    with openai_server() as server:
        for run in range(2):
            caplog.clear()
            random.seed(0)
            prompts = [f"backoff {run} @@500*1", f"asked {run} @@500*1 @@after_ms=20"]
            assert all(c.error is None for c in _backend(server.url, tmp_path).generate([_ask(p) for p in prompts]))
            waits.append(sorted(r.args[0] for r in caplog.records if r.msg.startswith("Retrying request in")))
    assert len(waits[0]) == len(waits[1]) == 2
    (asked_a, backoff_a), (asked_b, backoff_b) = waits
    assert asked_a != asked_b and backoff_a != backoff_b
    assert min(asked_a, asked_b) >= 0.02  # never shorter than the server asked
    assert SDK_FIRST_BACKOFF_S * 0.75 <= min(backoff_a, backoff_b) <= max(backoff_a, backoff_b) <= 0.75


def test_timeouts_are_retried_then_an_error(tmp_path):
    with openai_server() as server:
        out = _backend(server.url, tmp_path, timeout="0.2", max_retries="1").generate(
            [_ask("slow start @@hang*1 @@hang_s=0.6"), _ask("stuck @@hang*99 @@hang_s=0.6")])
    assert out[0].error is None and out[0].text == "echo: slow start"
    assert server.attempts["slow start @@hang*1 @@hang_s=0.6"] == 2
    assert out[1].finish_reason == "error" and out[1].text == ""
    assert out[1].error == "gave up after 2 attempts: timed out after 0.2 s"
    assert server.attempts["stuck @@hang*99 @@hang_s=0.6"] == 2


def test_sampling_params_and_top_logprobs_sent_and_parsed(tmp_path):
    with openai_server() as server:
        out = _backend(server.url, tmp_path).generate([_ask("alpha beta gamma", temperature=0.7, top_p=0.9, seed=5,
                                                            max_new_tokens=10, stop=("gamma",), top_logprobs=2)])
    body = server.bodies[0]
    assert body["model"] == "served-model" and body["temperature"] == 0.7 and body["top_p"] == 0.9
    assert body["seed"] == 5 and body["max_tokens"] == 10 and body["stop"] == ["gamma"]
    assert body["logprobs"] is True and body["top_logprobs"] == 2
    c = out[0]
    assert c.text == "echo: alpha beta " and c.finish_reason == "stop"
    assert c.top_logprobs == [{"echo:": -0.5, "echo:1": -1.5}, {"alpha": -0.5, "alpha1": -1.5},
                              {"beta": -0.5, "beta1": -1.5}]


def test_length_finish_reason(tmp_path):
    with openai_server() as server:
        out = _backend(server.url, tmp_path).generate([_ask("a b c d e f", max_new_tokens=3)])
    assert out[0].finish_reason == "length" and out[0].text == "echo: a b" and out[0].completion_tokens == 3


def test_key_never_leaks_into_errors_logs_or_cache(tmp_path, caplog):
    """Every error body of the fake server echoes the Authorization header: a retried 500, a 429 given up on, a 400
    and a 401 must all reach the user without the key."""
    caplog.set_level(logging.DEBUG)
    with openai_server() as server:
        backend = _backend(server.url, tmp_path, use_cache=True, max_retries="1")
        out = backend.generate([_ask("echo my key @@500*99"), _ask("limit @@429*99 @@after_ms=10"),
                                _ask("bad @@400"), _ask("fine")])
        with pytest.raises(UserError) as err:
            backend.generate([_ask("who @@401")])
    assert [c.finish_reason for c in out] == ["error", "error", "error", "stop"]
    for c in out[:3]:
        assert KEY not in c.error and "***" in c.error, c.error
    assert KEY not in str(err.value) and "***" in str(err.value)
    assert KEY not in caplog.text and KEY not in repr(backend) and KEY not in repr(getattr(backend, "inner", ""))
    db = tmp_path / "home" / "cache.sqlite"
    assert db.exists() and all(KEY.encode() not in f.read_bytes() for f in db.parent.iterdir() if f.is_file())


@pytest.mark.parametrize("directive, status", [("@@401", 401), ("@@403", 403), ("@@404", 404), ("wrong path", 404)])
def test_unfixable_errors_stop_with_one_line_without_retries(tmp_path, directive, status):
    with openai_server() as server:
        url = server.url.replace("/v1", "/nope") if directive == "wrong path" else server.url
        with pytest.raises(UserError) as err:
            _backend(url, tmp_path, max_retries="3").generate([_ask(f"x {directive}")])
    message = str(err.value)
    assert f"HTTP {status}" in message and KEY not in message and "\n" not in message
    assert server.total == 1  # not retried


def test_no_key_env_sends_no_authorization(tmp_path):
    with openai_server() as server:
        out = _backend(server.url, tmp_path, key_env="").generate([_ask("hi")])
    assert out[0].text == "echo: hi" and server.auth_headers == {""}


def test_missing_key_env_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("SPPO_TEST_KEY")
    with pytest.raises(UserError, match="SPPO_TEST_KEY is not set"):
        _backend("http://127.0.0.1:9/v1", tmp_path)


@pytest.mark.parametrize("extra, message", [
    ({"timeout": "soon"}, "give numbers"), ({"timeout": "nan"}, "timeout must be a positive number"),
    ({"timeout": "0"}, "timeout must be a positive number"), ({"max_retries": "-1"}, "max_retries a whole number"),
    ({"retry_base": "0.1"}, "option 'retry_base' is unknown; the options are timeout"),
])
def test_missing_model_and_bad_options(tmp_path, extra, message):
    settings = Settings(home=tmp_path, offline=True)
    with pytest.raises(UserError, match="needs --model"):
        load_backend(BackendOptions(backend="openai", api_key_env="SPPO_TEST_KEY"), settings)
    with pytest.raises(UserError, match=message):
        load_backend(BackendOptions(model="m", backend="openai", api_key_env="SPPO_TEST_KEY", extra=extra), settings)


def test_unreachable_endpoint_is_an_error_per_request(tmp_path):
    with openai_server() as server:
        pass  # the port is closed again: connections are refused
    out = _backend(server.url, tmp_path, max_retries="1").generate([_ask("a"), _ask("b")])
    assert [c.finish_reason for c in out] == ["error", "error"]
    assert all("gave up after 2 attempts: connection failed" in c.error for c in out)
