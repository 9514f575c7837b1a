"""How each (suite, metric) a record carries is recomputed from its items: the per-item columns it reads and the
statistic of their sums (harness.stats.Sums) that gives the record's number, on the card's scale. A bootstrap
recomputes it on every resample; on all items it equals the record's value (tests/test_items.py).

`statistics_for(suite)` returns `ItemStatistic`s by metric. lm-eval suites derive theirs from the `LeaderboardRule` on
their spec, as the record builder (harness.engines.lmeval.results) does; a judged suite registers its own from its
module (benchmarks/<suite>/) with `register_item_statistics`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from harness.errors import UserError
from harness.records import ItemRow
from harness.scoring.leaderboard import norm
from harness.specs import SUITES, LeaderboardRule
from harness.stats import (
    DEFAULT_RESAMPLES,
    Interval,
    ItemTable,
    Seed,
    Statistic,
    Sums,
    bootstrap_ci,
    point,
)

Strata = Literal["subtask", "turn"] | None
Unit = Literal["item", "question"]


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
    """A column the metric is a linear, increasing function of (its mean x 100: raw accuracy): when its values are 0/1
    on both sides, McNemar's exact test gives the p-value. None where the reported metric is not linear in it (a
    leaderboard score clipped at the chance floor): the paired bootstrap on the reported scale gives p."""
    proportion: bool = False
    """The value is 100 x the mean of a [0, 1] item score: a binomial SE from (value, n) is valid (conservative when the
    scores are not 0/1)."""
    unit: Unit = "item"
    """What is resampled: each row (`item`), or each `question` with all its rows (MT-Bench: a question's two turns
    are not independent, so they are drawn together); n counts units."""

    def table(self, rows: Sequence[ItemRow]) -> ItemTable:
        return table_for([self], rows)

    def value(self, rows: Sequence[ItemRow]) -> float:
        """The metric on all `rows` (equals the record's value when the rows are all the record scored)."""
        return point(self.table(rows), self.statistic)

    def interval(self, rows: Sequence[ItemRow], resamples: int = DEFAULT_RESAMPLES, seed: Seed = 0) -> Interval:
        """The metric with its 95% percentile bootstrap interval over resamples of its units (n = units)."""
        return bootstrap_ci(self.table(rows), self.statistic, resamples, seed)


_JUDGED: dict[str, Callable[[], dict[str, ItemStatistic]]] = {}
_NO_STATISTIC: dict[tuple[str, str], str] = {}


def register_item_statistics(suite: str, build: Callable[[], dict[str, ItemStatistic]],
                             unavailable: Mapping[str, str] | None = None) -> None:
    """A suite's own statistics (judged suites), and why some of its metrics have none."""
    if suite in _JUDGED:
        raise ValueError(f"item statistics of {suite!r} are registered twice")
    _JUDGED[suite] = build
    _NO_STATISTIC.update({(suite, metric): why for metric, why in (unavailable or {}).items()})


def statistic_for(suite: str, metric: str) -> ItemStatistic | None:
    return statistics_for(suite).get(metric)


def unavailable_reason(suite: str, metric: str) -> str:
    """Why (suite, metric) has no item statistic, in a phrase."""
    if SUITES.get(suite).aggregate_of:
        return "an average of other suites (no items of its own)"
    return _NO_STATISTIC.get((suite, metric), f"no item statistic for {suite}.{metric}")


def statistics_for(suite: str) -> dict[str, ItemStatistic]:
    """Every metric of `suite` that its items can recompute."""
    spec = SUITES.get(suite)
    if suite in _JUDGED:
        return _JUDGED[suite]()
    if spec.engine == "lm-eval" and spec.leaderboard is not None:
        return _lm_eval(suite, spec.headline, spec.leaderboard)
    return {}


def table_for(statistics: Sequence[ItemStatistic], rows: Sequence[ItemRow]) -> ItemTable:
    """One table holding the columns of every statistic given (they must share their strata and unit): a row per item,
    or per question (its rows' columns summed) for unit `question`. A value that is not finite is an error naming the
    item (a NaN would otherwise vanish from the resamples and leave an interval of NaN and p 1)."""
    kinds = {(s.strata, s.unit) for s in statistics}
    if len(kinds) > 1:
        raise ValueError(f"statistics with different strata or units {sorted(map(str, kinds))} cannot share one table")
    columns = {c.name: c for s in statistics for c in s.columns}
    kind, unit = kinds.pop() if kinds else (None, "item")
    values = {name: [_finite(c.extract(r), c.name, r, statistics) for r in rows] for name, c in columns.items()}
    labels = [_stratum(row, kind) for row in rows]
    if unit == "question":
        values, labels = _by_question(rows, values, labels)
    return ItemTable.build(values, labels)


def _finite(value: float, column: str, row: ItemRow, statistics: Sequence[ItemStatistic]) -> float:
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    if not isinstance(value, (int, float)):
        raise TypeError(column)
    suite = statistics[0].suite if statistics else "?"
    where = f"item {row.item!r}" + (f" ({row.subtask})" if row.subtask else "") + \
        (f", turn {row.turn}" if row.turn is not None else "")
    raise UserError(f"{suite}: {where} has {column} = {value}, not a finite number; re-score or remove that item "
                    "from items.jsonl")


def _by_question(rows: Sequence[ItemRow], values: dict[str, list[float]],
                 labels: list[str | None]) -> tuple[dict[str, list[float]], list[str | None]]:
    """Sum each column over the rows of one question ((subtask, item) in first-seen order), its stratum the first
    row's."""
    index: dict[tuple[str | None, str], int] = {}
    for row in rows:
        index.setdefault((row.subtask, row.item), len(index))
    where = [index[(row.subtask, row.item)] for row in rows]
    summed = {}
    for name, column in values.items():
        total = np.zeros(len(index))
        np.add.at(total, where, np.asarray(column, dtype=float))
        summed[name] = [float(x) for x in total]
    first: dict[int, str | None] = {}
    for i, label in zip(where, labels, strict=True):
        first.setdefault(i, label)
    return summed, [first[i] for i in range(len(index))]


def _stratum(row: ItemRow, kind: Strata) -> str | None:
    if kind == "subtask":
        return row.subtask
    if kind == "turn":
        return None if row.turn is None else str(row.turn)
    return None


# ------------------------------------------------------------------------------------------------------------ lm-eval

def score_column(name: str) -> Column:
    """The row's per-item score `name`."""
    return Column(name, lambda row: row.scores[name])


def _mean(column: str, lower_bound: float = 0.0) -> Statistic:
    """The pooled mean over all items (lm-eval's size-weighted group value), leaderboard-normalized."""
    return lambda s: _norm(s.mean(column), lower_bound)


def _subtask_mean(column: str, choices: Mapping[str, int]) -> Statistic:
    """Leaderboard BBH / MuSR: each subtask normalized with lo = 1/choices, then the plain mean of the subtasks.

    When a subtask has fewer than 2 items the items are resampled as one pool (harness.stats: a stratum of one item
    would never vary). A 1-item subtask then counts its item's own normalized value (`_normalized`, the clip included:
    on all items exactly its subtask's score) times the times it was drawn; a subtask of several items keeps the
    normalized mean of its drawn items over its size. So the value on all items is the leaderboard's whatever the
    sizes; with one item per subtask each draw is the plain mean of the drawn items' normalized values (the textbook
    unstratified bootstrap), and with mixed sizes the two kinds of subtask mix in the one mean."""
    def statistic(s: Sums) -> np.ndarray:
        lows = np.array([1.0 / choices[str(name)] for name in s.stratum_names])
        subtasks = _norm(s.stratum_means(column), lows)
        if not s.stratified:
            subtasks = np.where(s.sizes == 1, s.column(_normalized(column)), subtasks)
        return subtasks.mean(axis=1)
    return statistic


def _normalized(column: str) -> str:
    return f"{column}:normalized"


def normalized_column(column: str, choices: Mapping[str, int]) -> Column:
    """The item's own leaderboard-normalized score, lo = 1/choices of its subtask (0 below chance, else 0..100)."""
    return Column(_normalized(column), lambda row: norm(row.scores[column], 1.0 / choices[str(row.subtask)]))


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
            out = {headline: stat(headline, [score_column(m)], _mean(m), mcnemar=m, proportion=True)}
        case "group":
            linear = not rule.lower_bound  # clipped at the chance floor: not a linear function of raw accuracy
            out = {name: stat(name, [score_column(name)], _mean(name, rule.lower_bound),
                              mcnemar=name if linear else None, proportion=linear) for name in (m, *rule.also)}
            if rule.lower_bound:
                out[f"{m}_raw"] = stat(f"{m}_raw", [score_column(m)], _mean(m), mcnemar=m, proportion=True)
        case "subtasks":
            out = {headline: stat(headline, [score_column(m), normalized_column(m, rule.subtask_choices)],
                                  _subtask_mean(m, rule.subtask_choices)),  # not monotone in the pooled accuracy
                   # (subtasks weigh differently): the bootstrap gives its p
                   f"{m}_raw": stat(f"{m}_raw", [score_column(m)], _mean(m), mcnemar=m, proportion=True)}
        case "ifeval":
            out = _ifeval(stat, headline)
    if rule.unweighted_too:
        out[f"{m}_unweighted"] = stat(f"{m}_unweighted", [score_column(m)],
                                      lambda s: 100.0 * s.stratum_means(m).mean(axis=1))
    return out


def _ifeval(stat: Callable[..., ItemStatistic], headline: str) -> dict[str, ItemStatistic]:
    """Prompt level: the mean over prompts. Instruction level: followed instructions / instructions over all prompts, a
    ratio of sums (a row holds its fraction of followed instructions and their number). The card's number: the mean of
    the two strict accuracies."""
    count = score_column("inst_level_strict_n")

    def followed(level: str) -> Column:
        name = f"inst_level_{level}_acc"
        return Column(f"{name}*n", lambda row: row.scores[name] * row.scores["inst_level_strict_n"])

    def inst(level: str) -> Statistic:
        return lambda s: 100.0 * s.ratio(f"inst_level_{level}_acc*n", "inst_level_strict_n")

    strict_prompt = score_column("prompt_level_strict_acc")
    out = {headline: stat(headline, [strict_prompt, followed("strict"), count],
                          lambda s: (inst("strict")(s) + 100.0 * s.mean("prompt_level_strict_acc")) / 2.0)}
    for level in ("strict", "loose"):
        prompt = f"prompt_level_{level}_acc"
        out[prompt] = stat(prompt, [score_column(prompt)], _mean(prompt), mcnemar=prompt, proportion=True)
        out[f"inst_level_{level}_acc"] = stat(f"inst_level_{level}_acc", [followed(level), count], inst(level))
    return out
