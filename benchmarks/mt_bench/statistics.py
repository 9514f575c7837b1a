"""MT-Bench metrics recomputed from per-(question, turn) ratings, resampled by question.

A question's two turns are answered by the same model in one conversation and judged on related content: they are
not independent, so a resample draws whole questions (both turns together) and n counts questions. Each question
contributes the sums of its ratings and its counts of rated turns; the turn means and the average are ratios of those
sums, which on all questions are FastChat `show_result`'s means over the valid (question, turn) ratings.
"""

from __future__ import annotations

import numpy as np

from harness.records import ItemRow
from harness.scoring.items import Column, ItemStatistic, register_item_statistics
from harness.stats import Statistic, Sums


def _rating(turn: int) -> Column:
    return Column(f"rating_{turn}", lambda row: row.scores["rating"] if row.turn == turn else 0.0)


def _rated(turn: int) -> Column:
    return Column(f"rated_{turn}", lambda row: _check(row) if row.turn == turn else 0.0)


def _check(row: ItemRow) -> float:
    row.scores["rating"]  # a row without a rating lacks what every metric needs (KeyError, as the other columns)
    return 1.0


def statistics() -> dict[str, ItemStatistic]:
    """FastChat show_result: the mean rating per turn, and over all (question, turn) ratings."""
    columns = (_rating(1), _rating(2), _rated(1), _rated(2))

    def turn(t: int) -> Statistic:
        return lambda s: s.ratio(f"rating_{t}", f"rated_{t}")

    def average(s: Sums) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return (s.total("rating_1") + s.total("rating_2")) / (s.total("rated_1") + s.total("rated_2"))

    return {
        "turn_1": ItemStatistic("mt_bench", "turn_1", columns, turn(1), None, unit="question"),
        "turn_2": ItemStatistic("mt_bench", "turn_2", columns, turn(2), None, unit="question"),
        "average": ItemStatistic("mt_bench", "average", columns, average, None, unit="question"),
    }


register_item_statistics("mt_bench", statistics)
