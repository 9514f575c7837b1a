"""The official judges over the real `openai` backend against a local judge server: latency, 429/500, timeouts,
malformed bodies and verdicts; nothing lost, coverage reported, finished judgments kept when the endpoint goes down,
and the API key never written anywhere."""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path

import pytest

from harness.backends.base import BackendOptions, Completion
from harness.catalog import get_suite
from harness.engines.context import Injected, ModelRef, RunContext, RunOptions
from harness.engines.judged import run_suite
from harness.errors import UserError
from harness.settings import Settings
from harness.store import RunDir
from tests.fixtures.judged.doubles import RecordingGenerator
from tests.openai_server import judge_replies, openai_server

KEY_ENV = "SPPO_JUDGE_TEST_API_KEY"
SECRET = "sk-test-0123456789-do-not-leak"
MARKS = ["@@429*1", "@@500*1", "@@hang*1", "@@malformed*1", "@@noverdict", ""]  # tests/openai_server.py


class MarkedGenerator(RecordingGenerator):
    def generate(self, requests):
        out = super().generate(requests)
        return [Completion(f"{MARKS[i % len(MARKS)]} {c.text}", c.prompt_tokens, c.completion_tokens)
                for i, c in enumerate(out)]


def _ctx(home: Path, run: Path, url: str, limit: int = 6, concurrency: int = 4, generator=None) -> RunContext:
    judge = BackendOptions(backend="openai", base_url=url, model=None, api_key_env=KEY_ENV, max_concurrency=concurrency,
                           extra={"timeout": "0.5", "max_retries": "2"})
    return RunContext(settings=Settings(home=home, offline=True), run=RunDir(run), backend=BackendOptions(backend="fake"),
                      options=RunOptions(limit=limit, judge="official", judge_backend=judge, max_new_tokens=16),
                      injected=Injected(generator=generator or MarkedGenerator()))


def _all_text(root: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("suite", ["arena_hard", "mt_bench", "alpaca_eval"])
def test_official_judge_through_faults(data_home, tmp_path, monkeypatch, caplog, capsys, suite):
    monkeypatch.setenv(KEY_ENV, SECRET)
    caplog.set_level(logging.DEBUG)
    with openai_server(judge_replies, latency_s=0.01) as server:
        rec = run_suite(get_suite(suite), ModelRef("ckpt", "m1"), _ctx(data_home, tmp_path / "run", server.url))
    assert rec.judge and rec.judge.official and rec.judge.backend == "openai"
    total = {"arena_hard": 12, "mt_bench": 12, "alpaca_eval": 6}[suite]
    unparsable = {"arena_hard": 2, "mt_bench": 2, "alpaca_eval": 1}[suite]  # the @@noverdict item, never a score
    assert rec.coverage.total == total and rec.coverage.failed == unparsable  # 429/500/hang/malformed all recovered
    assert rec.status == "partial" and rec.metrics
    if suite == "arena_hard":
        # the judge always says A>B: the baseline wins game 1, the model game 2 (positions swapped) -> exactly even
        assert rec.metrics["score"].value == pytest.approx(50.0)
    if suite == "mt_bench":
        assert rec.metrics["average"].value == pytest.approx(6.0)
    if suite == "alpaca_eval":
        ann = json.loads(next((tmp_path / "run").rglob("annotations.json")).read_text())
        assert sum(a["preference"] is None for a in ann) == 1
    # the 500 body echoed "Bearer <key>": it must appear in no file, log line or output
    out = capsys.readouterr()
    assert SECRET not in _all_text(tmp_path / "run")
    assert SECRET not in caplog.text and SECRET not in out.out and SECRET not in out.err
    assert SECRET not in rec.model_dump_json()


def test_endpoint_down_fails_fast_with_url(data_home, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    gen = MarkedGenerator()
    ctx = _ctx(data_home, tmp_path / "run", url, generator=gen)
    with pytest.raises(UserError, match=f"judge endpoint {url} is unreachable"):
        run_suite(get_suite("mt_bench"), ModelRef("ckpt", "m1"), ctx)
    assert gen.requests == []  # failed before generating anything


def test_endpoint_going_down_keeps_finished_judgments(data_home, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    with openai_server(judge_replies) as server:
        ctx = _ctx(data_home, tmp_path / "run", server.url, limit=32, concurrency=1,  # batches of 32 games
                   generator=RecordingGenerator())
        from harness.judges import calls as calls_mod

        real_step = calls_mod.run_batched

        def flaky(tasks, inputs, step, cache, concurrency, endpoint):
            def step_then_down(chunk):
                out = step(chunk)
                server.down = True  # the endpoint dies after the first batch
                return out
            return real_step(tasks, inputs, step_then_down, cache, concurrency, endpoint)

        monkeypatch.setattr("benchmarks.arena_hard.judging.run_batched", flaky)
        with pytest.raises(UserError, match=f"judge endpoint {server.url} failed all 32 calls") as err:
            run_suite(get_suite("arena_hard"), ModelRef("ckpt", "m1"), ctx)
        assert "32 finished judgments are kept" in str(err.value)
        assert SECRET not in str(err.value)
        monkeypatch.setattr("benchmarks.arena_hard.judging.run_batched", real_step)
        server.down = False
        before = server.total
        rec = run_suite(get_suite("arena_hard"), ModelRef("ckpt", "m1"), ctx)
        assert server.total - before == 32  # only the 32 games that were never judged are asked again
        assert rec.coverage.total == 64 and rec.coverage.failed == 0
