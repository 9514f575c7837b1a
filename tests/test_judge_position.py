"""Local pairwise judges are position-free: every judgment asks both orders and combines them by the mean of the two
orders' log-odds, P(a > b) = sigma((L_ab - L_ba) / 2).

Judges of known behaviour, written here: one that only follows the slot (always prefers the output shown first), one
that follows the content (prefers the longer output) with a pull towards slot 1 on top, and one that says 0.55 for the
same answer in each order. Expected values are computed in the tests from those definitions."""

from __future__ import annotations

import json
import math
import random

import pytest

from benchmarks.alpaca_eval import judging as alpaca
from benchmarks.arena_hard import judging as arena
from harness.backends.base import Completion
from harness.engines.context import Injected
from harness.judges.calls import JudgeCache
from harness.judges.pairwise import COMBINATION, LocalJudge, both_orders_probability
from harness.settings import Settings
from harness.sppo import objective
from harness.sppo.probs import preference_matrix
from harness.sppo.sample import Prompt, SampledPrompt

OUTPUTS = ["Short.", "A somewhat longer answer.", "The longest answer of them all, by a clear margin here.", "Mid-size one."]
ROWS = [{"instruction": f"Question {i}: explain topic {i}.", "output_1": OUTPUTS[i % 4], "generator_1": "baseline",
         "output_2": OUTPUTS[(i + 1) % 4], "generator_2": "model", "dataset": "test"} for i in range(8)]


def _no_cache() -> JudgeCache:
    return JudgeCache(None, "test")


def _swapped(row: dict) -> dict:
    return {**row, "output_1": row["output_2"], "output_2": row["output_1"], "generator_1": row["generator_2"],
            "generator_2": row["generator_1"]}


class SlotJudge:
    """ChoiceScorer that only follows the position: the first choice (the slot shown first: m, A) gets 0.9."""

    name = "slot-judge"
    fingerprint = "slot-judge"

    def choice_logprobs(self, requests):
        out = []
        for r in requests:
            rest = math.log(0.1 / max(1, len(r.choices) - 1))
            out.append({c: (math.log(0.9) if i == 0 else rest) for i, c in enumerate(r.choices)})
        return out


class LongerJudge:
    """ChoiceScorer that prefers the longer of the two outputs it finds in the prompt, with log-odds
    (len(first) - len(second)) / 20 plus a pull of +1 towards the output shown first."""

    name = "longer-judge"
    fingerprint = "longer-judge"
    BIAS = 1.0

    def log_odds(self, text: str) -> float:
        shown = sorted((text.index(o), o) for o in OUTPUTS if o in text)
        assert len(shown) == 2, "the prompt must hold two of the outputs"
        return (len(shown[0][1]) - len(shown[1][1])) / 20 + self.BIAS

    def choice_logprobs(self, requests):
        out = []
        for r in requests:
            x = self.log_odds("\n".join(m["content"] for m in r.messages) + r.assistant_prefix)
            first, second = -math.log1p(math.exp(-x)), -math.log1p(math.exp(x))
            if set(r.choices) <= {"A", "B", "m", "M"}:
                out.append(dict(zip(r.choices, (first, second), strict=True)))
            else:  # Arena-Hard's second reads (strength of the verdict): flat
                out.append({c: -math.log(len(r.choices)) for c in r.choices})
        return out


# ---- the combination itself ---------------------------------------------------------------------------------------


def test_the_combination_is_antisymmetric_exactly_and_means_the_log_odds():
    rng = random.Random(7)
    for _ in range(2000):
        a, b = rng.uniform(-30, 30), rng.uniform(-30, 30)
        assert both_orders_probability(a, b) == 1.0 - both_orders_probability(b, a)  # exactly, not approximately
        assert both_orders_probability(a, b) == pytest.approx(1 / (1 + math.exp(-(a - b) / 2)), rel=1e-12)
    assert both_orders_probability(2.5, 2.5) == 0.5


# ---- a judge that only follows the slot -----------------------------------------------------------------------------


