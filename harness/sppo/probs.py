"""Preference probabilities and the chosen/rejected pair, exactly as the official SPPO code computes them.

uclaml/SPPO `scripts/compute_prob.py`: `prb[i][j] = 1 / (1 + exp(score[j] - score[i]))`; chosen = argmax of the
scores, rejected = argmin; `chosen_probs = prb[w][l]`, `chosen_probs_win = sum_j prb[w][j] / K` (self term 0.5
included), `chosen_probs_lose = sum_j prb[l][j] / K`. Pure functions on plain floats.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from harness.judges.pairwise import scores_from_pairwise_logits

__all__ = ["NonFiniteScores", "PairChoice", "check_finite", "choose_pair", "preference_matrix",
           "scores_from_pairwise_logits"]


@dataclass(frozen=True)
class PairChoice:
    chosen: int
    """Index of y_w = argmax of the scores (first on ties, like numpy)."""
    rejected: int
    """Index of y_l = argmin of the scores."""
    chosen_probs: float
    """P(y_w > y_l)."""
    chosen_probs_win: float
    """P_w = (1/K) sum_j P(y_w > y_j)."""
    chosen_probs_lose: float
    """P_l = (1/K) sum_j P(y_l > y_j)."""


class NonFiniteScores(ValueError):
    """A preference model returned NaN or infinite scores: the iteration must stop, not train on garbage."""


def preference_matrix(scores: Sequence[float]) -> list[list[float]]:
    """`P[i][j] = sigma(s_i - s_j)`, written as the official code writes it."""
    check_finite(scores)
    return [[1.0 / (1.0 + math.exp(sj - si)) for sj in scores] for si in scores]


def choose_pair(scores: Sequence[float]) -> PairChoice:
    probs = preference_matrix(scores)
    k = len(scores)
    w = max(range(k), key=lambda i: (scores[i], -i))
    lo = min(range(k), key=lambda i: (scores[i], i))
    return PairChoice(
        chosen=w,
        rejected=lo,
        chosen_probs=probs[w][lo],
        chosen_probs_win=sum(probs[w]) / k,
        chosen_probs_lose=sum(probs[lo]) / k,
    )


def check_finite(scores: Sequence[float], where: str = "") -> None:
    bad = [i for i, s in enumerate(scores) if not math.isfinite(s)]
    if bad:
        raise NonFiniteScores(f"{where}non-finite preference scores at responses {bad}: {list(scores)}")
