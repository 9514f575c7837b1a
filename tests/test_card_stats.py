"""Cards from a run directory: every number with its n and 95% interval, the section "Iteration vs previous and vs
base", footnotes from record notes, judge calibration and checkpoint fingerprints.

The golden card pins the layout; the numbers in it are checked here against computations written in the test (numpy
bootstraps by hand, scipy's exact binomial test for McNemar, statsmodels' Holm), not only pinned."""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binomtest, norm
from statsmodels.stats.multitest import multipletests

from harness import cards, tables
from harness.cardparse import markdown_tables, parse_card
from harness.compare import Side
from harness.records import Coverage, Metric, Provenance, ResultRecord
from harness.store import RunDir, read_items
from tests.fixtures.synthetic_iterations import LABELS, alpaca_judge, write_iterations_run

GOLDEN = Path(__file__).parent / "golden" / "iterations.card.md"
Z = norm.ppf(0.975)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> RunDir:
    return write_iterations_run(tmp_path_factory.mktemp("iterations") / "run")


@pytest.fixture(scope="module")
def card(run: RunDir) -> str:
    from harness.cli import main

    out = run.root.parent / "card.md"
    assert main(["report", "--run", str(run.root), "--out", str(out), "--no-plots", "--no-eval-results"]) == 0
    return out.read_text()


def _items(run: RunDir, label: str, suite: str, key: str) -> np.ndarray:
    return np.array([r.scores[key] for r in read_items(run.items_path(label, None, suite))])


def _cell(card: str, heading: str, label: str, header: str) -> str:
    """The cell of `label`'s row under `header` in the first table after the heading containing `heading`."""
    body = card.split(heading, 1)[1]
    (_, head, rows), *_ = markdown_tables(body)
    (row,) = [r for r in rows if r[0] == label]
    return row[head.index(header)]


def _section(card: str) -> list[dict[str, str]]:
    body = card.split("## Iteration vs previous and vs base")[1]
    (_, header, rows), *_ = markdown_tables(body)
    return [dict(zip(header, row, strict=True)) for row in rows]


def _bracket(text: str) -> tuple[float, float]:
    low, high = re.search(r"\[([-+\d.]+), ([-+\d.]+)\]", text).groups()  # type: ignore[union-attr]
    return float(low), float(high)


def test_iteration_card_matches_the_golden_card(card):
    assert card == GOLDEN.read_text(), f"card changed; if intended, regenerate {GOLDEN} from this card"


def test_cell_intervals_agree_with_a_bootstrap_written_here(run, card):
    """GSM8K (0/1) and AlpacaEval win rate (preferences in [1, 2]): the card's percentile bootstrap against a textbook
    bootstrap loop on another seed; agreement to a tenth of the standard error (Monte Carlo noise is ~2% of it)."""
    rng = np.random.default_rng(12345)
    for suite, key, heading, header, shift in (("gsm8k", "exact_match", "Open LLM Leaderboard Evaluation", "gsm8k", 0.0),
                                               ("alpaca_eval", "preference", "AlpacaEval Leaderboard", "Win Rate", -1.0)):
        x = 100.0 * (_items(run, LABELS[2], suite, key) + shift)
        means = np.array([x[rng.integers(0, len(x), len(x))].mean() for _ in range(20_000)])
        low, high = np.percentile(means, [2.5, 97.5])
        se = x.std(ddof=1) / math.sqrt(len(x))
        text = _cell(card, heading, LABELS[2], header)
        assert float(text.split(" [")[0]) == pytest.approx(x.mean(), abs=0.006) and text.endswith(f"n={len(x)}")
        card_low, card_high = _bracket(text)
        assert card_low == pytest.approx(low, abs=0.1 * se) and card_high == pytest.approx(high, abs=0.1 * se)


