"""Arena-Hard v0.1 scoring: battles from verdicts (ties, >> weights, unparsable), Bradley-Terry against a direct
scikit-learn fit and the two-player closed form, seeded bootstrap equal to upstream's global-seed draws."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from benchmarks.arena_hard.scoring import (
    arena_hard_score,
    avg_tokens,
    battles_from_judgments,
    bootstrap_elo,
    compute_mle_elo,
    win_rate_vs,
)


def row(qid, g1, g2, model="m"):
    return {"question_id": qid, "model": model, "games": [{"score": g1}, {"score": g2}]}


def test_battles_golden():
    b = battles_from_judgments([row("q1", "A>>B", "A>>B"), row("q2", "A=B", "B>A"), row("q3", None, "A>B>A"),
                                row("q4", "B>A", "A>B")], baseline="base")
    counts = b.groupby(["question_id", "winner"]).size().to_dict()
    # q1 game 1: baseline (A) much better x3; game 2 swapped: A is the model, much better x3
    assert counts[("q1", "model_a")] == 3 and counts[("q1", "model_b")] == 3
    # q2: a tie, then B>A in the swapped game = the baseline wins once
    assert counts[("q2", "tie")] == 1 and counts[("q2", "model_a")] == 1
    # q3: no verdict and an ambiguous label give no battle
    assert not any(k[0] == "q3" for k in counts)
    # q4: model wins in both positions
    assert counts[("q4", "model_b")] == 2
    assert set(b["model_a"]) == {"base"} and set(b["model_b"]) == {"m"}
    assert len(battles_from_judgments([row("q1", "A>>B", "B>A")], multiplier=1, first_game_only=True)) == 1


def _direct_sklearn(battles: pd.DataFrame, baseline: str) -> pd.Series:
    """Bradley-Terry written out independently: a win = two rows for the winner, a tie = one row each way."""
    from sklearn.linear_model import LogisticRegression

    models = sorted(set(battles["model_a"]) | set(battles["model_b"]))
    col = {m: i for i, m in enumerate(models)}
    X, Y = [], []
    for a, b, w in zip(battles["model_a"], battles["model_b"], battles["winner"], strict=True):
        x = np.zeros(len(models))
        x[col[a]], x[col[b]] = math.log(10), -math.log(10)
        ys = {"model_a": [1, 1], "model_b": [0, 0], "tie": [1, 0]}[w]
        X += [x, x]
        Y += ys
    lr = LogisticRegression(fit_intercept=False, penalty=None, tol=1e-10, max_iter=10_000).fit(np.array(X), np.array(Y))
    elo = 400 * lr.coef_[0] + 1000
    elo += 1000 - elo[col[baseline]]
    return pd.Series(elo, index=models)


FIXED = pd.DataFrame(
    [("base", "x", "model_a")] * 7 + [("base", "x", "model_b")] * 4 + [("base", "x", "tie")] * 3
    + [("base", "y", "model_b")] * 9 + [("base", "y", "model_a")] * 2 + [("x", "y", "model_b")] * 5
    + [("x", "y", "tie")] * 2 + [("x", "y", "model_a")] * 3,
    columns=["model_a", "model_b", "winner"])


def test_bt_matches_direct_sklearn():
    ours = compute_mle_elo(FIXED, baseline="base")
    direct = _direct_sklearn(FIXED, "base")
    assert ours["base"] == pytest.approx(1000.0)
    for m in ("x", "y"):
        assert ours[m] == pytest.approx(direct[m], abs=1e-3)


def test_two_player_closed_form_and_score():
    # model vs baseline only: the MLE win probability is the empirical share, ties counting half
    judgments = [row(f"q{i}", g1, g2) for i, (g1, g2) in enumerate(
        [("A>B", "A>B"), ("B>A", "B>A"), ("A=B", "A=B"), ("B>>A", "A>B"), ("A>B", "B>A")])]
    b = battles_from_judgments(judgments, baseline="base")
    model_share = ((b["winner"] == "model_b").sum() + 0.5 * (b["winner"] == "tie").sum()) / len(b)
    s = arena_hard_score(judgments, model="m", baseline="base", num_round=20)
    assert s.score == pytest.approx(100 * model_share, abs=1e-4)
    assert s.ci_low <= s.score <= s.ci_high
    assert s.n_games == 10 and s.n_unparsed == 0 and s.n_battles == len(b)


def test_bootstrap_equals_upstream_global_seed_draws():
    ours = bootstrap_elo(FIXED, num_round=10, seed=42, baseline="base")
    np.random.seed(42)  # upstream utils_math.py seeds numpy's global RNG and calls battles.sample(...) without a state
    upstream = pd.DataFrame([compute_mle_elo(FIXED.sample(frac=1.0, replace=True), baseline="base") for _ in range(10)])
    pd.testing.assert_frame_equal(ours[sorted(ours.columns)], upstream[sorted(upstream.columns)])
    again = bootstrap_elo(FIXED, num_round=10, seed=42, baseline="base")
    pd.testing.assert_frame_equal(ours, again)


def test_unparsable_counted_and_one_sided_guard():
    judgments = [row("q1", "B>A", None), row("q2", "B>>A", "A>B")]
    s = arena_hard_score(judgments, model="m", baseline="base", num_round=5)
    assert s.n_unparsed == 1 and s.n_games == 4
    assert s.score == pytest.approx(100.0, abs=1e-6)  # every battle won: the limit, not a crash or NaN
    assert not math.isnan(s.ci_low)
    with pytest.raises(ValueError, match="no parsable verdict"):
        arena_hard_score([row("q1", None, "garbage")], model="m", baseline="base")


def test_win_rate_and_avg_tokens():
    assert win_rate_vs(1000.0) == pytest.approx(50.0)
    assert win_rate_vs(1400.0) == pytest.approx(100 * 10 / 11)
    assert avg_tokens([10, 11, 12, 12]) == 11  # int() truncation as upstream
