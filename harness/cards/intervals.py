"""The 95% interval and n a card prints beside a number, and where the interval came from.

Resolved per (record, metric), first that applies:
1. `recorded`: the record's own ci_low / ci_high (Arena-Hard's bootstrap over battles);
2. `bootstrap`: a percentile bootstrap over the record's items (`RUN/samples/<model>/<suite>/items.jsonl`, when the card
   is rendered from a run directory), recomputing the metric through the suite's own aggregation
   (harness.scoring.items); used only when the items give the record's value;
3. `stderr`: value ± z·stderr from the record's standard error (lm-eval, alpaca_eval);
4. `binomial`: value ± z·√(p(1−p)/n) for a metric that is a proportion of n items;
5. `members`: an Open LLM Leaderboard average, from its members' standard errors (independent item sets):
   ± z·√(Σ SE²)/k.
A metric with none of these shows its n alone, or nothing (a published card has no n to show).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

from harness.catalog import get_suite
from harness.records import ItemRow, ResultRecord
from harness.scoring.items import ItemStatistic, statistics_for
from harness.stats import DEFAULT_RESAMPLES, LEVEL, binomial_se
from harness.store import RunDir, read_items

Method = Literal["recorded", "bootstrap", "stderr", "binomial", "members"]
Z = NormalDist().inv_cdf(0.5 + LEVEL / 2)


@dataclass(frozen=True)
class Estimate:
    """What the card knows of one number's precision."""

    low: float | None = None
    high: float | None = None
    n: int | None = None
    se: float | None = None
    method: Method | None = None

    @property
    def has_interval(self) -> bool:
        return self.low is not None and self.high is not None


NOTHING = Estimate()


def describe(method: Method | None, resamples: int) -> str:
    """How an interval was obtained, for the card's footnote."""
    return {
        "recorded": "as recorded by the suite's scorer",
        "bootstrap": f"percentile bootstrap over the record's items ({resamples:,} resamples, seeded)",
        "stderr": "value ± 1.96 × the recorded standard error",
        "binomial": "binomial, value ± 1.96 × √(p(1−p)/n)",
        "members": "from the member suites' standard errors, ± 1.96 × √(Σ SE²)/k (independent item sets)",
        None: "no interval (no CI, stderr or items recorded), n only",
    }[method]


class Intervals:
    """Estimates for the numbers of one card; items are read from `run` once per record, bootstraps run once per
    (record, metric) with a seed per suite, so a card renders the same way every time."""

    def __init__(self, records: Iterable[ResultRecord], run: RunDir | None = None,
                 resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> None:
        self.records = {r.key: r for r in records}
        self.run, self.resamples, self.seed = run, resamples, seed
        self._items: dict[tuple[str, str | None, str], list[ItemRow] | None] = {}
        self._done: dict[tuple[tuple[str, str | None, str], str], Estimate] = {}

    def get(self, record: ResultRecord, metric: str) -> Estimate:
        key = (record.key, metric)
        if key not in self._done:
            self._done[key] = self._resolve(record, metric)
        return self._done[key]

    def items(self, record: ResultRecord) -> list[ItemRow] | None:
        """The record's items.jsonl rows, or None when the card has no run directory or the file is absent."""
        if record.key not in self._items:
            path = self.run.items_path(record.model, record.variant, record.suite) if self.run else None
            self._items[record.key] = read_items(path) if path is not None and path.is_file() else None
        return self._items[record.key]

    def _resolve(self, record: ResultRecord, key: str) -> Estimate:
        metric = record.metrics.get(key)
        if metric is None or record.status == "failed":
            return NOTHING
        spec = get_suite(record.suite)
        n = metric.n
        if n is None and key == spec.headline and record.coverage:  # the items scored are the headline's n; another
            n = record.coverage.scored  # metric may count fewer (MT-Bench's turn 1)
        if metric.ci_low is not None and metric.ci_high is not None:
            return Estimate(metric.ci_low, metric.ci_high, n, (metric.ci_high - metric.ci_low) / (2 * Z), "recorded")
        if spec.aggregate_of:
            return self._members(record, spec.aggregate_of) or Estimate(n=n)
        statistic = statistics_for(record.suite).get(key)
        boot = self._bootstrap(record, statistic, metric.value, n)
        if boot is not None:
            return boot
        if metric.stderr is not None:
            return _normal(metric.value, metric.stderr, n, "stderr")
        if statistic is not None and statistic.proportion and n and 0.0 <= metric.value <= 100.0:
            return _normal(metric.value, 100.0 * binomial_se(metric.value / 100.0, n), n, "binomial")
        return Estimate(n=n)

    def _bootstrap(self, record: ResultRecord, statistic: ItemStatistic | None, value: float,
                   n: int | None) -> Estimate | None:
        rows = self.items(record) if statistic is not None else None
        if statistic is None or not rows:
            return None
        try:
            interval = statistic.interval(rows, self.resamples, [self.seed, zlib.crc32(record.suite.encode())])
        except (KeyError, TypeError):  # the rows lack a value this metric needs
            return None
        if not _same(interval.value, value) or not (math.isfinite(interval.ci_low) and math.isfinite(interval.ci_high)):
            return None  # the items are not what the record scored: an interval about them would be about other numbers
        if n is None and statistic.metric == get_suite(record.suite).headline:
            n = interval.n
        return Estimate(interval.ci_low, interval.ci_high, n, interval.se, "bootstrap")

    def _members(self, record: ResultRecord, members: Sequence[str]) -> Estimate | None:
        value = record.metrics[get_suite(record.suite).headline].value
        found = [self.records.get((record.model, record.variant, m)) for m in members]
        estimates = [self.get(r, get_suite(r.suite).headline) for r in found if r is not None]
        if len(estimates) != len(members) or any(e.se is None for e in estimates):
            return None
        se = math.sqrt(sum(e.se**2 for e in estimates if e.se is not None)) / len(members)
        counts = [e.n for e in estimates]
        total = sum(c for c in counts if c is not None) if all(c is not None for c in counts) else None
        return _normal(value, se, total, "members")


def _normal(value: float, se: float, n: int | None, method: Method) -> Estimate:
    return Estimate(value - Z * se, value + Z * se, n, se, method)


def _same(x: float, y: float) -> bool:
    return abs(x - y) <= 1e-6 * max(1.0, abs(y))
