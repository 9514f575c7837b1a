"""BBH / MuSR at 1 document per subtask: a stratified bootstrap would hold every subtask fixed (a zero-wide interval), so
the items are resampled as one pool, each counting its own leaderboard-normalized score. Checked against textbook
bootstraps written here (same seed, same draws), for one-sample intervals, paired comparisons and the card's footnote;
with 2+ items per subtask the stratified bootstrap is unchanged."""

from __future__ import annotations

import re

import numpy as np
import pytest

from harness import cards
from harness.catalog import suites
from harness.records import ItemRow, Metric, Provenance, ResultRecord
from harness.scoring.items import statistics_for, table_for
from harness.scoring.uncertainty import resolve, suite_seed
from harness.stats import paired_bootstrap
from harness.store import RunDir, write_items

suites()  # the suites register themselves

# Choices per subtask of the Open LLM Leaderboard v2's BBH (lo = 1 / choices) and MuSR.
BBH = {"boolean_expressions": 2, "causal_judgement": 2, "date_understanding": 6, "disambiguation_qa": 3,
       "formal_fallacies": 2, "geometric_shapes": 11, "hyperbaton": 2, "logical_deduction_five_objects": 5,
       "logical_deduction_seven_objects": 7, "logical_deduction_three_objects": 3, "movie_recommendation": 6,
       "navigate": 2, "object_counting": 19, "penguins_in_a_table": 5, "reasoning_about_colored_objects": 18,
       "ruin_names": 6, "salient_translation_error_detection": 6, "snarks": 2, "sports_understanding": 2,
       "temporal_sequences": 4, "tracking_shuffled_objects_five_objects": 5,
       "tracking_shuffled_objects_seven_objects": 7, "tracking_shuffled_objects_three_objects": 3, "web_of_lies": 2}
MUSR = {"murder_mysteries": 2, "object_placements": 5, "team_allocation": 3}
# One document per BBH subtask: 8 of 24 right (the main job's profile; the card showed 33.33 [33.33, 33.33]).
CORRECT_A = [1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0]
CORRECT_B = [1, 1, 0, 1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0, 0, 1, 1, 0, 1, 0, 0, 1, 0, 1]
R = 2000


def rows(prefix: str, choices: dict[str, int], values: list[list[float]]) -> list[ItemRow]:
    return [ItemRow(item=str(i), subtask=f"leaderboard_{prefix}_{name}", scores={"acc_norm": x})
            for name, xs in zip(choices, values, strict=True) for i, x in enumerate(xs)]


def normalized(x: float, choices: int) -> float:
    """The leaderboard's normalization, written here: 0 below chance (1/choices), else rescaled to 0..100."""
    lo = 1.0 / choices
    return 0.0 if x < lo else (x - lo) / (1 - lo) * 100


def textbook(values: np.ndarray, seed, resamples: int = R) -> np.ndarray:
    """The unstratified bootstrap of a mean, one resample at a time: n indices with replacement from the seed's
    generator."""
    rng = np.random.default_rng(seed)
    return np.array([values[rng.integers(0, len(values), size=len(values))].mean() for _ in range(resamples)])


def test_one_item_per_bbh_subtask_gives_the_textbook_unstratified_interval() -> None:
    items = rows("bbh", BBH, [[x] for x in CORRECT_A])
    contributions = np.array([normalized(x, c) for x, c in zip(CORRECT_A, BBH.values(), strict=True)])
    draws = textbook(contributions, seed=7)
    interval = statistics_for("bbh")["acc_norm"].interval(items, R, seed=7)
    assert interval.value == pytest.approx(100 * 8 / 24) and not interval.stratified and interval.n == 24
    assert (interval.ci_low, interval.ci_high) == pytest.approx(tuple(np.percentile(draws, [2.5, 97.5])), abs=1e-9)
    assert interval.se == pytest.approx(np.std(draws, ddof=1), abs=1e-9)
    assert interval.ci_high - interval.ci_low > 25  # about ±19 points, not zero
    raw = statistics_for("bbh")["acc_norm_raw"].interval(items, R, seed=7)  # the pooled raw accuracy: same draws
    assert (raw.ci_low, raw.ci_high) == pytest.approx(tuple(np.percentile(textbook(100.0 * np.array(CORRECT_A), 7),
                                                                          [2.5, 97.5])), abs=1e-9)


def test_musr_one_item_per_subtask_with_a_partial_score_below_chance() -> None:
    values = [0.4, 0.9, 0.2]  # the third is below chance (1/3): its normalized score is clipped to 0
    items = rows("musr", MUSR, [[x] for x in values])
    contributions = np.array([normalized(x, c) for x, c in zip(values, MUSR.values(), strict=True)])
    assert contributions[2] == 0.0
    interval = statistics_for("musr")["acc_norm"].interval(items, R, seed=[3, 4])
    draws = textbook(contributions, seed=[3, 4])
    assert interval.value == pytest.approx(contributions.mean()) and not interval.stratified
    assert (interval.ci_low, interval.ci_high) == pytest.approx(tuple(np.percentile(draws, [2.5, 97.5])), abs=1e-9)