def test_iteration_deltas_and_intervals_agree_with_a_paired_bootstrap_written_here(run, card):
    rows = {(r["Suite: metric"].split(":")[0], r["Comparison"]): r for r in _section(card)}
    pref = [_items(run, label, "alpaca_eval", "preference") for label in LABELS]
    d = 100 * (pref[2] - pref[1])  # Iter 2 - Iter 1, per instruction
    row = rows[("alpaca_eval", "Iter 2 vs Iter 1")]
    assert row["Δ [95% CI]"].startswith(f"{d.mean():+.2f} [")
    rng = np.random.default_rng(99)
    boot = np.array([d[rng.integers(0, len(d), len(d))].mean() for _ in range(20_000)])
    low, high = _bracket(row["Δ [95% CI]"])
    se = d.std(ddof=1) / math.sqrt(len(d))
    assert low == pytest.approx(np.percentile(boot, 2.5), abs=0.1 * se)
    assert high == pytest.approx(np.percentile(boot, 97.5), abs=0.1 * se)
    assert row["n"] == str(len(d))


def test_mcnemar_and_holm_across_the_whole_section(run, card):
    """p (Holm) is statsmodels' Holm over raw p-values computed here for every row of the section: McNemar's exact
    binomial test (scipy) for GSM8K's 0/1 accuracy, and a textbook paired bootstrap for the others (AlpacaEval
    per-instruction preferences, Arena-Hard's Bradley-Terry score from each question's battles, MT-Bench resampled by
    question). Agreement within four Monte Carlo standard errors of a bootstrap p (the card's 10,000 resamples and these
    20,000), times the row's Holm factor."""
    section = _section(card)
    n_tests = sum(r["p (Holm)"] != "—" for r in section)
    assert f"Holm-adjusted across the {n_tests}\ntests" in card
    name = {(1, 0): "Iter 1 vs base", (2, 1): "Iter 2 vs Iter 1", (2, 0): "Iter 2 vs base"}
    keys, raw = [], []
    rng = np.random.default_rng(2024)
    for suite in ("alpaca_eval", "arena_hard", "gsm8k", "mt_bench"):
        for after, before in ((1, 0), (2, 1), (2, 0)):
            keys.append((suite, name[(after, before)]))
            raw.append(_raw_p(run, suite, before, after, rng))
    expected = multipletests(raw, method="holm")[1]
    by_row = {(r["Suite: metric"].split(":")[0], r["Comparison"]): r for r in section}
    assert len(by_row) == len(keys) == n_tests
    for key, p, p_raw in zip(keys, expected, raw, strict=True):
        shown = by_row[key]["p (Holm)"]
        if shown == "<0.001":
            assert p < 0.002, key
            continue
        half = min(p_raw, 1.0) / 2  # each tail's share
        noise = 2 * math.sqrt(half * (1 - half)) * math.sqrt(1 / 10_000 + 1 / 20_000)
        factor = p / p_raw if p < 1.0 else 1.0
        assert float(shown) == pytest.approx(p, abs=4 * factor * noise + 0.0005), key
    gsm = by_row[("gsm8k", "Iter 2 vs Iter 1")]
    assert gsm["p (Holm)"] == "<0.001" and gsm["Test"].startswith("McNemar")


# Arena-Hard v0.1 battles of one game's verdict, from the model's side (upstream get_battles_from_row: game 1 has the
# baseline as A; a ">>" verdict counts 3 battles; points = wins + ties / 2).
_GAME_1 = {"A>>B": (0, 3), "A>B": (0, 1), "A=B": (0.5, 1), "B>A": (1, 1), "B>>A": (3, 3)}
_GAME_2 = {"A>>B": (3, 3), "A>B": (1, 1), "A=B": (0.5, 1), "B>A": (0, 1), "B>>A": (0, 3)}


def _units(run: RunDir, suite: str, label: str) -> np.ndarray:
    """Per resampling unit, the columns whose sums give the metric: (numerator, denominator)."""
    rows = read_items(run.items_path(label, None, suite))
    if suite == "arena_hard":
        return np.array([[sum(t[g][i] for t, g in zip((_GAME_1, _GAME_2), r.games or [], strict=False) if g in t)
                          for i in (0, 1)] for r in rows], dtype=float)
    if suite == "mt_bench":
        by_question: dict[str, list[float]] = {}
        for r in rows:
            by_question.setdefault(r.item, []).append(r.scores["rating"])
        return np.array([[sum(v), len(v)] for v in by_question.values()])
    if suite == "alpaca_eval":
        return np.array([[100 * (r.scores["preference"] - 1), 1.0] for r in rows])
    return np.array([[100 * r.scores["exact_match"], 1.0] for r in rows])


