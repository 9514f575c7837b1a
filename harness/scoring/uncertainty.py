"""How precise one recorded number is: its 95% interval, standard error and n, and where they came from. The one rule
the card (harness.cards.intervals), the regression gate (harness.check) and unpaired comparisons (harness.compare) use.

Resolved per (record, metric), first that applies:
1. `recorded`: the record's own ci_low / ci_high (e.g. Arena-Hard's bootstrap over battles); SE = width / 3.92;
2. `members`: an Open LLM Leaderboard average, from its members' estimates (independent item sets): ± z·√(Σ SE²)/k;
3. `bootstrap`: a percentile bootstrap over the record's items, recomputing the metric through the suite's own
   aggregation (harness.scoring.items) and resampling its units (items, or MT-Bench questions); used only when the
   items give the record's value; seeded per suite. Stratified by subtask / turn; `bootstrap_pooled` when a stratum
   has fewer than 2 units (e.g. 1 document per BBH subtask), where the units are resampled as one pool (harness.stats);
4. `stderr`: value ± z·stderr from the record's standard error (lm-eval, alpaca_eval);
5. `binomial`: value ± z·√(p(1−p)/n) for a metric that is a proportion of n items.
n: the record's n, else (for the headline) the items it scored, else `n_hint` (a comparison passes the other side's n
for a published number that prints none: both scored the same suite), except that a bootstrap over questions counts
questions. Non-finite numbers are passed through unchanged: a caller that decides something refuses them.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

from harness.records import ItemRow, ResultRecord
from harness.scoring.items import ItemStatistic, statistic_for
from harness.specs import SUITES
from harness.stats import LEVEL, binomial_se

Method = Literal["recorded", "bootstrap", "bootstrap_pooled", "stderr", "binomial", "members"]
Z = NormalDist().inv_cdf(0.5 + LEVEL / 2)


@dataclass(frozen=True)
class Estimate:
    """What is known of one number's precision."""

    low: float | None = None
    high: float | None = None
    n: int | None = None
    se: float | None = None
    method: Method | None = None

    @property
    def has_interval(self) -> bool:
        return self.low is not None and self.high is not None


NOTHING = Estimate()


def resolve(record: ResultRecord, key: str, items: Sequence[ItemRow] | None, resamples: int, seed: int = 0,
            members: Sequence[Estimate] | None = None, n_hint: int | None = None) -> Estimate:
    """The estimate of `record.metrics[key]` (NOTHING for a failed record or an absent metric). `items`: the record's
    items.jsonl rows, if any; `members`: for an average, its member suites' headline estimates (None: not known)."""
    metric = record.metrics.get(key)
    if metric is None or record.status == "failed":
        return NOTHING
    spec = SUITES.get(record.suite)
    n = count(record, key) or n_hint
    if metric.ci_low is not None and metric.ci_high is not None:
        return Estimate(metric.ci_low, metric.ci_high, n, (metric.ci_high - metric.ci_low) / (2 * Z), "recorded")
    if spec.aggregate_of:
        return _from_members(metric.value, members, len(spec.aggregate_of)) or Estimate(n=n)
    statistic = statistic_for(record.suite, key)
    boot = _bootstrap(record, statistic, items, metric.value, n, resamples, seed)
    if boot is not None:
        return boot
    if metric.stderr is not None:
        return normal(metric.value, metric.stderr, n, "stderr")
    if statistic is not None and statistic.proportion and n and 0.0 <= metric.value <= 100.0:
        return normal(metric.value, 100.0 * binomial_se(metric.value / 100.0, n), n, "binomial")
    return Estimate(n=n)


def count(record: ResultRecord, key: str) -> int | None:
    """The n a record gives a metric: its own, else (for the headline) the items it scored."""
    metric = record.metrics[key]
    if metric.n is None and key == SUITES.get(record.suite).headline and record.coverage:
        return record.coverage.scored  # the headline's n; another metric may count fewer (MT-Bench's turn 1)
    return metric.n


def normal(value: float, se: float, n: int | None, method: Method) -> Estimate:
    return Estimate(value - Z * se, value + Z * se, n, se, method)


def suite_seed(seed: int, suite: str) -> list[int]:
    """Each suite draws from its own stream: its numbers do not depend on which other suites are shown."""
    return [seed, zlib.crc32(suite.encode())]


def same(x: float, y: float) -> bool:
    """Equal up to float noise (items recomputing a record's value)."""
    return abs(x - y) <= 1e-6 * max(1.0, abs(y))


def _bootstrap(record: ResultRecord, statistic: ItemStatistic | None, items: Sequence[ItemRow] | None, value: float,
               n: int | None, resamples: int, seed: int) -> Estimate | None:
    if statistic is None or not items:
        return None
    try:
        interval = statistic.interval(items, resamples, suite_seed(seed, record.suite))
    except (KeyError, TypeError):  # the rows lack a value this metric needs
        return None
    if not same(interval.value, value) or not (math.isfinite(interval.ci_low) and math.isfinite(interval.ci_high)):
        return None  # the items are not what the record scored: an interval about them would be about other numbers
    if statistic.unit != "item" or (n is None and statistic.metric == SUITES.get(record.suite).headline):
        n = interval.n
    return Estimate(interval.ci_low, interval.ci_high, n, interval.se,
                    "bootstrap" if interval.stratified else "bootstrap_pooled")


def _from_members(value: float, members: Sequence[Estimate] | None, k: int) -> Estimate | None:
    if members is None or len(members) != k or any(e.se is None for e in members):
        return None
    se = math.sqrt(sum(e.se**2 for e in members if e.se is not None)) / k
    counts = [e.n for e in members]
    total = sum(c for c in counts if c is not None) if all(c is not None for c in counts) else None
    return normal(value, se, total, "members")
