"""Per-item results: converters from upstream outputs, items.jsonl I/O, and every item statistic recomputing its record's
number on the full item set (records built by the real record builders: alpaca_eval's get_winrate on the two published
annotation files, upstream's sklearn Bradley-Terry, FastChat's turn means, lm-eval's own aggregation)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from benchmarks.alpaca_eval.suite import alpaca_items
from benchmarks.arena_hard.suite import arena_items
from benchmarks.mt_bench.suite import mt_bench_items
from harness.catalog import suites
from harness.engines.judged import Header
from harness.engines.lmeval.items import lmeval_items
from harness.errors import UserError
from harness.records import ItemRow, JudgeInfo, Provenance
from harness.scoring.items import statistics_for
from harness.store import read_items, write_items

suites()  # the judged suites register their item statistics
JUDGE = JudgeInfo(id="test", model="test", prompt_hash="x", backend="test", official=False)
PROV = Provenance(source="test")


def header(model: str) -> Header:
    return Header(model=model, variant=None, judge=JUDGE, provenance=PROV)
ANNOTATIONS = ("gpt-3.5-turbo-1106", "OpenHermes-2.5-Mistral-7B")


def _assert_statistics_reproduce(record, rows) -> None:
    stats = statistics_for(record.suite)
    checked = [m for m in record.metrics if m in stats]
    assert checked, f"no item statistic for any metric of {record.suite}"
    for metric in checked:
        assert stats[metric].value(rows) == pytest.approx(record.metrics[metric].value, rel=1e-9, abs=1e-9), metric


@pytest.mark.parametrize("model", ANNOTATIONS)
def test_alpaca_statistics_reproduce_the_published_annotations(model: str, shared_data: Path) -> None:
    from benchmarks.alpaca_eval.suite import alpaca_record

    annotations = json.loads((shared_data / "alpaca_eval" / "results" / model / "weighted_alpaca_eval_gpt4_turbo"
                              / "annotations.json").read_text())
    positions = list(range(len(annotations)))
    record = alpaca_record(header(model), annotations, positions, df_gamed=None, total=805)
    rows = alpaca_items(annotations, positions)
    assert len(rows) == 805 and rows[3].item == "3" and rows[3].length == len(annotations[3]["output_2"])
    _assert_statistics_reproduce(record, rows)
    assert "lc_win_rate" not in statistics_for("alpaca_eval")
    interval = statistics_for("alpaca_eval")["win_rate"].interval(rows, resamples=4000)
    assert interval.se == pytest.approx(record.metrics["win_rate"].stderr, rel=0.06)  # alpaca_eval's SEM
    assert interval.ci_low < record.metrics["win_rate"].value < interval.ci_high and interval.n == 805


def test_alpaca_items_skip_missing_verdicts_and_read_legacy_draws() -> None:
    ann = [{"instruction": "i", "output_2": "ab", "preference": p} for p in (2.0, None, float("nan"), 0, 1.25)]
    rows = alpaca_items(ann, [10, 11, 12, 13, 14])
    assert [(r.item, r.scores["preference"]) for r in rows] == [("10", 2.0), ("13", 1.5), ("14", 1.25)]


def test_arena_statistics_reproduce_upstreams_score_and_tokens() -> None:
    from benchmarks.arena_hard.suite import arena_record

    rng = random.Random(5)
    labels = ["A>>B", "A>B", "A=B", "B>A", "B>>A", None]
    judgments = [{"question_id": f"q{i}", "model": "m", "games": [{"score": rng.choice(labels[:5]), "judgment": "j1"},
                                                                   {"score": rng.choice(labels), "judgment": "j2"}]}
                 for i in range(120)]
    answers = {f"q{i}": {"choices": [{"turns": [{"content": f"a{i}", "token_len": rng.randint(5, 900)}]}]}
               for i in range(120)}
    record = arena_record(header("m"), judgments, [answers[f"q{i}"]["choices"][0]["turns"][0]["token_len"]
                                                   for i in range(120)])
    rows = arena_items(judgments, answers=answers)
    assert rows[0].games and len(rows[0].games) == 2 and "--- game 2 ---\nj2" in (rows[0].judgment or "")
    stats = statistics_for("arena_hard")
    assert stats["score"].value(rows) == pytest.approx(record.metrics["score"].value, abs=1e-6)  # sklearn's tol
    assert stats["avg_tokens"].value(rows) == record.metrics["avg_tokens"].value


def test_arena_items_leave_out_questions_without_any_verdict() -> None:
    rows = arena_items([{"question_id": 1, "games": [{"score": None}, {"score": "A>B>A"}]},
                        {"question_id": 2, "games": [{"score": None}, {"score": "A=B"}]}])
    assert [(r.item, r.games) for r in rows] == [("2", [None, "A=B"])]


PUBLISHED_MT_BENCH = ("FasterDecoding-Medusa", "alvarobartt-FastChat", "dreaming-panda-MTBench")


@pytest.mark.parametrize("repo", PUBLISHED_MT_BENCH)
def test_mt_bench_statistics_reproduce_fastchat_turn_means_of_published_judgments(repo: str, shared_data: Path) -> None:
    """Published FastChat GPT-4 single-grade judgments (model_judgment/gpt-4_single.jsonl of three repositories): the
    turn means and the average FastChat's show_result prints (mean of the valid scores, -1 left out), computed here in
    plain Python, against the item statistics on our items."""
    path = shared_data / "published" / "mt_bench" / repo / "model_judgment" / "gpt-4_single.jsonl"
    judgments = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    models = sorted({j["model"] for j in judgments})
    assert models
    stats = statistics_for("mt_bench")
    for model in models:
        mine = [j for j in judgments if j["model"] == model]
        valid = [j for j in mine if j["score"] != -1]
        expected = {"turn_1": [j["score"] for j in valid if j["turn"] == 1],
                    "turn_2": [j["score"] for j in valid if j["turn"] == 2], "average": [j["score"] for j in valid]}
        rows = mt_bench_items(mine)
        assert len(rows) == len(valid)
        for metric, scores in expected.items():
            assert stats[metric].value(rows) == pytest.approx(sum(scores) / len(scores), rel=1e-12), (model, metric)
        questions = {j["question_id"] for j in valid}
        assert stats["average"].interval(rows, resamples=200).n == len(questions)  # resampled by question


def test_mt_bench_items_leave_out_unparsable_ratings() -> None:
    judgments = [{"question_id": 81, "turn": 1, "score": 7, "judgment": "[[7]]"},
                 {"question_id": 81, "turn": 2, "score": -1, "judgment": "no rating"},
                 {"question_id": 82, "turn": 1, "score": 4, "judgment": "[[4]]"}]
    rows = mt_bench_items(judgments, questions={"81": ["first", "second"], "82": ["a", "b"]})
    assert [(r.item, r.turn, r.scores["rating"], r.prompt) for r in rows] == [("81", 1, 7.0, "first"),
                                                                              ("82", 1, 4.0, "a")]


def test_lmeval_items_keep_the_suites_filter_and_ifeval_fractions() -> None:
    gsm = [{"doc_id": d, "filter": f, "metrics": ["exact_match"], "exact_match": float(d == 0 and f == "strict-match"),
            "target": "5", "arguments": [["Q: 2+3?", {"until": ["\n"]}]], "resps": [["#### 5"]],
            "filtered_resps": ["5"]} for d in range(2) for f in ("strict-match", "flexible-extract")]
    rows = lmeval_items({"gsm8k": gsm}, "gsm8k", "strict-match")
    assert [(r.item, r.subtask, r.scores) for r in rows] == [("0", None, {"exact_match": 1.0}),
                                                             ("1", None, {"exact_match": 0.0})]
    assert (rows[0].prompt, rows[0].answer, rows[0].extracted, rows[0].target) == ("Q: 2+3?", "#### 5", "5", "5")
    ifeval = [{"doc_id": 0, "filter": "none", "metrics": ["prompt_level_strict_acc", "inst_level_strict_acc"],
               "prompt_level_strict_acc": False, "inst_level_strict_acc": [True, False, True, True]}]
    row = lmeval_items({"leaderboard_ifeval": ifeval}, "leaderboard_ifeval")[0]
    assert row.scores == {"prompt_level_strict_acc": 0.0, "inst_level_strict_acc": 0.75, "inst_level_strict_n": 4.0}
    mc = [{"doc_id": 3, "filter": "none", "metrics": ["acc_norm"], "acc_norm": 1.0, "target": 2,
           "arguments": [["ctx", " a"], ["ctx", " b"]], "resps": [[[-1.0, False]], [[-2.0, False]]]}]
    row = lmeval_items({"leaderboard_bbh_navigate": mc}, "leaderboard_bbh")[0]
    assert (row.subtask, row.prompt, row.answer, row.target) == ("leaderboard_bbh_navigate", "ctx", None, "2")


# ------------------------------------------------------------------------------------------------ items.jsonl I/O

def test_items_round_trip_and_validation_errors(tmp_path: Path) -> None:
    rows = [ItemRow(item="1", scores={"acc": 1.0}), ItemRow(item="2", subtask="s", games=["A>B", None], length=3)]
    path = write_items(tmp_path / "items.jsonl", rows)
    assert read_items(path) == rows
    assert '"games":["A>B",null]' in path.read_text() and '"prompt"' not in path.read_text()

    lines = path.read_text().splitlines()
    path.write_text(lines[0] + "\n" + '{"item": "3", "scores": {"acc": "high"}}\n')
    with pytest.raises(UserError, match=r"items.jsonl:2:scores.acc: .*number"):
        read_items(path)
    path.write_text(lines[0] + "\n" + '{"item": "4", "color": 1}\n')
    with pytest.raises(UserError, match=r"items.jsonl:2:color: Extra inputs"):
        read_items(path)
    path.write_text(lines[0] + "\n\n" + lines[0] + "\n")
    with pytest.raises(UserError, match=r"items.jsonl:3: item '1' .* repeats line 1"):
        read_items(path)
    path.write_text(lines[0] + ", " + lines[1] + "\n")
    with pytest.raises(UserError, match=r"items.jsonl:1:"):
        read_items(path)
    with pytest.raises(UserError, match="no such items file"):
        read_items(tmp_path / "absent.jsonl")


# ------------------------------------------------------------------------------------ lm-eval's own pipeline, end to end

class RandomLM:
    """An lm-eval LM answering at random (seeded): random log-likelihoods; generations that are sometimes the gold
    GSM8K / MATH answer, sometimes lowercase or capitalized prose (IFEval constraints), so scores are not all zero."""

    def __new__(cls, seed: int):  # the lm-eval base class is imported lazily (lm-eval is heavy)
        from lm_eval.api.model import LM

        class _RandomLM(LM):
            def __init__(self) -> None:
                super().__init__()
                self.rng = random.Random(seed)

            def loglikelihood(self, requests, disable_tqdm=False):
                return [(-10 * self.rng.random(), self.rng.random() < 0.5) for _ in requests]

            def loglikelihood_rolling(self, requests, disable_tqdm=False):
                return [-100 * self.rng.random() for _ in requests]

            def generate_until(self, requests, disable_tqdm=False):
                out = []
                for r in requests:
                    doc = r.doc if isinstance(r.doc, dict) else {}
                    gold = str(doc.get("answer", "")).split("####")[-1].strip()
                    out.append(self.rng.choice([f"so the answer is {gold}.\n#### {gold}", "no idea",
                                                "hello world. this is all lowercase.", "THIS IS ALL CAPS",
                                                f"Final Answer: The final answer is ${gold}$. I hope it is correct."]))
                return out

        return _RandomLM()


def _lm_eval_run(suite: str, tmp_path: Path, mirror: Path | None):
    import lm_eval
    from lm_eval.tasks import TaskManager

    from harness.backends.base import BackendOptions
    from harness.catalog import get_suite
    from harness.engines.context import RunContext, RunOptions
    from harness.engines.lmeval.results import build_record, rule_for
    from harness.engines.lmeval.tasks import nltk_data, task_sources
    from harness.settings import from_env
    from harness.store import RunDir

    spec = get_suite(suite)
    ctx = RunContext(settings=from_env(), run=RunDir(tmp_path / "run"), backend=BackendOptions(device="cpu"),
                     options=RunOptions(data_dir=str(mirror) if mirror else None))
    sources = task_sources(spec, ctx, tmp_path / "tasks")
    manager = TaskManager(include_path=[str(p) for p in sources.include_paths], include_defaults=False)
    with nltk_data(spec, ctx):
        results = lm_eval.simple_evaluate(model=RandomLM(3), tasks=[sources.task], task_manager=manager,
                                          num_fewshot=spec.num_fewshot, log_samples=True, random_seed=0)
    record = build_record(spec, results, model="random", source="run")
    return record, lmeval_items(results["samples"], sources.task, rule_for(spec).filter)


LM_EVAL_SUITES = ["bbh", "gpqa", "math_lvl5", "musr", "mmlu_pro", "arc_challenge", "truthfulqa_mc2", "winogrande",
                  "gsm8k", "hellaswag", "mmlu"]


@pytest.mark.slow
@pytest.mark.parametrize("suite", LM_EVAL_SUITES)
def test_lm_eval_statistics_reproduce_lm_evals_aggregation(suite: str, tmp_path: Path) -> None:
    from tests.test_lmeval_run import FIXTURES

    record, rows = _lm_eval_run(suite, tmp_path, FIXTURES)
    assert rows and record.coverage and len(rows) == record.coverage.scored
    _assert_statistics_reproduce(record, rows)
    assert set(record.metrics) <= set(statistics_for(suite))


@pytest.mark.slow
def test_ifeval_statistics_on_the_541_real_prompts(tmp_path: Path) -> None:
    from harness.settings import from_env

    if not (from_env().data_dir / "ifeval" / "manifest.json").is_file():
        pytest.skip("IFEval data not pulled (sppo-bench data pull --suites ifeval)")
    record, rows = _lm_eval_run("ifeval", tmp_path, None)
    assert len(rows) == 541 and 0 < record.metrics["strict_acc"].value < 100
    assert all(r.scores["inst_level_strict_n"] >= 1 for r in rows)
    _assert_statistics_reproduce(record, rows)
    assert np.isclose(statistics_for("ifeval")["inst_level_strict_acc"].value(rows),
                      record.metrics["inst_level_strict_acc"].value)
