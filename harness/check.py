"""Regression check: compare result metrics with reference metrics, metric by metric, failing closed.

A metric regresses when it is worse than the reference by more than max(abs_tol, sigma * SE), where SE combines both
sides' standard errors, each resolved by the rule the card uses (harness.scoring.uncertainty: the record's CI, an
average's members, a bootstrap over its items when the side is a run directory holding items.jsonl, the record's
stderr, binomial from n and the value for a proportion); the table says which. Improvements never fail unless
two-sided. Fails also (exit status 1, as a regression):
- `invalid`: a value or standard error on either side that is not a finite number (NaN, inf): never a pass;
- `not comparable`: a judged suite whose reference and result were judged by different judges (judge id, model,
  prompt hash, fingerprint; harness.judgematch), unless `allow_judge_mismatch`, which compares them and names the
  difference in the `judges` warning column;
- `failed`: the result record of a reference metric failed;
- `missing`: a suite's headline metric (the registry's; the card's first column except MT-Bench, whose headline is the
  average) is in the reference and not in the results, for a model the results hold; the reason comes from the result
  record's notes (e.g. LC needs df_gamed.csv). `--allow-missing SUITE[:METRIC]` accepts it;
- `partial`: a partial result record (`--limit`) against a complete reference, unless `--allow-partial`.
Other metrics found on one side only, and models the results do not hold at all, are listed with their own verdict.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from harness.cards import coverage_text, is_partial, with_averages
from harness.catalog import get_suite
from harness.errors import UserError
from harness.judgematch import judge_mismatch
from harness.records import ItemRow, Metric, ResultRecord
from harness.scoring.uncertainty import Estimate, resolve
from harness.store import RunDir, read_items
from harness.tables import escape_cell

Match = Literal["label", "iteration"]
Verdict = Literal["pass", "info", "regression", "improvement", "changed", "failed", "missing", "partial", "invalid",
                  "not comparable", "missing (allowed)", "only in reference", "only in results"]
FAILING: frozenset[str] = frozenset({"regression", "changed", "failed", "missing", "partial", "invalid",
                                     "not comparable"})
_EPS = 1e-9  # card numbers carry float noise (7.90 - 7.40 = 0.5000000000000004): a drop equal to the tolerance passes
SE_RESAMPLES = 2_000
"""Bootstrap resamples for an SE from items (the SE, not a tail percentile, so fewer than a CI needs)."""


@dataclass(frozen=True)
class Comparison:
    model: str
    variant: str | None
    suite: str
    metric: str
    reference: float | None
    result: float | None
    tolerance: float | None
    verdict: Verdict
    se_from: str = "—"
    """Where each side's standard error came from: `reference side / results side`."""
    reason: str = ""
    """Why a metric is missing, partial, failed, invalid or not comparable (one line)."""
    judges: str = ""
    """The judges' difference, when it was compared anyway (`allow_judge_mismatch`)."""

    @property
    def delta(self) -> float | None:
        return None if self.reference is None or self.result is None else self.result - self.reference

    @property
    def name(self) -> str:
        label = f"{self.model} ({self.variant})" if self.variant else self.model
        return f"{label} / {self.suite} / {self.metric}"


