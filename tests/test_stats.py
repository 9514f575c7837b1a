"""harness.stats against textbook computations written here, scipy, statsmodels, scikit-learn and upstream's
Bradley-Terry fit; and the regression gate's false-alarm rate and power by simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness import stats
from harness.stats import ItemTable


def _hand_rolled_paired(a: np.ndarray, b: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """The textbook paired bootstrap: draw n indices with replacement, recompute both means, take the difference."""
    rng = np.random.default_rng(seed)
    out = np.empty(resamples)
    for r in range(resamples):
        idx = rng.integers(0, len(a), size=len(a))
        out[r] = b[idx].mean() - a[idx].mean()
    return out


def _mean_of(column: str):
    return lambda s: s.mean(column)


def test_paired_bootstrap_equals_hand_rolled_loop_on_the_same_seed():
    rng = np.random.default_rng(7)
    a = rng.random(300)
    b = np.clip(a + rng.normal(0.05, 0.2, 300), 0, 1)  # continuous: every row distinct, so indices are drawn
    deltas = _hand_rolled_paired(a, b, 2000, seed=11)
    result = stats.paired_bootstrap(ItemTable.build({"x": a}), ItemTable.build({"x": b}), {"m": _mean_of("x")},
                                    resamples=2000, seed=11)["m"]
    np.testing.assert_allclose(result.draws, deltas, rtol=0, atol=1e-12)
    assert result.delta == pytest.approx(b.mean() - a.mean())
    lo, hi = np.percentile(deltas, [2.5, 97.5])
    assert (result.ci_low, result.ci_high) == (pytest.approx(lo, abs=1e-12), pytest.approx(hi, abs=1e-12))
    p = 2 * min((np.sum(deltas <= 0) + 1) / 2001, (np.sum(deltas >= 0) + 1) / 2001)
    assert result.p_value == pytest.approx(min(1.0, p))


def test_stratified_bootstrap_equals_hand_rolled_loop_per_stratum():
    """Each stratum keeps its size and draws from its own child generator; the statistic averages stratum means."""
    rng = np.random.default_rng(1)
    sizes = [40, 25, 60]
    a = [rng.random(n) for n in sizes]
    b = [x + rng.normal(0, 0.1, len(x)) for x in a]
    streams = np.random.default_rng(5).spawn(3)
    expected = np.empty(500)
    for r in range(500):
        idx = [s.integers(0, n, size=n) for s, n in zip(streams, sizes, strict=True)]
        expected[r] = np.mean([bb[i].mean() - aa[i].mean() for aa, bb, i in zip(a, b, idx, strict=True)])
    labels = [f"t{j}" for j, n in enumerate(sizes) for _ in range(n)]
    ta = ItemTable.build({"x": np.concatenate(a)}, labels)
    tb = ItemTable.build({"x": np.concatenate(b)}, labels)
    result = stats.paired_bootstrap(ta, tb, {"m": lambda s: s.stratum_means("x").mean(axis=1)}, 500, seed=5)["m"]
    np.testing.assert_allclose(result.draws, expected, atol=1e-12)


def test_zero_one_items_draw_multinomial_counts_with_the_index_draws_distribution():
    """0/1 accuracies take at most four distinct (A, B) rows: counts are drawn as one multinomial. Same distribution
    as index draws: the interval agrees with the hand-rolled loop's (other draws) within Monte Carlo error."""
    rng = np.random.default_rng(3)
    a = (rng.random(2000) < 0.6).astype(float)
    b = np.where(rng.random(2000) < 0.15, 1 - a, a)
    ours = stats.paired_bootstrap(ItemTable.build({"x": a}), ItemTable.build({"x": b}), {"m": _mean_of("x")},
                                  resamples=20_000, seed=2)["m"]
    loop = _hand_rolled_paired(a, b, 20_000, seed=99)
    sd = loop.std()
    assert ours.se == pytest.approx(sd, rel=0.03)
    assert ours.ci_low == pytest.approx(np.percentile(loop, 2.5), abs=0.08 * sd)
    assert ours.ci_high == pytest.approx(np.percentile(loop, 97.5), abs=0.08 * sd)


def test_one_sample_bootstrap_ci_of_a_mean():
    x = np.random.default_rng(0).random(400)
    interval = stats.bootstrap_ci(ItemTable.build({"x": x}), _mean_of("x"), resamples=1000, seed=4)
    rng = np.random.default_rng(4)
    means = [x[rng.integers(0, 400, size=400)].mean() for _ in range(1000)]
    assert interval.value == pytest.approx(x.mean())
    assert (interval.ci_low, interval.ci_high) == tuple(pytest.approx(v) for v in np.percentile(means, [2.5, 97.5]))
    assert interval.se == pytest.approx(np.std(means, ddof=1)) and interval.n == 400


