"""The judged-suite runner end to end: generation in upstream formats, local and official judges, caching, coverage,
best-of-n. Fast tests use in-test doubles; the slow test runs the embedded default with the local judge."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from benchmarks.mt_bench.suite import MT_TEMPERATURE
from harness.backends.base import BackendOptions, Completion
from harness.catalog import get_suite
from harness.engines.context import Injected, ModelRef, RunContext, RunOptions
from harness.engines.judged import run_suite
from harness.settings import Settings
from harness.store import RunDir
from tests.fixtures.judged.doubles import CountingScorer, RecordingGenerator, ScriptedJudge

SUITES = ("alpaca_eval", "arena_hard", "mt_bench")


def _ctx(home: Path, run: Path, judge: str = "local", limit: int = 3, generator=None, judge_instance=None,
         preference_scorer=None) -> RunContext:
    return RunContext(settings=Settings(home=home, offline=True), run=RunDir(run), backend=BackendOptions(backend="fake"),
                      options=RunOptions(limit=limit, judge=judge, max_new_tokens=16),
                      injected=Injected(generator=generator, judge=judge_instance, preference=preference_scorer))


@pytest.mark.parametrize("suite", SUITES)
def test_local_judge_run_and_cached_rerun(data_home, tmp_path, suite):
    gen, scorer = RecordingGenerator(), CountingScorer()
    model = ModelRef(checkpoint="ckpt", label="my-model", iteration=1)
    rec = run_suite(get_suite(suite), model, _ctx(data_home, tmp_path / "run", generator=gen, judge_instance=scorer))
    assert rec.suite == suite and rec.status == "partial" and rec.limit == 3 and rec.iteration == 1
    assert rec.judge and not rec.judge.official and rec.judge.id == f"{suite}/local-choice"
    assert len(rec.judge.prompt_hash) == 16
    assert rec.judge is not None and rec.judge.official is False  # cards say local-judge numbers are not comparable
    assert rec.coverage and rec.coverage.failed == 0 and rec.coverage.scored == rec.coverage.total
    assert rec.metrics and all(m.value == m.value for m in rec.metrics.values())
    first_calls = scorer.calls
    assert first_calls > 0
    again = CountingScorer()
    rec2 = run_suite(get_suite(suite), model, _ctx(data_home, tmp_path / "run2", generator=RecordingGenerator(),
                                                  judge_instance=again))
    assert again.calls == 0  # every judgment came from the cache
    assert {k: m.value for k, m in rec2.metrics.items()} == {k: m.value for k, m in rec.metrics.items()}


def test_alpaca_outputs_in_upstream_format(data_home, tmp_path):
    ctx = _ctx(data_home, tmp_path / "run", generator=RecordingGenerator(), judge_instance=CountingScorer())
    rec = run_suite(get_suite("alpaca_eval"), ModelRef("c", "m1"), ctx)
    out = ctx.run.samples_dir("m1", None, "alpaca_eval")
    outputs = json.loads((out / "model_outputs.json").read_text())
    eval_rows = [json.loads(x) for x in (data_home / "data/alpaca_eval/eval.jsonl").read_text().splitlines()[:3]]
    assert [o["instruction"] for o in outputs] == [r["instruction"] for r in eval_rows]
    assert set(outputs[0]) == {"instruction", "output", "generator", "dataset"} and outputs[0]["generator"] == "m1"
    ann = json.loads((out / "alpaca_eval__local-choice" / "annotations.json").read_text())
    assert {a["generator_1"] for a in ann} == {"gpt4_1106_preview"} and all(1 <= a["preference"] <= 2 for a in ann)
    assert "lc_win_rate" not in rec.metrics and any("--limit" in n for n in rec.notes)


def test_arena_answers_have_token_len(data_home, tmp_path):
    ctx = _ctx(data_home, tmp_path / "run", generator=RecordingGenerator(), judge_instance=CountingScorer())
    rec = run_suite(get_suite("arena_hard"), ModelRef("c", "m1"), ctx)
    out = ctx.run.samples_dir("m1", None, "arena_hard")
    answers = [json.loads(x) for x in (out / "model_answer" / "m1.jsonl").read_text().splitlines()]
    assert len(answers) == 3 and all(a["choices"][0]["turns"][0]["token_len"] > 0 for a in answers)
    judgments = [json.loads(x) for x in (out / "model_judgment" / "arena_hard__local-choice" / "m1.jsonl")
                 .read_text().splitlines()]
    assert all(len(j["games"]) == 2 for j in judgments)
    m = rec.metrics["score"]
    assert m.ci_low <= m.value <= m.ci_high and rec.metrics["avg_tokens"].value > 0


def test_mt_bench_second_turn_conditioned_and_temperatures(data_home, tmp_path):
    gen = RecordingGenerator()
    ctx = _ctx(data_home, tmp_path / "run", generator=gen, judge_instance=CountingScorer())
    run_suite(get_suite("mt_bench"), ModelRef("c", "m1"), ctx)
    questions = [json.loads(x) for x in (data_home / "data/mt_bench/question.jsonl").read_text().splitlines()[:3]]
    first, second = gen.requests[:3], gen.requests[3:6]
    for q, a, b in zip(questions, first, second, strict=True):
        assert a.params.temperature == MT_TEMPERATURE[q["category"]] == b.params.temperature
        assert [m["role"] for m in b.messages] == ["user", "assistant", "user"]
        assert b.messages[1]["content"].startswith(f"answer to [{q['turns'][0][:30]}]")  # the model's own answer
        assert b.messages[2]["content"] == q["turns"][1]
    answers = [json.loads(x) for x in (ctx.run.samples_dir("m1", None, "mt_bench") / "model_answer" / "m1.jsonl")
               .read_text().splitlines()]
    assert all(len(a["choices"][0]["turns"]) == 2 for a in answers)


class MarkedGenerator(RecordingGenerator):
    """Answers the first item NOVERDICT (judge answers on the retry), the second NEVER / NORATING (never parsable)."""

    def generate(self, requests):
        out = super().generate(requests)
        marks = ["NOVERDICT", "NEVER NORATING", ""]
        return [Completion(marks[i % 3] + " " + c.text, c.prompt_tokens, c.completion_tokens)
                for i, c in enumerate(out)]


def test_official_judge_retries_and_coverage(data_home, tmp_path):
    judge = ScriptedJudge()
    ctx = _ctx(data_home, tmp_path / "run", generator=MarkedGenerator(), judge="official", judge_instance=judge)
    arena = run_suite(get_suite("arena_hard"), ModelRef("c", "m1"), ctx)
    assert arena.judge.official and arena.judge.id == "arena_hard/v0.1-gpt-4-1106-preview"
    # NOVERDICT games got upstream's follow-up message and then a verdict; NEVER games stay unparsed after 2 attempts
    follow = [r for r in judge.requests if len(r.messages) == 4]
    assert follow and all(r.messages[3]["content"].startswith("continue your judgment") for r in follow)
    assert arena.coverage.total == 6 and arena.coverage.failed == 2 and arena.status == "partial"
    judgments = [json.loads(x) for x in (ctx.run.samples_dir("m1", None, "arena_hard") / "model_judgment" /
                 "arena_hard__v0.1-gpt-4-1106-preview" / "m1.jsonl").read_text().splitlines()]
    assert [g["score"] for g in judgments[1]["games"]] == [None, None]
    assert judgments[0]["games"][0]["score"] == "B>A"

    mt = run_suite(get_suite("mt_bench"), ModelRef("c", "m1"), ctx)
    assert mt.coverage.failed == 2  # both turns of the NORATING question: -1, excluded, counted
    assert mt.metrics["average"].value == pytest.approx(7.0)

    alpaca = run_suite(get_suite("alpaca_eval"), ModelRef("c", "m1"), ctx)
    ann = json.loads((ctx.run.samples_dir("m1", None, "alpaca_eval") / "alpaca_eval__weighted_alpaca_eval_gpt4_turbo"
                      / "annotations.json").read_text())
    assert ann[0]["preference"] is None and ann[0]["unparsed"] and ann[0]["error"] is None
    assert alpaca.coverage.failed == 1
    # the scripted judge gives P(M)=0.8 whichever output is M, so the un-switched preference is 1.8 or 1.2
    for a in ann[1:]:
        assert a["preference"] == pytest.approx(1.2 if a["is_switched_outputs"] else 1.8)


def test_best_of_n_is_its_own_row(data_home, tmp_path):
    gen = RecordingGenerator()
    ctx = _ctx(data_home, tmp_path / "run", generator=gen, judge_instance=CountingScorer(),
               preference_scorer=CountingScorer(), limit=2)
    rec = run_suite(get_suite("alpaca_eval"), ModelRef("c", "m1", variant="best-of-2"), ctx)
    assert rec.variant == "best-of-2"
    assert len(gen.requests) == 4 and {r.params.temperature for r in gen.requests} == {0.7}
    assert {r.params.seed for r in gen.requests} == {0, 1}
    assert ctx.run.samples_dir("m1", "best-of-2", "alpaca_eval").is_dir()


def test_missing_baseline_and_data(data_home, tmp_path):
    import shutil

    from harness.errors import UserError

    home = tmp_path / "h"
    shutil.copytree(data_home / "data", home / "data")
    base = home / "data/arena_hard/v0.1/model_answer/gpt-4-0314.jsonl"
    first = [json.loads(x)["question_id"] for x in (home / "data/arena_hard/v0.1/question.jsonl").read_text()
             .splitlines()[:2]]
    base.write_text("".join(x for x in base.read_text().splitlines(keepends=True)
                            if json.loads(x)["question_id"] not in first))  # the first two questions lose theirs
    import hashlib  # a pulled file edited behind the manifest is refused (issue 21): record the edit as pulled

    manifest_path = home / "data/arena_hard/manifest.json"
    manifest = json.loads(manifest_path.read_text())
    entry = manifest["parts"][0]["files"]["v0.1/model_answer/gpt-4-0314.jsonl"]
    entry.update(sha256=hashlib.sha256(base.read_bytes()).hexdigest(), bytes=base.stat().st_size, rows=498)
    manifest_path.write_text(json.dumps(manifest))
    ctx = _ctx(home, tmp_path / "run", generator=RecordingGenerator(), judge_instance=CountingScorer())
    with pytest.raises(UserError, match="no baseline answer for 2 questions"):
        run_suite(get_suite("arena_hard"), ModelRef("c", "m1"), ctx)
    empty = _ctx(tmp_path / "empty", tmp_path / "run", generator=RecordingGenerator(), judge_instance=CountingScorer())
    with pytest.raises(UserError, match="data pull"):
        run_suite(get_suite("mt_bench"), ModelRef("c", "m1"), empty)


@pytest.mark.slow
def test_embedded_default_local_judge_all_suites(data_home, tmp_path):
    """All three suites offline on the embedded default (SmolLM2-135M-Instruct) judging itself, 1 item each."""
    import shutil

    from harness.models import default_model_dir

    src = Path(os.environ.get("SPPO_BENCH_HOME") or Path.home() / ".cache" / "sppo-bench")
    if not (default_model_dir(Settings(home=src, offline=True)) / "config.json").is_file():
        pytest.skip("the embedded default is not prepared (run `sppo-bench models prepare` or any eval once)")
    home = tmp_path / "home"
    shutil.copytree(data_home / "data", home / "data")
    (home / "models").symlink_to(src / "models", target_is_directory=True)
    settings = Settings(home=home, offline=True)
    # one context for the three suites, as `sppo-bench eval` builds it: the model loads once and judges itself
    ctx = RunContext(settings=settings, run=RunDir(tmp_path / "run"),
                     backend=BackendOptions(backend="hf", model=None, device="cpu", batch_size=4),
                     options=RunOptions(limit=1, judge="local", max_new_tokens=16))
    checkpoint = str(default_model_dir(settings))
    for suite in SUITES:
        rec = run_suite(get_suite(suite), ModelRef(checkpoint=checkpoint, label="smollm2"), ctx)
        assert rec.status == "partial" and rec.judge and not rec.judge.official
        assert rec.coverage and rec.coverage.failed == 0  # the local judge never fails to parse
        assert rec.metrics
