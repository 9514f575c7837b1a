"""Paired comparison of two evaluated models (`sppo-bench compare A B`, and the card's "vs previous / vs base").

For every (suite, metric) both sides carry: the two record values, delta = B - A, a 95% CI and a p-value, then
Holm-adjusted p-values across the rows. Where both sides have per-item results (`items.jsonl`) the test is paired over
the items both scored: a paired bootstrap that recomputes the metric through the suite's own aggregation
(harness.scoring.items) on each resample, seeded per suite; McNemar's exact test gives p for 0/1 accuracies. A side
without items (a published card, a reference JSON), or a metric no item statistic recomputes (AlpacaEval's LC win rate),
falls back to an unpaired normal test from each side's standard error, resolved by the rule the card and the gate use
(harness.scoring.uncertainty); the row says where each came from. A row with none of these says why.
The test is on the scale of the reported Δ: the bootstrap recomputes the reported (leaderboard-normalized) metric;
McNemar gives p only where that metric is a linear function of raw accuracy.
The Open LLM Leaderboard averages are compared through their member suites: the average of the members' paired
bootstrap differences (suites are independent item sets, so their resamples are independent).

Judged suites are compared only when both sides were judged by the same judge (harness.judgematch): otherwise the row
says "different judges: ... — not comparable" and carries no test, unless `allow_judge_mismatch`, which tests it and
puts the difference in the row's `judges` warning. A non-finite record value gets no test; a non-finite item score is
an error naming the item.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from harness.catalog import get_suite, suites
from harness.judgematch import judge_mismatch
from harness.records import ItemRow, Metric, ResultRecord
from harness.scoring import averages
from harness.scoring.items import ItemStatistic, statistics_for, table_for, unavailable_reason
from harness.scoring.uncertainty import Estimate, count, resolve, same, suite_seed
from harness.stats import (
    DEFAULT_RESAMPLES,
    ItemTable,
    Paired,
    bootstrap_p_value,
    holm,
    mcnemar,
    paired_bootstrap,
    percentile_ci,
    unpaired_normal,
)
from harness.store import item_key

MCNEMAR = "McNemar exact + paired bootstrap CI"
BOOTSTRAP = "paired bootstrap"
UNPAIRED = "unpaired normal"
NONE = "none"
NOT_COMPARABLE = "not comparable"
Metrics = Literal["all", "headline"]


@dataclass(frozen=True)
class Side:
    """One model's records (by suite) and, where the source has them, its per-item results (by suite)."""

    label: str
    source: str
    records: Mapping[str, ResultRecord]
    items: Mapping[str, Sequence[ItemRow]] = field(default_factory=dict)


@dataclass(frozen=True)
class Row:
    suite: str
    metric: str
    a: float
    b: float
    delta: float
    """B - A of the record values."""
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    p_holm: float | None
    n_paired: int | None
    """Items both sides scored (None for an unpaired row)."""
    method: str
    note: str = ""
    judges: str = ""
    """Set when the two sides' judges differ and the comparison was allowed anyway (`allow_judge_mismatch`)."""


def compare(a: Side, b: Side, resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
            metrics: Metrics = "all", allow_judge_mismatch: bool = False) -> list[Row]:
    """Rows for every (suite, metric) both sides carry (only each suite's headline with metrics="headline"), in the
    registry's suite order, with Holm-adjusted p-values across the rows."""
    a, b = _with_averages(a), _with_averages(b)
    shared = [s.name for s in suites() if _usable(a, s.name) and _usable(b, s.name)]
    rows: list[Row] = []
    draws: dict[str, np.ndarray] = {}
    for suite in [s for s in shared if not get_suite(s).aggregate_of]:
        found = _suite_rows(suite, a, b, resamples, seed, metrics, draws)
        rows += [_judged(r, judge_mismatch(a.records[suite], b.records[suite], r.metric), allow_judge_mismatch)
                 for r in found]
    for suite in [s for s in shared if get_suite(s).aggregate_of]:
        rows.append(_aggregate_row(suite, a, b, draws))
    order = {s: i for i, s in enumerate(shared)}
    rows.sort(key=lambda r: order[r.suite])
    adjusted = holm([r.p_value for r in rows])
    return [replace(r, p_holm=p) for r, p in zip(rows, adjusted, strict=True)]