def test_batches_bound_memory_without_changing_the_draws(monkeypatch):
    x = np.random.default_rng(0).random(500)
    table = ItemTable.build({"x": x})
    whole = stats.bootstrap_ci(table, _mean_of("x"), resamples=300, seed=1)
    monkeypatch.setattr(stats, "BATCH_CELLS", 1000)  # two resamples per batch
    batched = stats.bootstrap_ci(table, _mean_of("x"), resamples=300, seed=1)
    assert (batched.ci_low, batched.ci_high, batched.se) == pytest.approx((whole.ci_low, whole.ci_high, whole.se),
                                                                         rel=1e-12)


def test_identical_sides_give_p_one_and_a_zero_interval():
    x = (np.arange(100) % 3 == 0).astype(float)
    r = stats.paired_bootstrap(ItemTable.build({"x": x}), ItemTable.build({"x": x}), {"m": _mean_of("x")}, 500)["m"]
    assert r.p_value == 1.0 and r.ci_low == r.ci_high == 0.0


@pytest.mark.parametrize("b,c", [(0, 0), (0, 5), (3, 12), (17, 9), (40, 40), (1, 60)])
def test_mcnemar_exact_equals_scipy_binomtest(b, c):
    from scipy.stats import binomtest

    a_right = np.array([1] * b + [0] * c + [1] * 7 + [0] * 4, dtype=bool)
    b_right = np.array([0] * b + [1] * c + [1] * 7 + [0] * 4, dtype=bool)
    result = stats.mcnemar(a_right, b_right)
    assert (result.b, result.c) == (b, c)
    expected = 1.0 if b + c == 0 else binomtest(min(b, c), b + c, 0.5).pvalue
    assert result.p_value == pytest.approx(expected, rel=1e-12)


def test_holm_equals_statsmodels_multipletests():
    from statsmodels.stats.multitest import multipletests

    p = np.random.default_rng(2).random(17) ** 3
    expected = multipletests(p, method="holm")[1]
    np.testing.assert_allclose(stats.holm(list(p)), expected, rtol=1e-12)
    with_gaps = stats.holm([0.01, None, 0.04, 0.03])
    np.testing.assert_allclose([with_gaps[i] for i in (0, 2, 3)], multipletests([0.01, 0.04, 0.03], method="holm")[1])
    assert with_gaps[1] is None


def test_unpaired_normal_and_binomial_se():
    r = stats.unpaired_normal((50.0, 1.5), (54.0, 2.0))
    assert r.delta == 4.0 and r.se == pytest.approx(2.5)
    assert (r.ci_low, r.ci_high) == (pytest.approx(4 - 1.959964 * 2.5, abs=1e-5), pytest.approx(4 + 1.959964 * 2.5, abs=1e-5))
    assert r.p_value == pytest.approx(math.erfc(1.6 / math.sqrt(2)))  # two-sided normal tail of z = 1.6
    assert r.method == "unpaired normal"
    assert stats.binomial_se(0.3, 805) == pytest.approx(math.sqrt(0.3 * 0.7 / 805))
    with pytest.raises(ValueError):
        stats.binomial_se(1.2, 10)


def test_agreement_and_kappa_equal_sklearn():
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(8)
    official = rng.random(300) < 0.2
    judge = np.where(rng.random(300) < 0.3, ~official, official)
    a = stats.agreement(judge, official)
    assert a.kappa == pytest.approx(cohen_kappa_score(judge, official))
    assert a.agreement == pytest.approx(np.mean(judge == official))
    assert a.majority_baseline == pytest.approx(1 - official.mean()) and a.n == 300
    assert math.isnan(stats.cohen_kappa([True, True], [True, True]))


# ---------------------------------------------------------------------------------- Arena-Hard Bradley-Terry closed form

def _judgments(seed: int, n: int) -> list[dict]:
    from benchmarks.arena_hard.scoring import LABELS

    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(5))
    labels = [*LABELS, None]

    def verdict() -> str | None:
        return None if rng.random() < 0.05 else str(rng.choice(LABELS, p=p))

    return [{"question_id": f"q{i}", "model": "m", "games": [{"score": verdict()}, {"score": labels[rng.integers(6)]}]}
            for i in range(n)]


@pytest.mark.parametrize("seed,n", [(0, 500), (1, 37), (2, 200), (3, 120)])
def test_closed_form_bradley_terry_equals_upstream_sklearn_fit(seed, n):
    """Same battles (>> counted 3 times, ties, missing verdicts): upstream's logistic-regression fit vs the closed form.
    sklearn stops at tol=1e-8 on the gradient, which leaves ~1e-7 on the win rate and ~1e-6 on the Elo."""
    from benchmarks.arena_hard.scoring import arena_hard_score, battles_from_judgments, compute_mle_elo, win_rate_vs
    from benchmarks.arena_hard.suite import arena_items
    from harness.catalog import suites
    from harness.scoring.items import statistics_for

    suites()  # the judged suites register their item statistics
    rows = _judgments(seed, n)
    upstream = arena_hard_score(rows, "m", num_round=2)
    elo = compute_mle_elo(battles_from_judgments(rows))["m"]
    ours = statistics_for("arena_hard")["score"].value(arena_items(rows))
    assert ours == pytest.approx(upstream.score, abs=1e-6)
    assert ours == pytest.approx(win_rate_vs(elo), abs=1e-6)
    assert stats.elo_from_win_rate(ours) == pytest.approx(elo, abs=1e-5)