def _raw_p(run: RunDir, suite: str, before: int, after: int, rng: np.random.Generator) -> float:
    a, b = (_units(run, suite, LABELS[t]) for t in (before, after))
    if suite == "gsm8k":
        only_a, only_b = int(np.sum((a[:, 0] > 0) & (b[:, 0] == 0))), int(np.sum((a[:, 0] == 0) & (b[:, 0] > 0)))
        return 1.0 if only_a + only_b == 0 else binomtest(min(only_a, only_b), only_a + only_b, 0.5).pvalue
    factor = 100.0 if suite == "arena_hard" else 1.0
    d = np.empty(20_000)
    for i in range(len(d)):
        pick = rng.integers(0, len(a), len(a))
        sa, sb = a[pick].sum(axis=0), b[pick].sum(axis=0)
        d[i] = factor * (sb[0] / sb[1] - sa[0] / sa[1])
    return min(1.0, 2 * (min(np.sum(d <= 0), np.sum(d >= 0)) + 1) / (len(d) + 1))


def test_findings_say_no_significant_change_exactly_when_holm_p_is_at_least_005(card):
    for row in _section(card):
        p = row["p (Holm)"]
        significant = p == "<0.001" or float(p) < 0.05
        assert (row["Finding"] == "no significant change") is (not significant), row
        if significant:
            sign = row["Δ [95% CI]"][0]
            assert row["Finding"] == ("**significant rise**" if sign == "+" else "**significant drop**")


def test_length_gaming_warning_names_the_absent_lc(card):
    warnings = [line for line in card.splitlines() if line.startswith("- **Length gaming?**")]
    assert [w.split(":")[0] for w in warnings] == ["- **Length gaming?** Iter 2 vs Iter 1",
                                                   "- **Length gaming?** Iter 2 vs base"]
    assert all("length-controlled win rate, which would tell length from quality, is absent" in w for w in warnings)
    assert "Iter 1 vs base" not in " ".join(warnings)  # the win rate fell: no warning


def test_notes_calibration_and_checkpoints(card):
    assert card.count("df_gamed.csv") == 1  # one footnote for three records
    assert "- Note, AlpacaEval 2 (all rows): LC win rate unavailable: alpaca_eval's GLM needs df_gamed.csv" in card
    assert ("agrees with the official judge on 53% of 60 published pairs (always answering the majority verdict: "
            "55%), κ 0.02") in card and "plumbing check, not a quality measure" in card
    assert "`mt_bench/single-v1@SmolLM2` is not the official judge" in card and "Not calibrated" in card
    for t, label in enumerate(LABELS):
        sha = hashlib.sha256(f"weights of {label}".encode()).hexdigest()[:12]
        assert f"| {label} | runs/smoke/checkpoints/iter{t} | `{sha}` |" in card


def test_run_card_imports_back_to_its_numbers_with_intervals_and_n(run, card):
    again = {(r.model, r.suite): r for r in parse_card(card, source="card.md").records}
    assert len(again) == 12  # the iteration and checkpoint tables are not read as results
    gsm = again[(LABELS[2], "gsm8k")].metrics["exact_match"]
    assert (gsm.value, gsm.n) == (54.0, 200) and gsm.ci_low is not None and gsm.ci_low < 54.0 < gsm.ci_high


def record(suite: str, metrics: dict[str, Metric], **kw) -> ResultRecord:
    return ResultRecord(model="m", suite=suite, metrics=metrics, provenance=Provenance(source="run"), **kw)