def compare(
    reference: Iterable[ResultRecord],
    results: Iterable[ResultRecord],
    abs_tol: float = 0.5,
    sigma: float = 2.0,
    two_sided: bool = False,
    match: Match = "label",
    *,
    allow_missing: Sequence[str] = (),
    allow_partial: bool = False,
    allow_judge_mismatch: bool = False,
    reference_run: RunDir | None = None,
    results_run: RunDir | None = None,
) -> list[Comparison]:
    """Every metric of either side, matched by (model label or iteration, variant, suite, metric). `allow_missing`:
    `SUITE` or `SUITE:METRIC` entries whose missing headline does not fail; `*_run`: the run directory a side was read
    from (its items give standard errors the records lack)."""
    for name, value in (("--abs-tol", abs_tol), ("--sigma", sigma)):
        if not (math.isfinite(value) and value >= 0):
            raise UserError(f"{name} {value}: must be a finite number >= 0; pass a non-negative tolerance")
    allowed = _allowed(allow_missing)
    ref = _Side(with_averages(list(reference)), match, "reference", reference_run)
    res = _Side(with_averages(list(results)), match, "results", results_run)
    out: list[Comparison] = []
    for key in [*ref.metrics, *(k for k in res.metrics if k not in ref.metrics)]:
        who, variant, suite, metric = key
        record = (ref.metrics.get(key) or res.metrics[key])[0]
        shown = record.model
        if key not in res.metrics:
            out.append(_absent(ref, res, key, shown, allowed))
            continue
        if key not in ref.metrics:
            out.append(Comparison(shown, variant, suite, metric, None, res.metrics[key][1].value, None,
                                  "only in results"))
            continue
        (ref_record, a), (res_record, b) = ref.metrics[key], res.metrics[key]
        mismatch = judge_mismatch(ref_record, res_record, metric) or ""
        if mismatch and not allow_judge_mismatch:
            out.append(Comparison(shown, variant, suite, metric, a.value, b.value, None, "not comparable",
                                  reason=f"{mismatch}; pass --allow-judge-mismatch to compare them anyway"))
            continue
        if is_partial(res_record) and not is_partial(ref_record) and not allow_partial:
            reason = (f"partial result ({coverage_text(res_record)}) against a complete reference; rerun without "
                      "--limit, or pass --allow-partial to compare it anyway")
            out.append(Comparison(shown, variant, suite, metric, a.value, b.value, None, "partial", reason=reason))
            continue
        ea, eb = ref.estimate(ref_record, metric), res.estimate(res_record, metric)
        se_from = f"{ea.method or '—'} / {eb.method or '—'}"
        bad = _not_finite(a, ea, "reference") + _not_finite(b, eb, "result")
        if bad:
            out.append(Comparison(shown, variant, suite, metric, a.value, b.value, None, "invalid", se_from,
                                  f"{'; '.join(bad)}: not a finite number, so no verdict; fix the record", mismatch))
            continue
        tol = max(abs_tol, sigma * math.sqrt(sum(e.se * e.se for e in (ea, eb) if e.se is not None)))
        verdict = _verdict(suite, metric, b.value - a.value, tol, two_sided)
        out.append(Comparison(shown, variant, suite, metric, a.value, b.value, tol, verdict, se_from, judges=mismatch))
    if not any(c.verdict not in ("only in reference", "only in results") for c in out):
        hint = "" if match == "iteration" else "; if the run labels differ from the card's, try --match iteration"
        raise UserError(f"no metric appears in both the reference and the results{hint}")
    return out


def exit_code(comparisons: list[Comparison]) -> int:
    return 1 if any(c.verdict in FAILING for c in comparisons) else 0


def markdown(comparisons: list[Comparison]) -> str:
    warn = any(c.judges for c in comparisons)  # compared across judges (--allow-judge-mismatch): a warning column
    lines = ["| model | suite | metric | reference | result | delta | tolerance | SE from (ref / res) | verdict |"
             + (" judges |" if warn else ""), "|---|---|---|---:|---:|---:|---:|---|---|" + ("---|" if warn else "")]
    for c in comparisons:
        label = f"{c.model} ({c.variant})" if c.variant else c.model
        cells = [escape_cell(label), c.suite, c.metric, _fmt(c, c.reference), _fmt(c, c.result),
                 _fmt(c, c.delta, signed=True), "—" if c.tolerance is None else f"{c.tolerance:.3g}", c.se_from,
                 _verdict_cell(c.verdict)]
        if warn:
            cells.append(f"**warning: {escape_cell(c.judges)}**" if c.judges else "")
        lines.append("| " + " | ".join(cells) + " |")
    reasons = [f"- {c.verdict.upper()}: {escape_cell(c.name)}: {' '.join(c.reason.split())}" for c in comparisons
               if c.reason and (c.verdict in FAILING or c.verdict == "missing (allowed)")]
    counts = {v: sum(c.verdict == v for c in comparisons) for v in dict.fromkeys(c.verdict for c in comparisons)}
    summary = ", ".join(f"{n} {v}" for v, n in counts.items())
    status = "FAIL" if exit_code(comparisons) else "OK"
    body = "\n".join(lines) + ("\n\n" + "\n".join(reasons) if reasons else "")
    return body + f"\n\n{status}: {len(comparisons)} metrics: {summary}\n"