def test_closed_form_at_the_limits_matches_upstreams_fallback():
    from benchmarks.arena_hard.scoring import arena_hard_score

    won = [{"question_id": f"q{i}", "games": [{"score": "B>>A"}, {"score": "A>B"}]} for i in range(5)]
    assert stats.bt_win_rate_vs_baseline(np.array([4 * 5.0]), np.array([4 * 5.0]))[0] == 100.0
    assert arena_hard_score(won, "m", num_round=2).score == pytest.approx(100.0)
    assert stats.elo_from_win_rate(100.0) == math.inf and stats.elo_from_win_rate(0.0) == -math.inf


# ------------------------------------------------------------------------------------------- the regression gate

def _simulated_records(n: int, true_rate: float, runs: int, rng: np.random.Generator):
    """AlpacaEval-like runs: per-instruction preferences in [1, 2]; record value and stderr as alpaca_eval computes
    them (mean and SE of preference - 1, x100)."""
    from harness.records import Metric, Provenance, ResultRecord

    wins = (rng.random((runs, n)) < true_rate).astype(float)
    value, se = 100 * wins.mean(axis=1), 100 * wins.std(axis=1, ddof=1) / math.sqrt(n)
    return [ResultRecord(model="m", suite="alpaca_eval", metrics={"win_rate": Metric(value=v, stderr=s, n=n)},
                         provenance=Provenance(source="sim")) for v, s in zip(value, se, strict=True)]


def _fire_rate(reference, results) -> float:
    from harness.check import compare

    fired = [compare([ref], [res])[0].verdict == "regression" for ref, res in zip(reference, results, strict=True)]
    return float(np.mean(fired))


def test_gate_false_alarm_rate_and_power_at_n_805():
    """`check` (tolerance max(0.5, 2 SE)) on simulated runs of 805 items: an unchanged model fires <= 5% of the time
    (one-sided 2-sigma: ~2.3%), a true drop of 3 standard errors of the difference is caught >= 80% (~84%)."""
    rng = np.random.default_rng(2024)
    n, p, runs = 805, 0.30, 800
    reference = _simulated_records(n, p, runs, rng)
    assert _fire_rate(reference, _simulated_records(n, p, runs, rng)) <= 0.05
    se_diff = math.sqrt(2 * p * (1 - p) / n)
    dropped = _simulated_records(n, p - 3 * se_diff, runs, rng)
    assert _fire_rate(reference, dropped) >= 0.80


def test_mean_interval_is_the_textbook_percentile_bootstrap_of_a_mean() -> None:
    """The one-sample bootstrap every one-sample interval uses: against a loop written here (same seed: the same index
    draws, so the same percentiles), and the textbook SE sd/sqrt(n) within Monte Carlo noise."""
    from harness.stats import mean_interval

    rng = np.random.default_rng(4)
    values = rng.beta(2, 3, 150)
    got = mean_interval(values, resamples=5000, seed=9)
    draws = np.random.default_rng(9).integers(0, len(values), size=(5000, len(values)))
    means = values[draws].mean(axis=1)
    assert (got.ci_low, got.ci_high) == pytest.approx(tuple(np.percentile(means, [2.5, 97.5])), rel=1e-12)
    assert got.value == pytest.approx(values.mean()) and got.n == 150
    assert got.se == pytest.approx(values.std(ddof=0) / np.sqrt(len(values)), rel=0.05)


def test_a_table_with_a_non_finite_value_is_refused() -> None:
    with pytest.raises(ValueError, match=r"column 'x', row 2: nan is not a finite number"):
        ItemTable.build({"x": [1.0, 0.0, math.nan]})
    with pytest.raises(ValueError, match="inf is not a finite number"):
        stats.paired_bootstrap(ItemTable.build({"x": [1.0, 0.0]}), ItemTable.build({"x": [1.0, math.inf]}),
                               {"m": lambda s: s.mean("x")}, resamples=100)


def test_mcnemar_power_agrees_with_a_simulation_of_the_exact_test() -> None:
    """Power of the two-sided exact McNemar test: against simulated paired 0/1 outcomes tested with scipy's binomtest
    (20,000 draws; Monte Carlo SE about 0.0035)."""
    from scipy.stats import binomtest

    rng = np.random.default_rng(8)
    n, only_a, only_b = 100, 0.08, 0.02
    cells = rng.multinomial(n, [only_a, only_b, 1 - only_a - only_b], size=20_000)
    cache: dict[tuple[int, int], bool] = {}

    def rejects(b: int, c: int) -> bool:
        if (b, c) not in cache:
            cache[(b, c)] = b + c > 0 and binomtest(min(b, c), b + c, 0.5).pvalue <= 0.05
        return cache[(b, c)]

    simulated = np.mean([rejects(int(b), int(c)) for b, c, _ in cells])
    assert stats.mcnemar_power(n, only_a, only_b) == pytest.approx(simulated, abs=0.015)
    assert stats.mcnemar_power(n, 0.05, 0.05) <= 0.05  # no difference: at most the level (the exact test is conservative)
