"""Verdicts that follow the answers (issue 18 items 3-5, issue 21's gate): the paired test runs on the scale of the
reported Δ (the audit's GPQA case), MT-Bench is resampled by question, `check` and `compare` refuse to pair numbers
from different judges, and a number that is not finite never passes the gate.

Expected values come from computations written here: the leaderboard's normalization formula, scipy's exact binomial
test, a question-cluster bootstrap loop in numpy."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binomtest

from harness import check
from harness.cards.iterations import finding, iteration_section
from harness.catalog import suites
from harness.compare import BOOTSTRAP, MCNEMAR, NOT_COMPARABLE, Side, compare
from harness.errors import UserError
from harness.records import ItemRow, JudgeInfo, Metric, Provenance, ResultRecord
from harness.scoring.items import statistic_for
from harness.store import RunDir, write_reference

GPQA_SUBTASKS = (("leaderboard_gpqa_diamond", 198), ("leaderboard_gpqa_extended", 546), ("leaderboard_gpqa_main", 448))


def _record(label: str, suite: str, metrics: dict[str, Metric], iteration: int | None = None,
            judge: JudgeInfo | None = None, source: str = "run") -> ResultRecord:
    suites()
    return ResultRecord(model=label, iteration=iteration, suite=suite, status="complete", metrics=metrics, judge=judge,
                        provenance=Provenance(source=source))


# ------------------------------------------------------------------------------ the test is on the reported scale

def _gpqa(correct: np.ndarray) -> list[ItemRow]:
    names = [name for name, size in GPQA_SUBTASKS for _ in range(size)]
    return [ItemRow(item=str(i), subtask=s, scores={"acc_norm": float(c)}) for i, (s, c) in enumerate(zip(names, correct,
                                                                                                          strict=True))]


def _leaderboard_norm(x: float, chance: float = 0.25) -> float:
    """The Open LLM Leaderboard v2 normalization, written out: 0 below chance, else (x - chance)/(1 - chance) x 100."""
    return 0.0 if x < chance else (x - chance) / (1 - chance) * 100


def test_gpqa_audit_case_normalized_delta_zero_is_no_significant_change() -> None:
    """Raw 20.1% -> 24.3% (b = 20 right in A only, c = 70 right in B only) is 0.0 -> 0.0 on the leaderboard scale: the
    card's headline Δ is 0 and its finding "no significant change"; McNemar stays on the raw-accuracy row."""
    n = sum(size for _, size in GPQA_SUBTASKS)
    rng = np.random.default_rng(3)
    a = np.zeros(n, bool)
    a[rng.choice(n, 240, replace=False)] = True
    b = a.copy()
    b[rng.choice(np.flatnonzero(a), 20, replace=False)] = False
    b[rng.choice(np.flatnonzero(~a), 70, replace=False)] = True
    assert (round(100 * a.mean(), 1), round(100 * b.mean(), 1)) == (20.1, 24.3)
    records, items = [], {}
    for t, (label, correct) in enumerate((("base", a), ("Iter 1", b))):
        metrics = {"acc_norm": Metric(value=_leaderboard_norm(correct.mean())),
                   "acc_norm_raw": Metric(value=100 * correct.mean())}
        records.append(_record(label, "gpqa", metrics, iteration=t))
        items[label] = _gpqa(correct)
    side = {r.label: Side(r.label, "test", {"gpqa": r}, {"gpqa": items[r.label]}) for r in records}
    rows = {r.metric: r for r in compare(side["base"], side["Iter 1"], resamples=4000)}
    head, raw = rows["acc_norm"], rows["acc_norm_raw"]
    assert head.delta == 0.0 == _leaderboard_norm(b.mean()) - _leaderboard_norm(a.mean())
    assert head.method == BOOTSTRAP and head.p_value is not None and head.p_value >= 0.05
    assert finding(replace(head, p_holm=head.p_value)) == "no significant change"
    assert raw.method == MCNEMAR and raw.p_value == pytest.approx(binomtest(20, 90, 0.5).pvalue, rel=1e-9)
    assert finding(replace(raw, p_holm=raw.p_value)) == "**significant rise**"
    # the card's section (headline only) says the same
    section = iteration_section(records, lambda r: items[r.label], resamples=4000)
    assert section is not None
    (cells,) = section.rows
    assert cells[3].startswith("+0.00") and cells[-1] == "no significant change" and cells[6] == BOOTSTRAP


