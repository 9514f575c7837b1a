"""MT-Bench single-grade scoring, as FastChat `llm_judge/show_result.py` (display_result_single) does it:
drop score == -1 (unparsable), mean per turn, and the average over all valid (question, turn) scores.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

UNPARSABLE = -1


@dataclass(frozen=True)
class TurnScores:
    turn_1: float | None
    turn_2: float | None
    average: float | None
    n_turn_1: int
    n_turn_2: int
    n_unparsed: int


def mt_bench_scores(judgments: Iterable[Mapping[str, Any]]) -> TurnScores:
    """`judgments`: FastChat single-grade rows with `turn` (1 or 2) and `score` (-1 = unparsable; None/NaN = failed)."""
    valid: dict[int, list[float]] = {1: [], 2: []}
    unparsed = 0
    for j in judgments:
        score = j.get("score")
        if score is None or (isinstance(score, float) and math.isnan(score)) or score == UNPARSABLE:
            unparsed += 1
            continue
        turn = int(j["turn"])
        if turn not in valid:
            raise ValueError(f"turn {turn!r}: MT-Bench has turns 1 and 2")
        valid[turn].append(float(score))
    both = valid[1] + valid[2]
    return TurnScores(
        turn_1=_mean(valid[1]),
        turn_2=_mean(valid[2]),
        average=_mean(both),
        n_turn_1=len(valid[1]),
        n_turn_2=len(valid[2]),
        n_unparsed=unparsed,
    )


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None
