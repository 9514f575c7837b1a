"""The 95% interval and n a card prints beside a number, and where the interval came from: the rule is
harness.scoring.uncertainty.resolve (the same one the regression gate and unpaired comparisons use); this module reads
each record's items once, runs each bootstrap once, and says in a footnote how each interval was obtained.
A metric with no interval shows its n alone, or nothing (a published card has no n to show).
"""

from __future__ import annotations

from collections.abc import Iterable

from harness.catalog import get_suite
from harness.records import ItemRow, ResultRecord
from harness.scoring.uncertainty import NOTHING, Estimate, Method, resolve
from harness.stats import DEFAULT_RESAMPLES
from harness.store import RunDir, read_items

__all__ = ["NOTHING", "Estimate", "Intervals", "Method", "describe"]


def describe(method: Method | None, resamples: int) -> str:
    """How an interval was obtained, for the card's footnote."""
    return {
        "recorded": "as recorded by the suite's scorer",
        "bootstrap": f"percentile bootstrap over the record's items ({resamples:,} resamples, seeded)",
        "bootstrap_pooled": f"percentile bootstrap over the record's items as one pool, not within each subtask (a "
                            f"subtask has fewer than 2 items, which a stratified resample would hold fixed; a 1-item "
                            f"subtask counts its item's own normalized score) ({resamples:,} resamples, seeded)",
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
            self._done[key] = resolve(record, metric, self.items(record), self.resamples, self.seed,
                                      self._members(record))
        return self._done[key]

    def items(self, record: ResultRecord) -> list[ItemRow] | None:
        """The record's items.jsonl rows, or None when the card has no run directory or the file is absent."""
        if record.key not in self._items:
            path = self.run.items_path(record.model, record.variant, record.suite) if self.run else None
            self._items[record.key] = read_items(path) if path is not None and path.is_file() else None
        return self._items[record.key]

    def _members(self, record: ResultRecord) -> list[Estimate] | None:
        """An average's member estimates (None when a member is absent)."""
        members = get_suite(record.suite).aggregate_of
        found = [self.records.get((record.model, record.variant, m)) for m in members]
        if not members or any(r is None for r in found):
            return None
        return [self.get(r, get_suite(r.suite).headline) for r in found if r is not None]
