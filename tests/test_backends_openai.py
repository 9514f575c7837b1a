"""openai backend against the local scripted server (tests/openai_server.py): faults injected, nothing lost."""

from __future__ import annotations

import logging

import pytest

from harness.backends import load_backend
from harness.backends.base import BackendOptions, ChatRequest, SamplingParams
from harness.backends.openai_api import RetryPolicy, _retry_after
from harness.errors import UserError
from harness.settings import Settings
from tests.openai_server import openai_server

KEY = "sk-test-SECRET-0123456789"
FAST = {"retry_base": "0.01", "retry_cap": "0.05", "max_retries": "4", "timeout": "0.5"}


def _backend(url: str, tmp_path, use_cache: bool = False, **extra: str):
    options = BackendOptions(model="served-model", backend="openai", base_url=url, api_key_env="SPPO_TEST_KEY",
                             max_concurrency=4, use_cache=use_cache, extra={**FAST, **extra})
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
    with openai_server() as (url, log):
        out = _backend(url, tmp_path).generate([_ask(p) for p in prompts])
    assert len(out) == len(prompts)
    for prompt, c in zip(prompts[:30], out[:30], strict=True):
        assert c.error is None and c.finish_reason == "stop", (prompt, c)
        assert c.text == "echo: " + prompt.split(" @@")[0]
        assert c.completion_tokens == len(c.text.split()) and c.prompt_tokens == len(prompt.split())
    broken, never_json, refused = out[30:]
    assert broken.finish_reason == never_json.finish_reason == refused.finish_reason == "error"
    assert broken.text == never_json.text == refused.text == ""  # never a fake text
    assert "gave up after 5 attempts" in broken.error and "HTTP 500" in broken.error
    assert "malformed response body" in never_json.error
    assert "HTTP 400" in refused.error and log.attempts["refused @@400"] == 1  # client errors are not retried
    assert log.attempts["q1 @@429*2"] == 3 and log.attempts["q4 @@drop*1"] == 2
    assert log.attempts["q6 @@badshape*1"] == 2 and log.attempts["q3 @@malformed*1"] == 2
    assert log.max_in_flight <= 4
    assert log.auth_headers == {f"Bearer {KEY}"}


def test_timeouts_are_retried(tmp_path):
    with openai_server() as (url, log):
        out = _backend(url, tmp_path, timeout="0.2").generate([_ask("slow start @@hang*1 @@hang_s=0.6")])
    assert out[0].error is None and out[0].text == "echo: slow start"
    assert log.attempts["slow start @@hang*1 @@hang_s=0.6"] == 2


def test_retry_after_is_honoured(tmp_path):
    with openai_server() as (url, log):
        out = _backend(url, tmp_path).generate([_ask("wait @@429*1 @@after=0.4")])
    assert out[0].error is None
    first, second = log.arrivals["wait @@429*1 @@after=0.4"]
    assert second - first >= 0.4  # a lower bound: the client waited at least what the server asked


def test_sampling_params_and_top_logprobs_sent_and_parsed(tmp_path):
    with openai_server() as (url, log):
        out = _backend(url, tmp_path).generate([_ask("alpha beta gamma", temperature=0.7, top_p=0.9, seed=5,
                                                     max_new_tokens=10, stop=("gamma",), top_logprobs=2)])
    body = log.bodies[0]
    assert body["model"] == "served-model" and body["temperature"] == 0.7 and body["top_p"] == 0.9
    assert body["seed"] == 5 and body["max_tokens"] == 10 and body["stop"] == ["gamma"]
    assert body["logprobs"] is True and body["top_logprobs"] == 2
    c = out[0]
    assert c.text == "echo: alpha beta " and c.finish_reason == "stop"
    assert c.top_logprobs == [{"echo:": -0.5, "echo:1": -1.5}, {"alpha": -0.5, "alpha1": -1.5},
                              {"beta": -0.5, "beta1": -1.5}]


def test_length_finish_reason(tmp_path):
    with openai_server() as (url, _):
        out = _backend(url, tmp_path).generate([_ask("a b c d e f", max_new_tokens=3)])
    assert out[0].finish_reason == "length" and out[0].text == "echo: a b" and out[0].completion_tokens == 3


def test_key_never_leaks_into_errors_logs_or_cache(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    with openai_server() as (url, _):
        backend = _backend(url, tmp_path, use_cache=True)
        out = backend.generate([_ask("echo my key @@500*99"), _ask("fine")])
    assert out[0].error and KEY not in out[0].error and "***" in out[0].error
    assert KEY not in caplog.text and KEY not in repr(backend) and KEY not in repr(getattr(backend, "inner", ""))
    db = tmp_path / "home" / "cache.sqlite"
    assert db.exists() and all(KEY.encode() not in f.read_bytes() for f in db.parent.iterdir() if f.is_file())


def test_auth_failure_stops_with_one_line_without_key(tmp_path):
    with openai_server() as (url, _):
        with pytest.raises(UserError) as err:
            _backend(url.replace("/v1", "/nope"), tmp_path).generate([_ask("x")])
    assert "HTTP 404" in str(err.value) and KEY not in str(err.value) and "\n" not in str(err.value)


def test_missing_key_env_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("SPPO_TEST_KEY")
    with pytest.raises(UserError, match="SPPO_TEST_KEY is not set"):
        _backend("http://127.0.0.1:9/v1", tmp_path)


def test_missing_model_and_bad_extra(tmp_path):
    settings = Settings(home=tmp_path, offline=True)
    with pytest.raises(UserError, match="needs --model"):
        load_backend(BackendOptions(backend="openai", api_key_env="SPPO_TEST_KEY"), settings)
    with pytest.raises(UserError, match="give numbers"):
        load_backend(BackendOptions(model="m", backend="openai", api_key_env="SPPO_TEST_KEY",
                                    extra={"timeout": "soon"}), settings)


def test_unreachable_endpoint_is_an_error_per_request(tmp_path):
    with openai_server() as (url, _):
        pass  # the port is closed again: connections are refused
    out = _backend(url, tmp_path, max_retries="1").generate([_ask("a"), _ask("b")])
    assert [c.finish_reason for c in out] == ["error", "error"] and all("connection failed" in c.error for c in out)


def test_retry_policy_backoff_and_retry_after_parsing():
    import random

    policy = RetryPolicy(base_s=1.0, cap_s=8.0)
    rng = random.Random(0)
    delays = [policy.delay(a, None, rng) for a in range(6)]
    assert all(min(8.0, 2**a) / 2 <= d <= min(8.0, 2**a) for a, d in enumerate(delays))
    assert policy.delay(0, 5.0, rng) >= 5.0 and policy.delay(0, 10_000.0, rng) == 300.0
    assert _retry_after({"retry-after": "2"}) == 2.0 and _retry_after({"retry-after-ms": "250"}) == 0.25
    assert _retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # a date in the past
    assert _retry_after({"retry-after": "soon"}) is None and _retry_after({}) is None
