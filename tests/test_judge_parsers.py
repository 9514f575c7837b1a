"""Golden cases for every verdict parser, and the vendored constants equal FastChat's / alpaca_eval's own."""

from __future__ import annotations

import math

import pytest

from benchmarks.alpaca_eval.judging import alpaca_local_preference, alpaca_preference, unswitch_preference
from benchmarks.arena_hard.judging import arena_local_verdict, arena_verdict
from benchmarks.mt_bench.judging import MT_RATING, MT_RATING_BACKUP, mt_local_rating, mt_rating
from harness.catalog import suites
from harness.judges import JUDGES, choose_judge

suites()  # the judged suites register their judges


@pytest.mark.parametrize(("top", "expected"), [
    ([{"M": -2.3393e-06, "Based": -13.78, "m": -15.406252}], 2 - math.exp(-15.406252) / (math.exp(-15.406252)
                                                                                          + math.exp(-2.3393e-06))),
    ([{"m": math.log(0.75), "M": math.log(0.25)}], 1.25),
    ([{"m": -0.1}], 1.0),  # M absent from the top 5: probability 0, as alpaca_eval treats it
    ([{"Both": -0.1, "The": -2.0}], None),  # neither token: unparsable (alpaca_eval: NaN)
    (None, None),
    ([], None),
])
def test_alpaca_preference(top, expected):
    got = alpaca_preference(top)
    assert got == pytest.approx(expected) if expected is not None else got is None


def test_alpaca_local_and_switch():
    assert alpaca_local_preference({"m": math.log(0.2), "M": math.log(0.8)}) == pytest.approx(1.8)
    assert alpaca_local_preference({"m": -1.0}) is None
    assert alpaca_local_preference({"m": float("nan"), "M": -1.0}) is None
    assert unswitch_preference(1.8, switched=True) == pytest.approx(1.2)
    assert unswitch_preference(1.8, switched=False) == pytest.approx(1.8)
    assert unswitch_preference(None, switched=True) is None


@pytest.mark.parametrize(("text", "expected"), [
    ("My final verdict is tie: [[A=B]]", ("A=B", False)),
    ("... [[B>>A]]", ("B>>A", False)),
    ("first [[A>B]] and again [[A>B]]", ("A>B", False)),
    ("[[A>B]] no wait [[B>A]]", (None, False)),  # conflicting labels: give up, as upstream
    ("Assistant A is better.", (None, True)),  # no label: ask again
    ("[[]]", (None, True)),
])
def test_arena_verdict(text, expected):
    assert arena_verdict(text) == expected


def test_arena_local_verdict():
    lp = {"A>>B": -3.0, "A>B": -1.0, "A=B": -2.0, "B>A": -1.0, "B>>A": -4.0}
    assert arena_local_verdict(lp) == "A>B"  # tie broken by label order
    assert arena_local_verdict({"B>>A": -0.1, "A=B": -3.0}) == "B>>A"
    assert arena_local_verdict({}) is None


@pytest.mark.parametrize(("text", "expected"), [
    ("Rating: [[8]]", 8.0),
    ("Rating: [[7.5]]", 7.5),
    ("Rating: [9]", 9.0),  # FastChat's backup pattern
    ("[[3]] then [[9]]", 3.0),  # first match, as re.search
    ("I'd say eight out of ten.", -1),
    ("Rating: [[ten]]", -1),
])
def test_mt_rating(text, expected):
    assert mt_rating(text) == expected


def test_chain_reads():
    from benchmarks.arena_hard.judging import arena_chain_logprobs
    from benchmarks.mt_bench.judging import mt_chain_logprobs

    ln = math.log
    labels = arena_chain_logprobs({"A": ln(0.6), "B": ln(0.4)}, {">>B": ln(0.5), ">B": ln(0.3), "=B": ln(0.2)},
                                  {">A": ln(0.75), ">>A": ln(0.25)})
    probs = {k: math.exp(v) for k, v in labels.items()}
    assert probs == pytest.approx({"A>>B": 0.3, "A>B": 0.18, "A=B": 0.12, "B>A": 0.3, "B>>A": 0.1})
    assert arena_local_verdict(labels) == "A>>B"  # 0.3 ties B>A: label order decides
    digits = {str(d): ln(0.1) for d in range(1, 10)}
    digits["1"] = ln(0.2)
    ratings = mt_chain_logprobs(digits, {"0]]": ln(0.25), "]]": ln(0.75)})
    assert math.exp(ratings["10"]) == pytest.approx(0.05) and math.exp(ratings["1"]) == pytest.approx(0.15)
    assert sum(math.exp(v) for v in ratings.values()) == pytest.approx(1.0)


def test_mt_local_rating():
    lp = {str(i): math.log(1e-9) for i in range(1, 11)}
    lp["7"], lp["9"] = math.log(0.5), math.log(0.5)
    expected, argmax = mt_local_rating(lp)
    assert expected == pytest.approx(8.0, abs=1e-6)
    assert argmax == 7  # tie -> the lower rating
    assert mt_local_rating({}) is None
    assert mt_local_rating({"10": 0.0})[0] == pytest.approx(10.0)


def test_constants_equal_fastchat_own():
    from fastchat.llm_judge import common

    from benchmarks.mt_bench.judging import NEED_REF_CATS
    from benchmarks.mt_bench.suite import MT_TEMPERATURE

    assert MT_RATING.pattern == common.one_score_pattern.pattern
    assert MT_RATING_BACKUP.pattern == common.one_score_pattern_backup.pattern
    assert list(NEED_REF_CATS) == common.NEED_REF_CATS
    assert MT_TEMPERATURE == common.temperature_config


def test_arena_config_is_upstream_v01():
    import hashlib

    from benchmarks.arena_hard.judging import CONFIG, judge_config

    assert hashlib.sha256(CONFIG.read_bytes()).hexdigest() == \
        "6e001736bacacdb1591ffca7eec953a7089f8f5604872d1ca4f9a6f9de1ee451"
    c = judge_config()
    assert c["judge_model"] == "gpt-4-1106-preview" and c["number_of_judgment_attempts"] == 2
    assert c["regex_pattern"] == r"\[\[([AB<>=]+)\]\]"


def test_choose_judge():
    assert choose_judge("alpaca_eval", None, environ={}).official is False
    assert choose_judge("alpaca_eval", None, environ={"OPENAI_API_KEY": "x"}).official is True
    assert choose_judge("mt_bench", "local").id == "mt_bench/local-choice"
    assert choose_judge("arena_hard", "arena_hard/v0.1-gpt-4-1106-preview").official
    from harness.errors import UserError

    with pytest.raises(UserError, match="is for mt_bench"):
        choose_judge("arena_hard", "mt_bench/gpt-4-single")
    with pytest.raises(UserError, match="unknown judge"):
        choose_judge("arena_hard", "arena_hard/nope")
    assert len(JUDGES) == 6


def test_benchmark_modules_name_registered_judges():
    import benchmarks.alpaca_eval
    import benchmarks.arena_hard
    import benchmarks.mt_bench

    for module in (benchmarks.alpaca_eval, benchmarks.arena_hard, benchmarks.mt_bench):
        official, local = module.SUITE.judges
        assert JUDGES.get(official.id) is official and JUDGES.get(local.id) is local
        assert official.official and not local.official
        assert official.suite == local.suite == module.SPEC.name