def test_a_significant_p_never_names_a_direction_its_delta_does_not_have() -> None:
    from harness.compare import Row

    base = Row("gsm8k", "exact_match", 20.0, 20.0, 0.0, -0.5, 0.5, 0.001, 0.001, 100, MCNEMAR)
    assert finding(base) == "no significant change"
    assert finding(replace(base, delta=-1.0, b=19.0, ci_low=-2.0, ci_high=-0.2)) == "**significant drop**"
    assert finding(replace(base, delta=-1.0, b=19.0, ci_low=0.2, ci_high=2.0)) == "test and Δ disagree (see notes)"


# ------------------------------------------------------------------------------------- MT-Bench, by question

def _mt_rows(ratings: np.ndarray) -> list[ItemRow]:
    return [ItemRow(item=str(81 + q), turn=t + 1, scores={"rating": float(ratings[q, t])})
            for q in range(len(ratings)) for t in range(2)]


def _correlated_turns(rng: np.random.Generator, questions: int) -> tuple[np.ndarray, np.ndarray]:
    """Ratings 1..10 with a strong per-question effect shared by both turns and both models."""
    effect = rng.normal(0, 2.0, (questions, 1))
    a = np.clip(np.round(5 + effect + rng.normal(0, 0.7, (questions, 2))), 1, 10)
    b = np.clip(np.round(5.3 + effect + 1.5 * rng.normal(0, 1, (questions, 1)) + rng.normal(0, 0.7, (questions, 2))),
                1, 10)
    return a, b


def test_mt_bench_compare_matches_a_question_cluster_bootstrap() -> None:
    rng = np.random.default_rng(11)
    questions = 40
    a, b = _correlated_turns(rng, questions)
    records = [_record(label, "mt_bench", {"average": Metric(value=float(x.mean()))})
               for label, x in (("A", a), ("B", b))]
    sides = [Side(r.label, "test", {"mt_bench": r}, {"mt_bench": _mt_rows(x)}) for r, x in zip(records, (a, b),
                                                                                                strict=True)]
    (row,) = compare(*sides, resamples=20_000, seed=5)
    # the textbook cluster bootstrap: draw questions with replacement, both turns of a drawn question together
    d = b.mean(axis=1) - a.mean(axis=1)  # per question (every question has both turns)
    draws = np.array([d[rng.integers(0, questions, questions)].mean() for _ in range(20_000)])
    low, high = np.percentile(draws, [2.5, 97.5])
    se_cluster = draws.std(ddof=1)
    assert row.n_paired == questions and row.delta == pytest.approx(d.mean())
    assert row.ci_low == pytest.approx(low, abs=0.1 * se_cluster)
    assert row.ci_high == pytest.approx(high, abs=0.1 * se_cluster)
    # resampling the 80 (question, turn) rows as if independent gives a visibly narrower interval on these data
    flat = (b - a).ravel()
    se_rows = flat.std(ddof=0) / math.sqrt(len(flat))
    assert se_rows < 0.85 * se_cluster


def test_mt_bench_interval_and_n_count_questions() -> None:
    rng = np.random.default_rng(12)
    ratings, _ = _correlated_turns(rng, 30)
    rows = _mt_rows(ratings)
    interval = statistic_for("mt_bench", "average").interval(rows, resamples=20_000, seed=1)  # type: ignore[union-attr]
    q = ratings.mean(axis=1)
    draws = np.array([q[rng.integers(0, 30, 30)].mean() for _ in range(20_000)])
    assert interval.n == 30 and interval.value == pytest.approx(ratings.mean())
    assert interval.se == pytest.approx(draws.std(ddof=1), rel=0.05)
    turn_2 = statistic_for("mt_bench", "turn_2").value(rows[:-1])  # type: ignore[union-attr]
    assert turn_2 == pytest.approx(ratings[:-1, 1].mean())  # the last question's second turn left out


# ------------------------------------------------------------------------------------------------ judges

def _local() -> JudgeInfo:
    return JudgeInfo(id="alpaca_eval/local-choice", model="HuggingFaceTB/SmolLM2-135M-Instruct", prompt_hash="ab" * 8,
                     backend="hf", official=False, fingerprint="f" * 64)