def junit_xml(comparisons: list[Comparison]) -> str:
    """One testcase per metric: failing verdicts fail, one-sided and allowed-missing metrics are skipped with the
    reason."""
    failures = sum(c.verdict in FAILING for c in comparisons)
    skipped = sum(c.verdict.startswith("only") or c.verdict == "missing (allowed)" for c in comparisons)
    suite = ET.Element("testsuite", name="sppo-bench check", tests=str(len(comparisons)),
                       failures=str(failures), errors="0", skipped=str(skipped))
    for c in comparisons:
        case = ET.SubElement(suite, "testcase", classname=f"sppo_bench.{c.suite}", name=c.name)
        detail = c.reason or (f"reference {c.reference}, result {c.result}, delta {c.delta}, tolerance {c.tolerance}, "
                              f"SE from {c.se_from}")
        if c.verdict in FAILING:
            ET.SubElement(case, "failure", message=f"{c.verdict}: {detail}", type=c.verdict)
        elif c.verdict.startswith("only") or c.verdict == "missing (allowed)":
            ET.SubElement(case, "skipped", message=f"{c.verdict}: {c.reason}" if c.reason else c.verdict)
        else:
            case.set("status", c.verdict)
    ET.indent(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


class _Side:
    """One side's metrics by (who, variant, suite, metric), its records by (who, variant, suite), and its items."""

    def __init__(self, records: list[ResultRecord], match: Match, name: str, run: RunDir | None) -> None:
        self.metrics: dict[tuple, tuple[ResultRecord, Metric]] = {}
        self.records: dict[tuple, ResultRecord] = {}
        self.run = run
        self._items: dict[tuple, list[ItemRow]] = {}
        self._estimates: dict[tuple, Estimate] = {}
        self._by_key = {r.key: r for r in records}
        for r in records:
            spec = get_suite(r.suite)  # unknown suite -> UserError with suggestions
            who: str | int = r.model if match == "label" else (r.iteration if r.iteration is not None else f"? {r.model}")
            self.records[(who, r.variant, r.suite)] = r
            if r.status == "failed":
                continue
            for key, metric in r.metrics.items():
                spec.metric(key)  # unknown metric -> UserError with suggestions
                k = (who, r.variant, r.suite, key)
                if k in self.metrics and self.metrics[k][0].model != r.model:
                    raise UserError(f"{name}: {self.metrics[k][0].model!r} and {r.model!r} both give iteration {who} "
                                    f"{r.suite}.{key}; use --match label")
                self.metrics[k] = (r, metric)
        self.rows = {(who, variant) for who, variant, _ in self.records}

    def estimate(self, record: ResultRecord, key: str) -> Estimate:
        """The metric's precision by the shared rule (harness.scoring.uncertainty); an average's from its members."""
        cached = self._estimates.get((record.key, key))
        if cached is None:
            members = None
            spec = get_suite(record.suite)
            if spec.aggregate_of:
                found = [self._by_key.get((record.model, record.variant, m)) for m in spec.aggregate_of]
                if all(r is not None for r in found):
                    members = [self.estimate(r, get_suite(r.suite).headline) for r in found if r is not None]
            cached = resolve(record, key, self.items(record), SE_RESAMPLES, 0, members)
            self._estimates[(record.key, key)] = cached
        return cached

    def items(self, record: ResultRecord) -> list[ItemRow]:
        """The record's items.jsonl rows (none without a run directory or file), read once."""
        if record.key not in self._items:
            path = self.run.items_path(record.model, record.variant, record.suite) if self.run else None
            self._items[record.key] = read_items(path) if path is not None and path.is_file() else []
        return self._items[record.key]


def _absent(ref: _Side, res: _Side, key: tuple, shown: str, allowed: set[tuple[str, str | None]]) -> Comparison:
    """A reference metric the results lack: missing (a headline, for a model the results hold), or only in reference."""
    who, variant, suite, metric = key
    a = ref.metrics[key][1]
    record = res.records.get((who, variant, suite))
    if record is not None and record.status == "failed":
        return Comparison(shown, variant, suite, metric, a.value, None, None, "failed",
                          reason=f"the result record failed: {record.error or 'no error recorded'}")
    if metric != get_suite(suite).headline or (who, variant) not in res.rows:
        return Comparison(shown, variant, suite, metric, a.value, None, None, "only in reference")
    reason = _why_missing(res, key, record)
    if (suite, None) in allowed or (suite, metric) in allowed:
        return Comparison(shown, variant, suite, metric, a.value, None, None, "missing (allowed)",
                          reason=reason + " (allowed by --allow-missing)")
    return Comparison(shown, variant, suite, metric, a.value, None, None, "missing",
                      reason=f"{reason}; pass --allow-missing {suite}:{metric} to accept")


def _why_missing(res: _Side, key: tuple, record: ResultRecord | None) -> str:
    who, variant, suite, metric = key
    spec = get_suite(suite)
    if record is not None:
        notes = "; ".join(dict.fromkeys(record.notes))
        return f"the result record has no {metric}: " + (notes or "its notes give no reason")
    if spec.aggregate_of:
        absent = [m for m in spec.aggregate_of if (who, variant, m) not in res.records]
        return f"the {suite} average needs all of {', '.join(spec.aggregate_of)}; the results lack {', '.join(absent)}"
    return f"the results hold no {suite} record for this model (suite not run)"


def _allowed(entries: Sequence[str]) -> set[tuple[str, str | None]]:
    """`SUITE` or `SUITE:METRIC`, validated against the registry (unknown names are one-line errors with suggestions)."""
    out: set[tuple[str, str | None]] = set()
    for entry in entries:
        suite, _, metric = entry.partition(":")
        spec = get_suite(suite.strip())
        if metric:
            spec.metric(metric.strip())
        out.add((spec.name, metric.strip() or None))
    return out


def _not_finite(m: Metric, e: Estimate, side: str) -> list[str]:
    """What on one side is not a finite number: its value, or the standard error its tolerance would use."""
    bad = [] if math.isfinite(m.value) else [f"the {side} value is {m.value}"]
    if e.se is not None and not math.isfinite(e.se):
        bad.append(f"the {side} standard error ({e.method}) is {e.se}")
    return bad


def _verdict(suite: str, metric: str, change: float, tol: float, two_sided: bool) -> Verdict:
    direction = get_suite(suite).metric(metric).higher_is_better
    gain = change * (1 if direction in (True, None) else -1)
    if direction is None:
        return "info"
    if gain < -tol - _EPS:
        return "regression"
    if gain > tol + _EPS:
        return "changed" if two_sided else "improvement"
    return "pass"


def _fmt(c: Comparison, value: float | None, signed: bool = False) -> str:
    if value is None:
        return "—"
    decimals = get_suite(c.suite).metric(c.metric).decimals
    return f"{value:+.{decimals}f}" if signed else f"{value:.{decimals}f}"


def _verdict_cell(verdict: Verdict) -> str:
    return f"**{verdict.upper()}**" if verdict in FAILING else verdict