def unshared_suites(a: Side, b: Side) -> tuple[list[str], list[str]]:
    """Suites with a usable record on A only, and on B only."""
    only_a = [s for s in a.records if _usable(a, s) and not _usable(b, s)]
    return only_a, [s for s in b.records if _usable(b, s) and not _usable(a, s)]


def _usable(side: Side, suite: str) -> bool:
    record = side.records.get(suite)
    return record is not None and record.status != "failed" and bool(record.metrics)


# ------------------------------------------------------------------------------------------------------ one suite

def _judged(row: Row, mismatch: str | None, allowed: bool) -> Row:
    """A row whose sides had different judges: not comparable (no test), or, when allowed, marked in `judges`."""
    if not mismatch:
        return row
    if allowed:
        return replace(row, judges=mismatch)
    return Row(row.suite, row.metric, row.a, row.b, row.delta, None, None, None, None, None, NOT_COMPARABLE, mismatch)


def _suite_rows(suite: str, a: Side, b: Side, resamples: int, seed: int, metrics: Metrics,
                draws: dict[str, np.ndarray]) -> list[Row]:
    spec = get_suite(suite)
    ra, rb = a.records[suite], b.records[suite]
    names = [m for m in _ordered(spec.name, ra, rb) if metrics == "all" or m == spec.headline]
    statistics = statistics_for(suite)
    paired, why = _paired(suite, [statistics[m] for m in names if m in statistics], a, b, resamples,
                          suite_seed(seed, suite))
    rows = []
    for m in names:
        ma, mb = ra.metrics[m], rb.metrics[m]
        bad = [f"{side} {v}" for side, v in (("A", ma.value), ("B", mb.value)) if not math.isfinite(v)]
        if bad:
            rows.append(Row(suite, m, ma.value, mb.value, mb.value - ma.value, None, None, None, None, None, NONE,
                            f"no test: the record value is not a finite number ({', '.join(bad)}); fix the record"))
            continue
        if m in paired:
            result, method = paired[m]
            if m == spec.headline:
                draws[suite] = result.draws
            rows.append(_paired_row(suite, m, ma, mb, result, method))
            continue
        reason = why.get(m) or unavailable_reason(suite, m)
        rows.append(_unpaired_row(suite, m, a, b, reason, resamples, seed))
    return rows


def _ordered(suite: str, ra: ResultRecord, rb: ResultRecord) -> list[str]:
    spec_order = [m.key for m in get_suite(suite).metrics]
    shared = [m for m in ra.metrics if m in rb.metrics]
    return sorted(shared, key=lambda m: spec_order.index(m) if m in spec_order else len(spec_order))


def _paired(suite: str, stats: Sequence[ItemStatistic], a: Side, b: Side, resamples: int,
            seed: list[int]) -> tuple[dict[str, tuple[Paired, str]], dict[str, str]]:
    """Paired results by metric, and why a metric could not be paired."""
    if suite not in a.items or suite not in b.items:
        missing = " and ".join(s for s, side in (("A", a), ("B", b)) if suite not in side.items)
        return {}, {s.metric: f"{missing} has no items for {suite} (aggregates only)" for s in stats}
    rows_a, rows_b = _pair(a.items[suite], b.items[suite])
    if not rows_a:
        return {}, {s.metric: "no item was scored on both sides" for s in stats}
    usable, why = [], {}
    for s in stats:
        try:
            s.table(rows_a), s.table(rows_b)
            usable.append(s)
        except (KeyError, TypeError) as exc:
            why[s.metric] = f"items lack {exc} (needed by its item statistic)"
    out: dict[str, tuple[Paired, str]] = {}
    for strata in dict.fromkeys(s.strata for s in usable):
        group = [s for s in usable if s.strata == strata]
        ta, tb = table_for(group, rows_a), table_for(group, rows_b)
        results = paired_bootstrap(ta, tb, {s.metric: s.statistic for s in group}, resamples, seed)
        for s in group:
            out[s.metric] = _with_mcnemar(results[s.metric], s, ta, tb)
    return out, why


def _pair(items_a: Sequence[ItemRow], items_b: Sequence[ItemRow]) -> tuple[list[ItemRow], list[ItemRow]]:
    """The items both sides scored, aligned, in A's order."""
    by_key = {item_key(r): r for r in items_b}
    both = [(r, by_key[item_key(r)]) for r in items_a if item_key(r) in by_key]
    return [x for x, _ in both], [y for _, y in both]