def _judged_pair(tmp_path: Path) -> tuple[Path, Path]:
    """A reference JSON of published AlpacaEval numbers (judge not recorded: the official one) and a run directory
    with the same model's numbers from the local judge."""
    ref = tmp_path / "ref.json"
    published = _record("M", "alpaca_eval", {"win_rate": Metric(value=30.0, stderr=1.5),
                                             "avg_length": Metric(value=1500.0)}, source="card")
    lm = _record("M", "gsm8k", {"exact_match": Metric(value=50.0, stderr=1.0)}, source="card")
    from harness.records import ReferenceSet

    write_reference(ref, ReferenceSet(name="M", source="test", records=[published, lm]))
    run = RunDir(tmp_path / "run")
    run.write(_record("M", "alpaca_eval", {"win_rate": Metric(value=29.5, stderr=1.5),
                                           "avg_length": Metric(value=1490.0)}, judge=_local()))
    run.write(_record("M", "gsm8k", {"exact_match": Metric(value=50.2, stderr=1.0)}))
    return ref, run.root


def test_check_refuses_to_pair_different_judges_and_fails_closed(tmp_path: Path, cli) -> None:
    ref, run = _judged_pair(tmp_path)
    code, out, err = cli("check", "--reference", ref, "--results", run)
    assert code == 1, err
    line = next(x for x in out.splitlines() if "| alpaca_eval | win_rate |" in x)
    assert "**NOT COMPARABLE**" in line and "29.50" in line
    length = next(x for x in out.splitlines() if "| alpaca_eval | avg_length |" in x)
    assert "COMPARABLE" not in length and "| info |" in length  # the answers' length does not depend on the judge
    reason = next(x for x in out.splitlines() if x.startswith("- NOT COMPARABLE"))
    assert "different judges" in reason and "official (alpaca_eval/weighted_alpaca_eval_gpt4_turbo" in reason
    assert "local (alpaca_eval/local-choice" in reason and "not comparable" in reason
    assert "--allow-judge-mismatch" in reason
    assert "| gsm8k |" in out and "pass" in next(x for x in out.splitlines() if "| gsm8k |" in x)
    code, out, err = cli("check", "--reference", ref, "--results", run, "--allow-judge-mismatch")
    assert code == 0, out
    line = next(x for x in out.splitlines() if "| alpaca_eval | win_rate |" in x)
    assert "| pass |" in line and "warning: different judges" in line and out.splitlines()[0].endswith("judges |")


def test_compare_says_not_comparable_across_judges_and_exits_1(tmp_path: Path, cli) -> None:
    ref, run = _judged_pair(tmp_path)
    code, out, _ = cli("compare", ref, run)
    assert code == 1
    line = next(x for x in out.splitlines() if x.startswith("| alpaca_eval | win_rate |"))
    assert NOT_COMPARABLE in line and "different judges" in out
    code, out, _ = cli("compare", ref, run, "--allow-judge-mismatch", "--resamples", "200")
    line = next(x for x in out.splitlines() if x.startswith("| alpaca_eval | win_rate |"))
    assert code == 0 and "unpaired normal" in line and "**different judges" in line


def test_same_judge_compares_and_a_changed_prompt_does_not() -> None:
    rec = _record("A", "alpaca_eval", {"win_rate": Metric(value=30.0, stderr=1.0)}, judge=_local())
    same = rec.model_copy(update={"model": "B"})
    other_prompt = rec.model_copy(update={"model": "B", "judge": _local().model_copy(update={"prompt_hash": "cd" * 8})})
    (c,) = check.compare([rec], [same.model_copy(update={"model": "A"})])
    assert c.verdict == "pass" and c.judges == ""
    (c,) = check.compare([rec], [other_prompt.model_copy(update={"model": "A"})])
    assert c.verdict == "not comparable" and "prompt hash" in c.reason
    a, b = (Side(r.model, "t", {"alpaca_eval": r}) for r in (rec, other_prompt))
    (row,) = compare(a, b, resamples=200)
    assert row.method == NOT_COMPARABLE and row.p_value is None and "prompt hash" in row.note


# ------------------------------------------------------------------------------------- non-finite numbers

