"""MT-Bench metrics recomputed from per-(question, turn) ratings (resampled within turns)."""

from __future__ import annotations

import numpy as np

from harness.scoring.items import Column, ItemStatistic, register_item_statistics
from harness.stats import Statistic


def statistics() -> dict[str, ItemStatistic]:
    """FastChat show_result: the mean rating per turn, and over all (question, turn) ratings; strata are the turns."""
    rating = (Column("rating", lambda row: row.scores["rating"]),)

    def turn(t: str) -> Statistic:
        return lambda s: s.stratum_means("rating")[:, s.stratum_index(t)] if t in s.stratum_names else \
            np.full(len(s.sums), np.nan)

    return {
        "turn_1": ItemStatistic("mt_bench", "turn_1", rating, turn("1"), "turn"),
        "turn_2": ItemStatistic("mt_bench", "turn_2", rating, turn("2"), "turn"),
        "average": ItemStatistic("mt_bench", "average", rating, lambda s: s.mean("rating"), "turn"),
    }


register_item_statistics("mt_bench", statistics)
