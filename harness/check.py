"""Regression check: compare result metrics with reference metrics, metric by metric.

A metric regresses when it is worse than the reference by more than max(abs_tol, sigma * stderr), where stderr
combines both sides' standard errors (a 95% CI counts as 2 x 1.96 stderr when no stderr is recorded). Improvements
never fail unless two-sided. A reference metric whose result record failed fails. Metrics found on one side only are
listed with their own verdict.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from harness.catalog import get_suite
from harness.errors import UserError
from harness.records import Metric, ResultRecord
from harness.tables import escape_cell

Match = Literal["label", "iteration"]
Verdict = Literal["pass", "info", "regression", "improvement", "changed", "failed", "only in reference", "only in results"]
FAILING: frozenset[str] = frozenset({"regression", "changed", "failed"})
_EPS = 1e-9  # card numbers carry float noise (7.90 - 7.40 = 0.5000000000000004): a drop equal to the tolerance passes


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
) -> list[Comparison]:
    """Every metric of either side, matched by (model label or iteration, variant, suite, metric)."""
    if abs_tol < 0 or sigma < 0:
        raise UserError("--abs-tol and --sigma must be >= 0; pass non-negative tolerances")
    ref, _ = _index(reference, match, "reference")
    res, res_failed = _index(results, match, "results")
    out: list[Comparison] = []
    for key in [*ref, *(k for k in res if k not in ref)]:
        who, variant, suite, metric = key
        shown = (ref.get(key) or res[key])[0]
        a, b = _metric(ref, key), _metric(res, key)
        if a is not None and b is None and (who, variant, suite) in res_failed:
            out.append(Comparison(shown, variant, suite, metric, a.value, None, None, "failed"))
            continue
        if a is None or b is None:
            verdict: Verdict = "only in results" if a is None else "only in reference"
            out.append(Comparison(shown, variant, suite, metric, _value(a), _value(b), None, verdict))
            continue
        tol = max(abs_tol, sigma * _stderr(a, b))
        direction = get_suite(suite).metric(metric).higher_is_better
        gain = (b.value - a.value) * (1 if direction in (True, None) else -1)
        if direction is None:
            verdict = "info"
        elif gain < -tol - _EPS:
            verdict = "regression"
        elif gain > tol + _EPS:
            verdict = "changed" if two_sided else "improvement"
        else:
            verdict = "pass"
        out.append(Comparison(shown, variant, suite, metric, a.value, b.value, tol, verdict))
    if not any(c.verdict not in ("only in reference", "only in results") for c in out):
        hint = "" if match == "iteration" else "; if the run labels differ from the card's, try --match iteration"
        raise UserError(f"no metric appears in both the reference and the results{hint}")
    return out


def exit_code(comparisons: list[Comparison]) -> int:
    return 1 if any(c.verdict in FAILING for c in comparisons) else 0


def markdown(comparisons: list[Comparison]) -> str:
    lines = ["| model | suite | metric | reference | result | delta | tolerance | verdict |", "|---|---|---|---:|---:|---:|---:|---|"]
    for c in comparisons:
        label = f"{c.model} ({c.variant})" if c.variant else c.model
        cells = [escape_cell(label), c.suite, c.metric, _fmt(c, c.reference), _fmt(c, c.result),
                 _fmt(c, c.delta, signed=True), "—" if c.tolerance is None else f"{c.tolerance:.3g}",
                 _verdict_cell(c.verdict)]
        lines.append("| " + " | ".join(cells) + " |")
    counts = {v: sum(c.verdict == v for c in comparisons) for v in dict.fromkeys(c.verdict for c in comparisons)}
    summary = ", ".join(f"{n} {v}" for v, n in counts.items())
    status = "FAIL" if exit_code(comparisons) else "OK"
    return "\n".join(lines) + f"\n\n{status}: {len(comparisons)} metrics: {summary}\n"


def junit_xml(comparisons: list[Comparison]) -> str:
    """One testcase per metric: regressions fail, one-sided metrics are skipped with the reason."""
    failures = sum(c.verdict in FAILING for c in comparisons)
    skipped = sum(c.verdict.startswith("only") for c in comparisons)
    suite = ET.Element("testsuite", name="sppo-bench check", tests=str(len(comparisons)),
                       failures=str(failures), errors="0", skipped=str(skipped))
    for c in comparisons:
        case = ET.SubElement(suite, "testcase", classname=f"sppo_bench.{c.suite}", name=c.name)
        detail = f"reference {c.reference}, result {c.result}, delta {c.delta}, tolerance {c.tolerance}"
        if c.verdict in FAILING:
            ET.SubElement(case, "failure", message=f"{c.verdict}: {detail}", type=c.verdict)
        elif c.verdict.startswith("only"):
            ET.SubElement(case, "skipped", message=c.verdict)
        else:
            case.set("status", c.verdict)
    ET.indent(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


def _index(records: Iterable[ResultRecord], match: Match, side: str) -> tuple[dict[tuple, tuple[str, Metric]], set[tuple]]:
    """(who, variant, suite, metric) -> (model label, metric), and the (who, variant, suite) of failed records."""
    out: dict[tuple, tuple[str, Metric]] = {}
    failed: set[tuple] = set()
    for r in records:
        spec = get_suite(r.suite)  # unknown suite -> UserError with suggestions
        who: str | int = r.model if match == "label" else (r.iteration if r.iteration is not None else f"? {r.model}")
        if r.status == "failed":
            failed.add((who, r.variant, r.suite))
            continue
        for key, metric in r.metrics.items():
            spec.metric(key)  # unknown metric -> UserError with suggestions
            k = (who, r.variant, r.suite, key)
            if k in out and out[k][0] != r.model:
                raise UserError(
                    f"{side}: {out[k][0]!r} and {r.model!r} both give iteration {who} {r.suite}.{key}; use --match label"
                )
            out[k] = (r.model, metric)
    return out, failed


def _stderr(a: Metric, b: Metric) -> float:
    return math.sqrt(sum(s * s for s in (_one_stderr(a), _one_stderr(b)) if s is not None))


def _one_stderr(m: Metric) -> float | None:
    if m.stderr is not None:
        return m.stderr
    if m.ci_low is not None and m.ci_high is not None:
        return (m.ci_high - m.ci_low) / (2 * 1.96)
    return None


def _value(m: Metric | None) -> float | None:
    return None if m is None else m.value


def _metric(index: dict[tuple, tuple[str, Metric]], key: tuple) -> Metric | None:
    return index[key][1] if key in index else None


def _fmt(c: Comparison, value: float | None, signed: bool = False) -> str:
    if value is None:
        return "—"
    decimals = get_suite(c.suite).metric(c.metric).decimals
    return f"{value:+.{decimals}f}" if signed else f"{value:.{decimals}f}"


def _verdict_cell(verdict: Verdict) -> str:
    return f"**{verdict.upper()}**" if verdict in FAILING else verdict
