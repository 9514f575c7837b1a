"""Arena-Hard-Auto v0.1 scoring, exactly as upstream `show_result.py` + `utils_math.py` (lmarena/arena-hard-auto
@0489bf3, 2024-09-01): judgments -> battles -> Bradley-Terry by logistic regression -> win rate vs the baseline.

Reimplemented because arena-hard-auto is not a package (scripts only). Upstream rules kept:
- each judgment row has two games; game 1 has the baseline as A, game 2 swaps positions;
- `A>B`/`B>A` one battle, `A>>B`/`B>>A` `multiplier` (3) identical battles, `A=B` a tie, anything else (None,
  unparsable) no battle;
- BT: battles duplicated, a tie = one win for A + one for B, `LogisticRegression(fit_intercept=False, penalty=None,
  tol=1e-8)` on ±log(BASE) columns, Elo = 400·coef + 1000, re-anchored so the baseline is 1000;
- score = predicted win rate vs the baseline ×100; CI = 2.5/97.5 percentiles of 100 bootstrap refits on battles
  resampled with replacement (upstream seeds numpy's global RNG with 42; we use a local RandomState(seed) with the
  same default, which draws the same resamples);
- avg tokens = int(mean token_len of the model's answers).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

BASELINE = "gpt-4-0314"
LABELS = ("A>>B", "A>B", "A=B", "B>A", "B>>A")
SCALE, BASE, INIT_RATING = 400, 10, 1000
DEFAULT_ROUNDS, DEFAULT_SEED, MULTIPLIER = 100, 42, 3


@dataclass(frozen=True)
class ArenaScore:
    score: float
    """Win rate vs the baseline in %, from the Bradley-Terry fit."""
    ci_low: float
    ci_high: float
    elo: float
    n_battles: int
    n_games: int
    n_unparsed: int
    """Games whose verdict was missing or unparsable: no battle, counted for coverage."""


def battles_from_judgments(rows: Iterable[Mapping[str, Any]], baseline: str = BASELINE,
                           multiplier: int = MULTIPLIER, first_game_only: bool = False) -> pd.DataFrame:
    """Upstream `get_battles_from_row` over model_judgment rows ({question_id, model, games: [{score}, {score}]})."""
    out: list[dict[str, Any]] = []
    for row in rows:
        games = list(row["games"])[: 1 if first_game_only else 2]
        for g, game in enumerate(games):
            winner, weight = _battle(game.get("score"), swapped=g == 1, multiplier=multiplier)
            if weight:
                battle = {"question_id": row["question_id"], "model_a": baseline, "model_b": row["model"],
                          "winner": winner}
                out.extend([battle] * weight)
    return pd.DataFrame(out, columns=["question_id", "model_a", "model_b", "winner"])


def _battle(score: str | None, swapped: bool, multiplier: int) -> tuple[str | None, int]:
    a, b = ("model_b", "model_a") if swapped else ("model_a", "model_b")
    return {
        "A=B": ("tie", 1),
        "A>B": (a, 1),
        "A>>B": (a, multiplier),
        "B>A": (b, 1),
        "B>>A": (b, multiplier),
    }.get(score or "", (None, 0))


def compute_mle_elo(battles: pd.DataFrame, baseline: str = BASELINE, scale: float = SCALE, base: float = BASE,
                    init_rating: float = INIT_RATING) -> pd.Series:
    """Upstream `compute_mle_elo`: Bradley-Terry ratings on the Elo scale, baseline anchored at 1000."""
    from sklearn.linear_model import LogisticRegression

    models_index = pd.concat([battles["model_a"], battles["model_b"]]).unique()
    models = pd.Series(np.arange(len(models_index)), index=models_index)
    df = pd.concat([battles, battles], ignore_index=True)
    n, p = df.shape[0], len(models)
    X = np.zeros([n, p])
    X[np.arange(n), models[df["model_a"]].to_numpy()] = +math.log(base)
    X[np.arange(n), models[df["model_b"]].to_numpy()] = -math.log(base)
    Y = np.zeros(n)
    Y[(df["winner"] == "model_a").to_numpy()] = 1.0
    tie = ((df["winner"] == "tie") | (df["winner"] == "tie (bothbad)")).to_numpy().copy()
    tie[len(tie) // 2 :] = False  # one tie = one A win (first copy) + one B win (second copy)
    Y[tie] = 1.0
    if len(set(Y.tolist())) < 2:
        # sklearn refuses one-class data; upstream would crash here. With every battle won by one side the MLE is at
        # infinity: report the limit (win rate 100 or 0) instead of a crash.
        sign = 1.0 if Y.size and Y[0] == 1.0 else -1.0
        coef = np.zeros(p)
        coef[models[df["model_a"].iloc[0]]] = sign * 1e3 if n else 0.0
    else:
        lr = LogisticRegression(fit_intercept=False, penalty=None, tol=1e-8)
        with warnings.catch_warnings():  # sklearn 1.8 deprecates `penalty`; upstream's exact call is kept
            warnings.simplefilter("ignore", FutureWarning)
            lr.fit(X, Y)
        coef = lr.coef_[0]
    elo = scale * coef + init_rating
    if baseline in models.index:
        elo += 1000 - elo[models[baseline]]
    return pd.Series(elo, index=models.index).sort_values(ascending=False)


def bootstrap_elo(battles: pd.DataFrame, num_round: int = DEFAULT_ROUNDS, seed: int = DEFAULT_SEED,
                  baseline: str = BASELINE) -> pd.DataFrame:
    """Upstream `get_bootstrap_result` with a local seeded RNG: one row of ratings per resample."""
    rng = np.random.RandomState(seed)
    rows = [compute_mle_elo(battles.sample(frac=1.0, replace=True, random_state=rng), baseline=baseline)
            for _ in range(num_round)]
    return pd.DataFrame(rows)


def win_rate_vs(elo: float, baseline_elo: float = 1000.0, scale: float = SCALE, base: float = BASE) -> float:
    """Upstream `predict_win_rate` for one pair, ×100 (upstream then rounds to 2 decimals for display)."""
    exponent = (baseline_elo - elo) / scale * math.log(base)
    if exponent > 700:  # a one-sided fit (every battle lost) sits at the limit: avoid float overflow
        return 0.0
    return 100.0 / (1.0 + math.exp(exponent))


def arena_hard_score(rows: Sequence[Mapping[str, Any]], model: str, baseline: str = BASELINE,
                     num_round: int = DEFAULT_ROUNDS, seed: int = DEFAULT_SEED,
                     multiplier: int = MULTIPLIER) -> ArenaScore:
    """Score one model's judgment rows (v0.1 model_judgment format) against the baseline."""
    rows = [dict(r, model=model) for r in rows]
    n_games = sum(len(r["games"][:2]) for r in rows)
    n_unparsed = sum(1 for r in rows for g in r["games"][:2] if g.get("score") not in LABELS)
    battles = battles_from_judgments(rows, baseline=baseline, multiplier=multiplier)
    if battles.empty:
        raise ValueError(f"no parsable verdict among {n_games} games: nothing to score")
    elo = compute_mle_elo(battles, baseline=baseline)
    boot = bootstrap_elo(battles, num_round=num_round, seed=seed, baseline=baseline)
    lo, hi = np.percentile(boot[model], 2.5), np.percentile(boot[model], 97.5)
    base_elo = float(elo[baseline])
    return ArenaScore(
        score=win_rate_vs(float(elo[model]), base_elo),
        ci_low=win_rate_vs(float(lo), base_elo),
        ci_high=win_rate_vs(float(hi), base_elo),
        elo=float(elo[model]),
        n_battles=len(battles),
        n_games=n_games,
        n_unparsed=n_unparsed,
    )


def avg_tokens(token_lens: Sequence[int]) -> int:
    """Upstream: int(sum of token_len / number of answers)."""
    if not token_lens:
        raise ValueError("no answers")
    return int(sum(token_lens) / len(token_lens))
