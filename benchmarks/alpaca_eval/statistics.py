"""AlpacaEval 2 metrics recomputed from per-instruction items (paired comparisons, bootstrap intervals)."""

from __future__ import annotations

import numpy as np

from harness.scoring.items import Column, ItemStatistic, register_item_statistics


def statistics() -> dict[str, ItemStatistic]:
    """alpaca_eval's `get_winrate`: win rate = mean(preference - 1) x 100; avg length = int(mean characters)."""
    win = Column("win", lambda row: row.scores["preference"] - 1.0)
    length = Column("length", lambda row: row.scores["length"])
    return {
        "win_rate": ItemStatistic("alpaca_eval", "win_rate", (win,), lambda s: 100.0 * s.mean("win"), None,
                                  proportion=True),
        "avg_length": ItemStatistic("alpaca_eval", "avg_length", (length,), lambda s: np.floor(s.mean("length")), None),
    }


register_item_statistics("alpaca_eval", statistics, unavailable={
    "lc_win_rate": "alpaca_eval fits the length-controlled GLM once on all 805 instructions; it is not refitted per "
                   "resample"})
