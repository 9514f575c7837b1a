"""MT-Bench scoring golden cases: -1 excluded, per-turn means, average over valid (question, turn) ratings."""

from __future__ import annotations

import pytest

from benchmarks.mt_bench.scoring import mt_bench_scores


def test_turn_means_exclude_unparsable():
    rows = [{"turn": 1, "score": 8}, {"turn": 1, "score": 6}, {"turn": 1, "score": -1},
            {"turn": 2, "score": 3.5}, {"turn": 2, "score": None}, {"turn": 2, "score": float("nan")}]
    s = mt_bench_scores(rows)
    assert s.turn_1 == pytest.approx(7.0)
    assert s.turn_2 == pytest.approx(3.5)
    assert s.average == pytest.approx((8 + 6 + 3.5) / 3)  # over all valid ratings, not the mean of turn means
    assert (s.n_turn_1, s.n_turn_2, s.n_unparsed) == (2, 1, 3)


def test_all_unparsable_gives_no_score():
    s = mt_bench_scores([{"turn": 1, "score": -1}])
    assert s.average is None and s.turn_1 is None


def test_bad_turn_raises():
    with pytest.raises(ValueError):
        mt_bench_scores([{"turn": 3, "score": 5}])