def test_paired_comparison_at_one_item_per_subtask_is_the_textbook_paired_bootstrap() -> None:
    a, b = rows("bbh", BBH, [[x] for x in CORRECT_A]), rows("bbh", BBH, [[x] for x in CORRECT_B])
    ca, cb = (np.array([normalized(x, c) for x, c in zip(v, BBH.values(), strict=True)]) for v in (CORRECT_A, CORRECT_B))
    rng = np.random.default_rng(11)
    deltas = np.empty(R)
    for r in range(R):
        idx = rng.integers(0, 24, size=24)
        deltas[r] = cb[idx].mean() - ca[idx].mean()
    stat = statistics_for("bbh")["acc_norm"]
    result = paired_bootstrap(table_for([stat], a), table_for([stat], b), {"m": stat.statistic}, R, seed=11)["m"]
    np.testing.assert_allclose(result.draws, deltas, rtol=0, atol=1e-9)
    assert not result.stratified and result.delta == pytest.approx(cb.mean() - ca.mean())
    p = min(1.0, 2 * (min(np.sum(deltas <= 0), np.sum(deltas >= 0)) + 1) / (R + 1))
    assert result.p_value == pytest.approx(p) and result.ci_low < result.ci_high


def test_two_items_per_subtask_keep_the_stratified_leaderboard_bootstrap() -> None:
    values = [[1, 0], [1, 1], [0, 0]]
    items = rows("musr", MUSR, values)
    streams = np.random.default_rng(5).spawn(3)
    draws = np.empty(R)
    for r in range(R):
        draws[r] = np.mean([normalized(np.array(xs)[s.integers(0, 2, size=2)].mean(), c)
                            for s, xs, c in zip(streams, values, MUSR.values(), strict=True)])
    interval = statistics_for("musr")["acc_norm"].interval(items, R, seed=5)
    assert interval.stratified
    assert interval.value == pytest.approx(np.mean([normalized(np.mean(xs), c)
                                                    for xs, c in zip(values, MUSR.values(), strict=True)]))
    assert (interval.ci_low, interval.ci_high) == pytest.approx(tuple(np.percentile(draws, [2.5, 97.5])), abs=1e-9)


def test_mixed_sizes_keep_the_leaderboards_value_and_pool_the_draws() -> None:
    """A 1-item subtask counts its item's normalized score as often as drawn; a subtask of several items the normalized
    mean of its drawn items over its size (written here as counts of pooled index draws)."""
    values = [[1.0, 0.0, 1.0], [0.0], [1.0, 1.0]]
    items = rows("musr", MUSR, values)
    flat = np.concatenate([np.array(xs) for xs in values])
    which = np.repeat(np.arange(3), [len(xs) for xs in values])
    rng = np.random.default_rng(9)
    draws = np.empty(R)
    for r in range(R):
        counts = np.bincount(rng.integers(0, len(flat), size=len(flat)), minlength=len(flat))
        parts = []
        for j, (xs, c) in enumerate(zip(values, MUSR.values(), strict=True)):
            total = float(np.sum(counts[which == j] * flat[which == j]))
            parts.append(counts[which == j][0] * normalized(xs[0], c) if len(xs) == 1
                         else normalized(total / len(xs), c))
        draws[r] = np.mean(parts)
    interval = statistics_for("musr")["acc_norm"].interval(items, R, seed=9)
    leaderboard = np.mean([normalized(np.mean(xs), c) for xs, c in zip(values, MUSR.values(), strict=True)])
    assert interval.value == pytest.approx(leaderboard) and not interval.stratified
    assert (interval.ci_low, interval.ci_high) == pytest.approx(tuple(np.percentile(draws, [2.5, 97.5])), abs=1e-9)


def test_the_card_says_the_bbh_interval_came_from_the_pooled_bootstrap(tmp_path) -> None:
    items = rows("bbh", BBH, [[x] for x in CORRECT_A])
    record = ResultRecord(model="m", suite="bbh", metrics={"acc_norm": Metric(value=100 * 8 / 24)},
                          provenance=Provenance(source="run"))
    run = RunDir(tmp_path)
    write_items(run.items_path("m", None, "bbh"), items)
    estimate = resolve(record, "acc_norm", items, R, seed=0)
    lo, hi = np.percentile(textbook(np.array([normalized(x, c) for x, c in zip(CORRECT_A, BBH.values(), strict=True)]),
                                    suite_seed(0, "bbh")), [2.5, 97.5])
    assert estimate.method == "bootstrap_pooled" and (estimate.low, estimate.high) == pytest.approx((lo, hi), abs=1e-9)
    text = cards.render_card([record], None, "x", run=run, resamples=R)
    assert f"33.33 [{lo:.2f}, {hi:.2f}] n=24" in text
    assert re.search(r"percentile bootstrap over the record's items as one pool, not within each subtask .*2,000 "
                     r"resamples, seeded\): BBH", text)


def test_compare_rows_say_the_paired_bootstrap_pooled_the_items() -> None:
    from harness.compare import BOOTSTRAP, Side, compare

    sides = []
    for label, correct in (("A", CORRECT_A), ("B", CORRECT_B)):
        record = ResultRecord(model=label, suite="bbh", metrics={"acc_norm": Metric(value=100 * sum(correct) / 24)},
                              provenance=Provenance(source="run"))
        sides.append(Side(label, "run", {"bbh": record}, {"bbh": rows("bbh", BBH, [[x] for x in correct])}))
    row = next(r for r in compare(*sides, resamples=R) if (r.suite, r.metric) == ("bbh", "acc_norm"))
    ca, cb = (np.array([normalized(x, c) for x, c in zip(v, BBH.values(), strict=True)]) for v in (CORRECT_A, CORRECT_B))
    rng = np.random.default_rng(suite_seed(0, "bbh"))
    deltas = [cb[i].mean() - ca[i].mean() for i in (rng.integers(0, 24, size=24) for _ in range(R))]
    assert row.method == BOOTSTRAP and "as one pool: a stratum has < 2 paired items" in row.note
    assert (row.ci_low, row.ci_high) == pytest.approx(tuple(np.percentile(deltas, [2.5, 97.5])), abs=1e-9)