def test_interval_without_items_from_stderr_else_binomial_and_the_footnote_says_which():
    text = cards.render_card([record("gsm8k", {"exact_match": Metric(value=28.5, n=200)}),
                              record("winogrande", {"acc": Metric(value=60.0, stderr=1.5, n=1267)})], None, "x")
    half = 100 * Z * math.sqrt(0.285 * 0.715 / 200)
    assert f"| 28.5 [{28.5 - half:.2f}, {28.5 + half:.2f}] n=200 |" in text
    assert f"60.0 [{60 - Z * 1.5:.2f}, {60 + Z * 1.5:.2f}] n=1267" in text
    assert "binomial, value ± 1.96 × √(p(1−p)/n): gsm8k" in text
    assert "value ± 1.96 × the recorded standard error: winogrande" in text


def test_partial_record_counts_items_out_of_the_whole_suite():
    r = record("alpaca_eval", {"win_rate": Metric(value=50.0)}, status="partial", limit=2,
               coverage=Coverage(total=2, scored=2, available=805))
    assert "† Partial: m, AlpacaEval 2: 2 of 805 items scored, --limit 2." in cards.render_card([r], None, "x")
    assert cards.coverage_text(r.model_copy(update={"coverage": Coverage(total=10, scored=8, failed=2,
                                                                         available=805)})) \
        == "8 of 805 items scored, 10 attempted, 2 failed, --limit 2"


def test_calibration_for_another_judge_fingerprint_is_flagged():
    judge = alpaca_judge().model_copy(update={"fingerprint": "0" * 64})
    text = cards.render_card([record("alpaca_eval", {"win_rate": Metric(value=5.0)}, judge=judge)], None, "x")
    assert "measured for judge fingerprint ffffffffffff, not this judge's" in text


def test_length_gaming_when_lc_is_present_but_flat():
    from harness.cards.iterations import Pair, length_gaming

    def side(win: float, lc: float, length: float) -> Side:
        return Side("x", "t", {"alpaca_eval": record("alpaca_eval", {"win_rate": Metric(value=win),
                                                                     "lc_win_rate": Metric(value=lc),
                                                                     "avg_length": Metric(value=length)})})

    pair = Pair("a", "b", "Iter 2 vs Iter 1")
    assert length_gaming(side(20, 25, 1800), side(24, 24.5, 2000), pair) == (
        "**Length gaming?** Iter 2 vs Iter 1: the AlpacaEval win rate rose (+4.00) with the average length "
        "(+200 characters) while the length-controlled win rate did not (-0.50).")
    assert length_gaming(side(20, 25, 1800), side(24, 26, 2000), pair) is None  # LC rose too
    assert length_gaming(side(20, 25, 1800), side(24, 24, 1700), pair) is None  # shorter answers


def test_reference_cards_get_no_interval_no_section_and_round_trip():
    """A published card's records carry no n or CI: none is invented (the seed golden test pins the whole card)."""
    from harness.store import load_reference

    ref = load_reference(Path(__file__).resolve().parents[1] / "results" / "reference" / "Mistral7B-PairRM-SPPO-Iter1.json")
    text = cards.render_card(ref.records, subject=ref.card_model, source="x")
    assert " n=" not in text and "`[low, high]`" not in text and "Iteration vs previous" not in text
    assert tables.rows(parse_card(text, "x.md").records) == tables.rows(ref.records)


def test_leaderboard_average_interval_from_its_members_standard_errors():
    members = {"ifeval": ("strict_acc", 50.0, 2.0), "bbh": ("acc_norm", 20.0, 0.5), "math_lvl5": ("exact_match_original",
               2.0, 0.4), "gpqa": ("acc_norm", 4.0, 1.0), "musr": ("acc_norm", 8.0, 1.5), "mmlu_pro": ("acc", 18.0, 0.3)}
    recs = [record(s, {k: Metric(value=v, stderr=se, n=100)}) for s, (k, v, se) in members.items()]
    text = cards.render_card(cards.with_averages(recs), subject=None, source="x")
    half = Z * math.sqrt(sum(se**2 for *_, se in members.values())) / 6
    assert f"| Avg. | 17.00 [{17 - half:.2f}, {17 + half:.2f}] n=600 |" in text
    assert "from the member suites' standard errors" in text
