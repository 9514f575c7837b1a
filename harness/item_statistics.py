"""How each (suite, metric) a record carries is recomputed from its items: the per-item columns it reads and the
statistic of their sums (harness.stats.Sums) that gives the record's number, on the card's scale. A bootstrap
recomputes it on every resample; on all items it equals the record's value (tests/test_item_statistics.py).

The table is one function, `statistics_for(suite)`, returning `ItemStatistic`s by metric; each suite's entry is meant
to move into its module (benchmarks/<suite>.py) as that suite's own knowledge. lm-eval suites derive theirs from the
suite's `LEADERBOARD` rule, as the record builder (harness.importers.lm_eval) does.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from harness.records import ItemRow
from harness.scoring.arena_hard import MULTIPLIER
from harness.scoring.leaderboard import LeaderboardRule
from harness.stats import (
    DEFAULT_RESAMPLES,
    Interval,
    ItemTable,
    Seed,
    Statistic,
    Sums,
    bootstrap_ci,
    bt_win_rate_vs_baseline,
    point,
)

Strata = Literal["subtask", "turn"] | None


@dataclass(frozen=True)
class Column:
    name: str
    extract: Callable[[ItemRow], float]
    """Raises KeyError / TypeError when a row lacks the value."""


@dataclass(frozen=True)
class ItemStatistic:
    suite: str
    metric: str
    columns: tuple[Column, ...]
    statistic: Statistic
    strata: Strata = "subtask"
    """Resampling strata: lm-eval subtasks (each keeps its size), MT-Bench turns, or none."""
    mcnemar: str | None = None
    """A column whose mean the metric increases with: when its values are 0/1 on both sides, McNemar's exact test
    gives the p-value."""
    proportion: bool = False
    """The value is 100 x the mean of a [0, 1] item score: a binomial SE from (value, n) is valid (conservative when the
    scores are not 0/1)."""

    def table(self, rows: Sequence[ItemRow]) -> ItemTable:
        return table_for([self], rows)

    def value(self, rows: Sequence[ItemRow]) -> float:
        """The metric on all `rows` (equals the record's value when the rows are all the record scored)."""
        return point(self.table(rows), self.statistic)

    def interval(self, rows: Sequence[ItemRow], resamples: int = DEFAULT_RESAMPLES, seed: Seed = 0) -> Interval:
        """The metric with its 95% percentile bootstrap interval over item resamples (n = len(rows))."""
        return bootstrap_ci(self.table(rows), self.statistic, resamples, seed)


NO_STATISTIC: Mapping[tuple[str, str], str] = {
    ("alpaca_eval", "lc_win_rate"): "alpaca_eval fits the length-controlled GLM once on all 805 instructions; it is "
                                    "not refitted per resample",
}


def statistic_for(suite: str, metric: str) -> ItemStatistic | None:
    return statistics_for(suite).get(metric)


def unavailable_reason(suite: str, metric: str) -> str:
    """Why (suite, metric) has no item statistic, in a phrase."""
    from harness.catalog import get_suite

    if get_suite(suite).aggregate_of:
        return "an average of other suites (no items of its own)"
    return NO_STATISTIC.get((suite, metric), f"no item statistic for {suite}.{metric}")


def statistics_for(suite: str) -> dict[str, ItemStatistic]:
    """Every metric of `suite` that its items can recompute."""
    from harness.catalog import get_suite

    spec = get_suite(suite)
    if suite == "alpaca_eval":
        return _alpaca_eval()
    if suite == "arena_hard":
        return _arena_hard()
    if suite == "mt_bench":
        return _mt_bench()
    if spec.engine == "lm-eval":
        rule = importlib.import_module(f"benchmarks.{suite}").LEADERBOARD
        return _lm_eval(suite, spec.headline, rule)
    return {}


def table_for(statistics: Sequence[ItemStatistic], rows: Sequence[ItemRow]) -> ItemTable:
    """One table holding the columns of every statistic given (they must share their strata)."""
    strata = {s.strata for s in statistics}
    if len(strata) > 1:
        raise ValueError(f"statistics with different strata {sorted(map(str, strata))} cannot share one table")
    columns = {c.name: c for s in statistics for c in s.columns}
    kind = strata.pop() if strata else None
    labels = [_stratum(row, kind) for row in rows]
    return ItemTable.build({name: [c.extract(r) for r in rows] for name, c in columns.items()}, labels)


def _stratum(row: ItemRow, kind: Strata) -> str | None:
    if kind == "subtask":
        return row.subtask
    if kind == "turn":
        return None if row.turn is None else str(row.turn)
    return None


# ------------------------------------------------------------------------------------------------------------ lm-eval

def _score(name: str) -> Column:
    return Column(name, lambda row: row.scores[name])


def _mean(column: str, lower_bound: float = 0.0) -> Statistic:
    """The pooled mean over all items (lm-eval's size-weighted group value), leaderboard-normalized."""
    return lambda s: _norm(s.mean(column), lower_bound)


def _subtask_mean(column: str, choices: Mapping[str, int]) -> Statistic:
    """Leaderboard BBH / MuSR: each subtask normalized with lo = 1/choices, then the plain mean of the subtasks."""
    def statistic(s: Sums) -> np.ndarray:
        lows = np.array([1.0 / choices[str(name)] for name in s.stratum_names])
        return _norm(s.stratum_means(column), lows).mean(axis=1)
    return statistic


def _norm(value: np.ndarray, lower_bound: float | np.ndarray) -> np.ndarray:
    """harness.scoring.leaderboard.norm, vectorized: 0 below lo, else (x - lo)/(1 - lo) x 100."""
    return np.where(value < lower_bound, 0.0, (value - lower_bound) / (1.0 - np.asarray(lower_bound)) * 100.0)


def _lm_eval(suite: str, headline: str, rule: LeaderboardRule) -> dict[str, ItemStatistic]:
    def stat(metric: str, columns: Sequence[Column], statistic: Statistic, *, mcnemar: str | None = None,
             proportion: bool = False) -> ItemStatistic:
        return ItemStatistic(suite, metric, tuple(columns), statistic, "subtask", mcnemar, proportion)

    m = rule.metric
    match rule.kind:
        case "raw":
            out = {headline: stat(headline, [_score(m)], _mean(m), mcnemar=m, proportion=True)}
        case "group":
            out = {name: stat(name, [_score(name)], _mean(name, rule.lower_bound), mcnemar=name,
                              proportion=not rule.lower_bound) for name in (m, *rule.also)}
            if rule.lower_bound:
                out[f"{m}_raw"] = stat(f"{m}_raw", [_score(m)], _mean(m), mcnemar=m, proportion=True)
        case "subtasks":
            out = {headline: stat(headline, [_score(m)], _subtask_mean(m, rule.subtask_choices)),  # not monotone in
                   # the pooled accuracy (subtasks weigh differently): the bootstrap gives its p
                   f"{m}_raw": stat(f"{m}_raw", [_score(m)], _mean(m), mcnemar=m, proportion=True)}
        case "ifeval":
            out = _ifeval(stat, headline)
    if rule.unweighted_too:
        out[f"{m}_unweighted"] = stat(f"{m}_unweighted", [_score(m)],
                                      lambda s: 100.0 * s.stratum_means(m).mean(axis=1))
    return out


def _ifeval(stat: Callable[..., ItemStatistic], headline: str) -> dict[str, ItemStatistic]:
    """Prompt level: the mean over prompts. Instruction level: followed instructions / instructions over all prompts, a
    ratio of sums (a row holds its fraction of followed instructions and their number). The card's number: the mean of
    the two strict accuracies."""
    count = _score("inst_level_strict_n")

    def followed(level: str) -> Column:
        name = f"inst_level_{level}_acc"
        return Column(f"{name}*n", lambda row: row.scores[name] * row.scores["inst_level_strict_n"])

    def inst(level: str) -> Statistic:
        return lambda s: 100.0 * s.ratio(f"inst_level_{level}_acc*n", "inst_level_strict_n")

    strict_prompt = _score("prompt_level_strict_acc")
    out = {headline: stat(headline, [strict_prompt, followed("strict"), count],
                          lambda s: (inst("strict")(s) + 100.0 * s.mean("prompt_level_strict_acc")) / 2.0)}
    for level in ("strict", "loose"):
        prompt = f"prompt_level_{level}_acc"
        out[prompt] = stat(prompt, [_score(prompt)], _mean(prompt), mcnemar=prompt, proportion=True)
        out[f"inst_level_{level}_acc"] = stat(f"inst_level_{level}_acc", [followed(level), count], inst(level))
    return out


# ------------------------------------------------------------------------------------------------------ judged suites

def _alpaca_eval() -> dict[str, ItemStatistic]:
    """alpaca_eval's `get_winrate`: win rate = mean(preference - 1) x 100; avg length = int(mean characters)."""
    win = Column("win", lambda row: row.scores["preference"] - 1.0)
    length = Column("length", lambda row: row.scores["length"])
    return {
        "win_rate": ItemStatistic("alpaca_eval", "win_rate", (win,), lambda s: 100.0 * s.mean("win"), None,
                                  proportion=True),
        "avg_length": ItemStatistic("alpaca_eval", "avg_length", (length,), lambda s: np.floor(s.mean("length")), None),
    }


# Battle points and battles of one game's verdict for the model, by game: upstream `get_battles_from_row` (game 1 has
# the baseline as A, game 2 swaps); a `>>` verdict counts MULTIPLIER battles, a tie one battle worth half.
_GAME_1 = {"A>>B": (0.0, MULTIPLIER), "A>B": (0.0, 1), "A=B": (0.5, 1), "B>A": (1.0, 1), "B>>A": (MULTIPLIER, MULTIPLIER)}
_GAME_2 = {"A>>B": (MULTIPLIER, MULTIPLIER), "A>B": (1.0, 1), "A=B": (0.5, 1), "B>A": (0.0, 1), "B>>A": (0.0, MULTIPLIER)}


def _arena_battles(row: ItemRow, part: int) -> float:
    games = row.games or []
    return float(sum(table[g][part] for table, g in zip((_GAME_1, _GAME_2), games, strict=False) if g in table))


def _arena_hard() -> dict[str, ItemStatistic]:
    """Score: the Bradley-Terry win rate vs the baseline, in closed form (harness.stats.bt_win_rate_vs_baseline);
    resamples are questions, both games of a question together. avg tokens: int(mean token length)."""
    points, battles = Column("points", lambda row: _arena_battles(row, 0)), Column("battles", lambda row: _arena_battles(row, 1))
    length = Column("length", lambda row: float(row.length) if row.length is not None else _missing("length"))
    return {
        "score": ItemStatistic("arena_hard", "score", (points, battles),
                               lambda s: bt_win_rate_vs_baseline(s.total("points"), s.total("battles")), None),
        "avg_tokens": ItemStatistic("arena_hard", "avg_tokens", (length,), lambda s: np.floor(s.mean("length")), None),
    }


def _mt_bench() -> dict[str, ItemStatistic]:
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


def _missing(field: str) -> float:
    raise KeyError(field)