def test_a_position_only_judge_gives_one_half_on_every_alpaca_eval_pair():
    annotations = alpaca.annotate(alpaca.LOCAL, ROWS, SlotJudge(), _no_cache())
    assert [a["preference"] for a in annotations] == [1.5] * len(ROWS)
    assert all(a["combination"] == COMBINATION for a in annotations)
    # one order alone, the judge picks slot 1 (m): output_1 first -> 2 - 0.9 = 1.1; output_2 first -> 1.9 on the row
    for a in annotations:
        assert a["single_order"]["output_1_first"] == pytest.approx(1.1)
        assert a["single_order"]["output_2_first"] == pytest.approx(1.9)


def test_a_position_only_judge_ties_every_arena_hard_game_and_every_sppo_pair():
    items = [{"question_id": str(i), "question": r["instruction"], "answer": r["output_2"],
              "baseline_answer": r["output_1"]} for i, r in enumerate(ROWS)]
    rows = arena.judge(arena.LOCAL, items, "model", SlotJudge(), _no_cache())
    assert [g["score"] for r in rows for g in r["games"]] == ["A=B"] * (2 * len(items))
    ranked = LocalJudge(SlotJudge()).rank([SampledPrompt("p", "Say hi.", OUTPUTS[:2], [0, 1], ["stop"] * 2)])
    assert preference_matrix(ranked[0].scores)[0][1] == 0.5


def test_calibration_of_a_position_only_judge_shows_the_raw_position_bias(tmp_path):
    from harness.calibration import calibrate, markdown, reference_files, to_json

    rows = [{**r, "generator_1": "gpt4_1106_preview", "annotator": "weighted_alpaca_eval_gpt4_turbo",
             "preference": 1.9 if i % 2 else 1.1} for i, r in enumerate(ROWS)]
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(rows))
    result = calibrate(Settings(home=tmp_path / "home", offline=True), reference_files([path]), "local",
                       injected=Injected(judge=SlotJudge()))
    raw = result.single_order
    assert raw is not None and raw.reads == 2 * len(rows)
    assert raw.position_bias == 1.0 and raw.position_consistency == 0.0
    assert result.summary.position_consistency == 0.0
    # the harness's verdict is 1.5 (no preference) on every pair: win rate 50, never "model preferred"
    assert [v.judge for v in result.verdicts] == [1.5] * len(rows) and result.judge_win_rate == 50.0
    assert result.summary.agreement == pytest.approx(0.5) and result.combination == COMBINATION
    text = markdown(result)
    assert "| position bias (reads won by the output shown first; 50% = none) | 100.0% |" in text
    assert to_json(result)["single_order"]["position_bias"] == 1.0


# ---- a judge that follows the content (with a pull towards slot 1) -------------------------------------------------


def test_a_content_judge_is_unaffected_by_swapping_the_outputs():
    judge = LongerJudge()
    there = alpaca.annotate(alpaca.LOCAL, ROWS, judge, _no_cache())
    back = alpaca.annotate(alpaca.LOCAL, [_swapped(r) for r in ROWS], judge, _no_cache())
    for row, a, b in zip(ROWS, there, back, strict=True):
        # P(output_2 > output_1) = preference - 1; swapping the outputs gives exactly the complement
        assert (a["preference"] - 1) + (b["preference"] - 1) == pytest.approx(1.0, abs=1e-12)
        # the slot's pull cancels: the verdict is sigma of the length term alone
        expected = 1 / (1 + math.exp(-(len(row["output_2"]) - len(row["output_1"])) / 20))
        assert a["preference"] - 1 == pytest.approx(expected, abs=1e-12)
        assert (a["preference"] > 1.5) == (len(row["output_2"]) > len(row["output_1"]))


