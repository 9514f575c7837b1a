"""Paired comparison of two evaluated models (`sppo-bench compare A B`, and the card's "vs previous / vs base").

For every (suite, metric) both sides carry: the two record values, delta = B - A, a 95% CI and a p-value, then
Holm-adjusted p-values across the rows. Where both sides have per-item results (`items.jsonl`) the test is paired over
the items both scored: a paired bootstrap that recomputes the metric through the suite's own aggregation
(harness.scoring.items) on each resample, seeded per suite; McNemar's exact test gives p for 0/1 accuracies. A side
without items (a published card, a reference JSON), or a metric no item statistic recomputes (AlpacaEval's LC win rate),
falls back to an unpaired normal test from each side's standard error: the record's stderr, else its CI, else a
bootstrap over its items, else binomial from its n and value; the row says which. A row with none of these says why.
The Open LLM Leaderboard averages are compared through their member suites: the average of the members' paired
bootstrap differences (suites are independent item sets, so their resamples are independent).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from statistics import NormalDist
from typing import Literal

import numpy as np

from harness.catalog import get_suite, suites
from harness.errors import UserError
from harness.records import ItemRow, Metric, ResultRecord
from harness.results import load_records, run_dir
from harness.scoring.items import ItemStatistic, statistics_for, table_for, unavailable_reason
from harness.stats import (
    DEFAULT_RESAMPLES,
    LEVEL,
    ItemTable,
    Paired,
    binomial_se,
    bootstrap_ci,
    bootstrap_p_value,
    holm,
    mcnemar,
    paired_bootstrap,
    percentile_ci,
    unpaired_normal,
)
from harness.store import ITEMS_FILE, RunDir, item_key, read_items

MCNEMAR = "McNemar exact + paired bootstrap CI"
BOOTSTRAP = "paired bootstrap"
UNPAIRED = "unpaired normal"
NONE = "none"
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


def compare(a: Side, b: Side, resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
            metrics: Metrics = "all") -> list[Row]:
    """Rows for every (suite, metric) both sides carry (only each suite's headline with metrics="headline"), in the
    registry's suite order, with Holm-adjusted p-values across the rows."""
    a, b = _with_averages(a), _with_averages(b)
    shared = [s.name for s in suites() if _usable(a, s.name) and _usable(b, s.name)]
    rows: list[Row] = []
    draws: dict[str, np.ndarray] = {}
    for suite in [s for s in shared if not get_suite(s).aggregate_of]:
        rows += _suite_rows(suite, a, b, resamples, _suite_seed(seed, suite), metrics, draws)
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


def load_side(path: Path, model: str | None = None, option: str = "--model") -> Side:
    """A run directory (RUN/records, items under RUN/samples), a train-and-eval folder (its run is OUT/eval), a reference
    JSON, a record JSON or a model card. A source holding several models needs `model` (its label)."""
    path = Path(path)
    run = run_dir(path)
    records = load_records(path)
    labels = list(dict.fromkeys(r.label for r in records))
    if not labels:
        raise UserError(f"{path}: holds no result records; evaluate into it first or pass another source")
    if model is None and len(labels) > 1:
        raise UserError(f"{path} holds {len(labels)} models ({'; '.join(labels)}); choose one with {option} NAME")
    label = model if model is not None else labels[0]
    if label not in labels:
        raise UserError(f"{path}: no model {label!r}; it holds {'; '.join(labels)} (pass one of them to {option})")
    chosen = [r for r in records if r.label == label]
    return side_from_run(run, chosen, str(path)) if run else Side(label, str(path), {r.suite: r for r in chosen})


def side_from_run(run: RunDir, records: Sequence[ResultRecord], source: str | None = None) -> Side:
    """One model's records (all with the same label) and the items.jsonl the run directory holds beside them."""
    labels = {r.label for r in records}
    if len(labels) != 1:
        raise ValueError(f"a side is one model; got labels {sorted(labels)}")
    items = {}
    for r in records:
        file = run.samples_dir(r.model, r.variant, r.suite) / ITEMS_FILE
        if file.is_file():
            items[r.suite] = read_items(file)
    return Side(labels.pop(), source or str(run.root), {r.suite: r for r in records}, items)


def _usable(side: Side, suite: str) -> bool:
    record = side.records.get(suite)
    return record is not None and record.status != "failed" and bool(record.metrics)


def _suite_seed(seed: int, suite: str) -> list[int]:
    """Each suite draws from its own stream: its numbers do not depend on which other suites are compared."""
    return [seed, zlib.crc32(suite.encode())]


# ------------------------------------------------------------------------------------------------------ one suite

def _suite_rows(suite: str, a: Side, b: Side, resamples: int, seed: list[int], metrics: Metrics,
                draws: dict[str, np.ndarray]) -> list[Row]:
    spec = get_suite(suite)
    ra, rb = a.records[suite], b.records[suite]
    names = [m for m in _ordered(spec.name, ra, rb) if metrics == "all" or m == spec.headline]
    statistics = statistics_for(suite)
    paired, why = _paired(suite, [statistics[m] for m in names if m in statistics], a, b, resamples, seed)
    rows = []
    for m in names:
        ma, mb = ra.metrics[m], rb.metrics[m]
        if m in paired:
            result, method = paired[m]
            if m == spec.headline:
                draws[suite] = result.draws
            rows.append(_paired_row(suite, m, ma, mb, result, method))
            continue
        reason = why.get(m) or unavailable_reason(suite, m)
        rows.append(_unpaired_row(suite, m, ma, mb, statistics.get(m), a, b, reason, resamples, seed))
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
    return Row(suite, metric, ma.value, mb.value, mb.value - ma.value, result.ci_low, result.ci_high, result.p_value,
               None, result.n, method, note)


def _close(x: float, y: float) -> bool:
    return abs(x - y) <= 1e-6 * max(1.0, abs(y))


# --------------------------------------------------------------------------------------------------------- unpaired

def _unpaired_row(suite: str, metric: str, ma: Metric, mb: Metric, statistic: ItemStatistic | None, a: Side, b: Side,
                  reason: str, resamples: int, seed: list[int]) -> Row:
    n_a, n_b = ma.n or _scored(a, suite), mb.n or _scored(b, suite)
    se_a, how_a = _stderr(ma, statistic, a.items.get(suite), n_a or n_b, resamples, seed)
    se_b, how_b = _stderr(mb, statistic, b.items.get(suite), n_b or n_a, resamples, seed)
    if se_a is None or se_b is None:
        return Row(suite, metric, ma.value, mb.value, mb.value - ma.value, None, None, None, None, None, NONE,
                   f"no test: {reason}; SE unknown: A {how_a}, B {how_b}")
    test = unpaired_normal((ma.value, se_a), (mb.value, se_b))
    return Row(suite, metric, ma.value, mb.value, test.delta, test.ci_low, test.ci_high, test.p_value, None, None,
               UNPAIRED, f"{reason}; SE: A {how_a}, B {how_b}")


def _scored(side: Side, suite: str) -> int | None:
    coverage = side.records[suite].coverage
    return coverage.scored if coverage else None


def _stderr(m: Metric, statistic: ItemStatistic | None, items: Sequence[ItemRow] | None, n: int | None,
            resamples: int, seed: list[int]) -> tuple[float | None, str]:
    """A side's standard error and where it came from: the record's stderr, its CI, its items, or binomial."""
    if m.stderr is not None:
        return m.stderr, "record stderr"
    if m.ci_low is not None and m.ci_high is not None:
        return (m.ci_high - m.ci_low) / (2 * NormalDist().inv_cdf(0.5 + LEVEL / 2)), "record CI width / 3.92"
    if statistic is not None and items:
        try:
            interval = bootstrap_ci(statistic.table(items), statistic.statistic, resamples, seed)
            return interval.se, f"bootstrap over its {interval.n} items"
        except (KeyError, TypeError):
            pass
    if statistic is not None and statistic.proportion and n and 0.0 <= m.value <= 100.0:
        return 100.0 * binomial_se(m.value / 100.0, n), f"binomial (n={n})"
    return None, "no stderr, CI, items or n recorded"


# ------------------------------------------------------------------------------------------------------- aggregates

def _with_averages(side: Side) -> Side:
    """Add the leaderboard averages a side lacks when all their members are there (the card computes them too)."""
    records = dict(side.records)
    for spec in suites():
        members = [records.get(m) for m in spec.aggregate_of]
        if not spec.aggregate_of or spec.name in records or not all(m is not None and _usable(side, m.suite)
                                                                    for m in members):
            continue
        values = [m.metrics[get_suite(m.suite).headline].value for m in members if m is not None
                  and get_suite(m.suite).headline in m.metrics]
        if len(values) == len(members):
            first = members[0]
            assert first is not None
            records[spec.name] = first.model_copy(update={"suite": spec.name, "metrics": {
                spec.headline: Metric(value=float(np.mean(values)))}, "subtasks": {}, "coverage": None, "notes": []})
    return replace(side, records=records)


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