def _with_mcnemar(result: Paired, s: ItemStatistic, ta: ItemTable, tb: ItemTable) -> tuple[Paired, str]:
    if s.mcnemar is None:
        return result, BOOTSTRAP
    col_a, col_b = (t.values[:, t.columns.index(s.mcnemar)] for t in (ta, tb))
    if not (np.isin(col_a, (0.0, 1.0)).all() and np.isin(col_b, (0.0, 1.0)).all()):
        return result, BOOTSTRAP
    return replace(result, p_value=mcnemar(col_a == 1.0, col_b == 1.0).p_value), MCNEMAR


def _paired_row(suite: str, metric: str, ma: Metric, mb: Metric, result: Paired, method: str) -> Row:
    note = ""
    if not (_close(result.a, ma.value) and _close(result.b, mb.value)):
        note = (f"the {result.n} items both sides scored give A {result.a:.4g}, B {result.b:.4g} (records: "
                f"{ma.value:.4g}, {mb.value:.4g}); CI and p are about those items")
    if not result.stratified:
        note = "; ".join(filter(None, [note, "bootstrap over the items as one pool: a stratum has < 2 paired items"]))
    return Row(suite, metric, ma.value, mb.value, mb.value - ma.value, result.ci_low, result.ci_high, result.p_value,
               None, result.n, method, note)


def _close(x: float, y: float) -> bool:
    return same(x, y)


# --------------------------------------------------------------------------------------------------------- unpaired

def _unpaired_row(suite: str, metric: str, a: Side, b: Side, reason: str, resamples: int, seed: int) -> Row:
    ra, rb = a.records[suite], b.records[suite]
    ma, mb = ra.metrics[metric], rb.metrics[metric]
    ea = resolve(ra, metric, a.items.get(suite), resamples, seed, n_hint=count(rb, metric))
    eb = resolve(rb, metric, b.items.get(suite), resamples, seed, n_hint=count(ra, metric))
    how_a, how_b = _how(ea), _how(eb)
    if ea.se is None or eb.se is None or not (math.isfinite(ea.se) and math.isfinite(eb.se)):
        return Row(suite, metric, ma.value, mb.value, mb.value - ma.value, None, None, None, None, None, NONE,
                   f"no test: {reason}; SE unknown: A {how_a}, B {how_b}")
    test = unpaired_normal((ma.value, ea.se), (mb.value, eb.se))
    return Row(suite, metric, ma.value, mb.value, test.delta, test.ci_low, test.ci_high, test.p_value, None, None,
               UNPAIRED, f"{reason}; SE: A {how_a}, B {how_b}")


def _how(e: Estimate) -> str:
    """Where a side's SE came from, in the row's note."""
    if e.se is not None and not math.isfinite(e.se):
        return f"{e.method} SE is {e.se} (not finite)"
    return {"recorded": "record CI width / 3.92", "bootstrap": f"bootstrap over its {e.n} units",
            "bootstrap_pooled": f"bootstrap over its {e.n} units as one pool (a stratum has < 2 units)",
            "stderr": "record stderr", "binomial": f"binomial (n={e.n})", "members": "its member suites' SEs",
            None: "no stderr, CI, items or n recorded"}[e.method]


# ------------------------------------------------------------------------------------------------------- aggregates

def _with_averages(side: Side) -> Side:
    """Add the leaderboard averages a side lacks when all their members are there (harness.scoring.averages, as the
    card and the gate compute them)."""
    usable = [r for r in side.records.values() if _usable(side, r.suite)]
    added = averages.with_averages(usable, suites())[len(usable):]
    return replace(side, records={**side.records, **{r.suite: r for r in added}})


def _aggregate_row(suite: str, a: Side, b: Side, draws: Mapping[str, np.ndarray]) -> Row:
    spec = get_suite(suite)
    ma, mb = a.records[suite].metrics[spec.headline], b.records[suite].metrics[spec.headline]
    missing = [m for m in spec.aggregate_of if m not in draws]
    if missing:
        return Row(suite, spec.headline, ma.value, mb.value, mb.value - ma.value, None, None, None, None, None, NONE,
                   f"no test: members without paired items on both sides: {', '.join(missing)}")
    delta = np.mean([draws[m] for m in spec.aggregate_of], axis=0)
    low, high = percentile_ci(delta)
    return Row(suite, spec.headline, ma.value, mb.value, mb.value - ma.value, low, high, bootstrap_p_value(delta), None,
               None, BOOTSTRAP, f"mean of the paired bootstrap differences of {', '.join(spec.aggregate_of)}")