def _with(value: float, stderr: float | None = 1.0) -> list[ResultRecord]:
    """A gsm8k record holding `value` in memory (the record model refuses it on read; a caller's object may not)."""
    metric = Metric.model_construct(value=value, stderr=stderr, ci_low=None, ci_high=None, n=None, repeat_sd=None)
    valid = _record("m", "gsm8k", {"exact_match": Metric(value=50.0)})
    return [valid.model_copy(update={"metrics": {"exact_match": metric}})]


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("two_sided", [False, True])
@pytest.mark.parametrize(("ref", "res", "what"), [
    ((NAN, 1.0), (50.0, 1.0), "reference value is nan"),
    ((50.0, 1.0), (NAN, 1.0), "result value is nan"),
    ((50.0, 1.0), (INF, 1.0), "result value is inf"),
    ((-INF, 1.0), (50.0, 1.0), "reference value is -inf"),
    ((50.0, NAN), (50.0, 1.0), "reference standard error (stderr) is nan"),
    ((50.0, 1.0), (32.5, INF), "result standard error (stderr) is inf"),
])
def test_a_non_finite_number_on_either_side_fails_the_gate(ref, res, what, two_sided) -> None:
    (c,) = check.compare(_with(*ref), _with(*res), two_sided=two_sided)
    assert c.verdict == "invalid" and what in c.reason and check.exit_code([c]) == 1
    assert "FAIL" in check.markdown([c]) and "<failure" in check.junit_xml([c])


@pytest.mark.parametrize(("abs_tol", "sigma"), [(float("nan"), 2.0), (0.5, float("inf")), (1e309, 2.0), (-1, 2.0)])
def test_non_finite_or_negative_tolerances_are_refused(abs_tol, sigma) -> None:
    with pytest.raises(UserError, match="finite number >= 0"):
        check.compare(_with(50.0), _with(32.5), abs_tol=abs_tol, sigma=sigma)


def test_a_nan_item_score_is_an_error_naming_the_item_not_an_interval_of_nan() -> None:
    rows = [ItemRow(item=str(i), scores={"exact_match": float(i % 2)}) for i in range(20)]
    rows[7] = rows[7].model_copy(update={"scores": {"exact_match": NAN}})
    statistic = statistic_for("gsm8k", "exact_match")
    assert statistic is not None
    with pytest.raises(UserError, match=r"gsm8k: item '7' has exact_match = nan, not a finite number"):
        statistic.interval(rows, resamples=200)
    good = [ItemRow(item=str(i), scores={"exact_match": 1.0}) for i in range(20)]
    sides = [Side(x, "t", {"gsm8k": _record(x, "gsm8k", {"exact_match": Metric(value=50.0)})}, {"gsm8k": r})
             for x, r in (("A", good), ("B", rows))]
    with pytest.raises(UserError, match="item '7'"):
        compare(*sides, resamples=200)


def test_a_card_we_rendered_says_which_judge_when_read_back(tmp_path: Path) -> None:
    """The card's judge footnotes travel with its numbers: re-read as a reference, a local-judge card is not
    comparable with an officially judged run, and is comparable with the run it was rendered from."""
    from harness.cardparse import parse_card
    from harness.cli import main
    from tests.fixtures.synthetic_iterations import LABELS, alpaca_judge, write_iterations_run

    run = write_iterations_run(tmp_path / "run")
    assert main(["report", "--run", str(run.root), "--out", str(tmp_path / "card.md"), "--no-plots",
                 "--no-eval-results"]) == 0
    card = parse_card((tmp_path / "card.md").read_text(), source="card.md").records
    alpaca = next(r for r in card if r.suite == "alpaca_eval" and r.label == LABELS[2])
    local = alpaca_judge()
    assert alpaca.judge is not None and (alpaca.judge.id, alpaca.judge.model, alpaca.judge.official) == (
        local.id, local.model, False) and local.prompt_hash.startswith(alpaca.judge.prompt_hash)
    arena = next(r for r in card if r.suite == "arena_hard" and r.label == LABELS[2])
    assert arena.judge is not None and arena.judge.official
    results = [r for r in run.records() if r.label == LABELS[2] and r.suite == "alpaca_eval"]
    (same,) = [c for c in check.compare(card, results) if c.metric == "win_rate" and c.model == LABELS[2]]
    assert same.verdict == "pass"
    official = [r.model_copy(update={"judge": local.model_copy(update={
        "id": "alpaca_eval/weighted_alpaca_eval_gpt4_turbo", "model": "gpt-4-1106-preview", "official": True})})
        for r in results]
    (other,) = [c for c in check.compare(card, official) if c.metric == "win_rate" and c.model == LABELS[2]]
    assert other.verdict == "not comparable" and "local (alpaca_eval/local@SmolLM2" in other.reason