def test_a_content_judge_gives_mirrored_arena_hard_verdicts_when_the_answers_swap():
    judge = LongerJudge()
    items = [{"question_id": str(i), "question": r["instruction"], "answer": r["output_2"],
              "baseline_answer": r["output_1"]} for i, r in enumerate(ROWS)]
    swapped = [{**it, "answer": it["baseline_answer"], "baseline_answer": it["answer"]} for it in items]
    there = arena.judge(arena.LOCAL, items, "model", judge, _no_cache())
    back = arena.judge(arena.LOCAL, swapped, "model", judge, _no_cache())
    for item, a, b in zip(items, there, back, strict=True):
        game_1, game_2 = (g["score"] for g in a["games"])
        assert game_2 == arena.MIRROR[game_1]  # the two games of one question agree about who won
        assert [g["score"] for g in b["games"]] == [arena.MIRROR[game_1], game_1]
        # game 1 shows the baseline as A: the longer answer wins
        longer_model = len(item["answer"]) > len(item["baseline_answer"])
        assert game_1.startswith("B") == longer_model


# ---- the SPPO preference probability ------------------------------------------------------------------------------


class SameIn2Orders:
    """ChoiceScorer: P(A) = 0.55 when the iteration's answer is A, 0.45 when the base's answer is A (so 0.55 for the
    iteration in each order)."""

    name = fingerprint = "same-in-both-orders"

    def choice_logprobs(self, requests):
        out = []
        for r in requests:
            text = r.messages[0]["content"]
            p = 0.55 if text.index("ITERATION") < text.index("BASE") else 0.45
            out.append({"A": math.log(p), "B": math.log(1 - p)})
        return out


def test_sppo_probability_of_0_55_in_each_order_is_0_55():
    prompts = [Prompt("a", "Say something.")]
    judged = objective.judge_pairs(LocalJudge(SameIn2Orders()), prompts, [Completion("ITERATION answer", 1, 2)],
                                   [Completion("BASE answer", 1, 2)])
    assert judged[0] is not None and judged[0].preference == pytest.approx(0.55, abs=1e-12)  # the sum would give 0.599
    assert COMBINATION in judged[0].account


# ---- unreadable verdicts ---------------------------------------------------------------------------------------------


def test_a_record_with_unparsable_verdicts_is_partial_with_the_count():
    from benchmarks.alpaca_eval.suite import alpaca_record
    from harness.engines.judged import Header
    from harness.records import JudgeInfo, Provenance

    header = Header(model="m", variant=None, judge=JudgeInfo(id="j", model="x", prompt_hash="h", backend="b",
                                                             official=False), provenance=Provenance(source="run"))
    annotations = [{"instruction": r["instruction"], "output_1": r["output_1"], "output_2": r["output_2"],
                    "generator_1": "b", "generator_2": "m", "preference": 1.8, "unparsed": False} for r in ROWS]
    whole = alpaca_record(header, annotations, list(range(8)), None, total=8, limit_note="subset")
    assert whole.status == "complete"
    annotations[3] = {**annotations[3], "preference": None, "unparsed": True}
    record = alpaca_record(header, annotations, list(range(8)), None, total=8, limit_note="subset")
    assert record.status == "partial" and record.coverage is not None and record.coverage.failed == 1
    assert any(n.startswith("1 verdicts unparsable") for n in record.notes)


@pytest.mark.parametrize("suite", ["mt_bench", "arena_hard"])
def test_unparsable_verdicts_make_the_other_judged_records_partial(suite):
    from harness.engines.judged import Header
    from harness.records import JudgeInfo, Provenance

    header = Header(model="m", variant=None, judge=JudgeInfo(id="j", model="x", prompt_hash="h", backend="b",
                                                             official=False), provenance=Provenance(source="run"))
    if suite == "mt_bench":
        from benchmarks.mt_bench.suite import mt_record

        rows = [{"question_id": q, "turn": t, "score": 7.0} for q in (1, 2) for t in (1, 2)]
        assert mt_record(header, rows).status == "complete"
        rows[1] = {**rows[1], "score": -1}
        record = mt_record(header, rows)
    else:
        from benchmarks.arena_hard.suite import arena_record

        rows = [{"question_id": q, "model": "m", "games": [{"score": "A>B"}, {"score": "B>A"}]} for q in range(3)]
        assert arena_record(header, rows, None).status == "complete"
        rows[1] = {**rows[1], "games": [{"score": None}, {"score": "B>A"}]}
        record = arena_record(header, rows, None)
    assert record.status == "partial" and record.coverage is not None and record.coverage.failed == 1

