"""Arena-Hard v0.1 metrics recomputed from per-question items (both games of a question resampled together)."""

from __future__ import annotations

import numpy as np

from benchmarks.arena_hard.scoring import MULTIPLIER
from harness.records import ItemRow
from harness.scoring.items import Column, ItemStatistic, register_item_statistics
from harness.stats import bt_win_rate_vs_baseline

# Battle points and battles of one game's verdict for the model, by game: upstream `get_battles_from_row` (game 1 has
# the baseline as A, game 2 swaps); a `>>` verdict counts MULTIPLIER battles, a tie one battle worth half.
_GAME_1 = {"A>>B": (0.0, MULTIPLIER), "A>B": (0.0, 1), "A=B": (0.5, 1), "B>A": (1.0, 1), "B>>A": (MULTIPLIER, MULTIPLIER)}
_GAME_2 = {"A>>B": (MULTIPLIER, MULTIPLIER), "A>B": (1.0, 1), "A=B": (0.5, 1), "B>A": (0.0, 1), "B>>A": (0.0, MULTIPLIER)}


def _arena_battles(row: ItemRow, part: int) -> float:
    games = row.games or []
    return float(sum(table[g][part] for table, g in zip((_GAME_1, _GAME_2), games, strict=False) if g in table))


def statistics() -> dict[str, ItemStatistic]:
    """Score: the Bradley-Terry win rate vs the baseline, in closed form (harness.stats.bt_win_rate_vs_baseline);
    resamples are questions, both games of a question together. avg tokens: int(mean token length)."""
    points, battles = Column("points", lambda row: _arena_battles(row, 0)), Column("battles", lambda row: _arena_battles(row, 1))
    length = Column("length", lambda row: float(row.length) if row.length is not None else _missing("length"))
    return {
        "score": ItemStatistic("arena_hard", "score", (points, battles),
                               lambda s: bt_win_rate_vs_baseline(s.total("points"), s.total("battles")), None),
        "avg_tokens": ItemStatistic("arena_hard", "avg_tokens", (length,), lambda s: np.floor(s.mean("length")), None),
    }


def _missing(field: str) -> float:
    raise KeyError(field)


register_item_statistics("arena_hard", statistics)
