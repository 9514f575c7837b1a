"""The Open LLM Leaderboard averages (open_llm_v1, open_llm_v2) a set of records lacks, computed the one way the card,
the regression gate and comparisons all show them: the plain mean of the member suites' headline values
(harness.scoring.leaderboard.average), for a (model, variant) holding every member, none failed."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from harness.records import Metric, Provenance, ResultRecord
from harness.scoring.leaderboard import average
from harness.specs import SUITES, SuiteSpec


def with_averages(records: Sequence[ResultRecord], specs: Iterable[SuiteSpec]) -> list[ResultRecord]:
    """`records` plus every average computable from them and not already stored; `specs`: the registered suites
    (harness.catalog.suites(), which this layer cannot import)."""
    records = list(records)
    index = {r.key: r for r in records}
    added: list[ResultRecord] = []
    for spec in specs:
        if not spec.aggregate_of:
            continue
        for model, variant in dict.fromkeys((r.model, r.variant) for r in records):
            if (model, variant, spec.name) in index:
                continue
            members = [index.get((model, variant, n)) for n in spec.aggregate_of]
            present = [m for m in members if m is not None and m.status != "failed" and headline(m) is not None]
            if len(present) == len(members):
                added.append(average_record(spec, present))
    return records + added


def average_record(spec: SuiteSpec, members: Sequence[ResultRecord]) -> ResultRecord:
    first = members[0]
    partial = any(is_partial(m) for m in members)
    return ResultRecord(
        model=first.model,
        variant=first.variant,
        iteration=first.iteration,
        checkpoint=first.checkpoint,
        suite=spec.name,
        status="partial" if partial else "complete",
        metrics={spec.headline: Metric(value=average(v for m in members if (v := headline(m)) is not None))},
        notes=[f"plain mean of {', '.join(spec.aggregate_of)} computed at report time"],
        provenance=Provenance(source="aggregate", location=None),
    )


def headline(record: ResultRecord) -> float | None:
    metric = record.metrics.get(SUITES.get(record.suite).headline)
    return None if metric is None else metric.value


def is_partial(record: ResultRecord) -> bool:
    """Scored on part of the suite: marked `†` in its cells and listed under the table."""
    return record.status == "partial" or record.limit is not None
