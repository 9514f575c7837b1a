"""Render a markdown model card from result records: `model-index` front matter plus the seed card's five tables.

Every number comes from a record and is formatted by its `MetricSpec`; the jinja2 template (StrictUndefined) only
lays out what this module hands it. The table layout (column order, the Arena-Hard CI column, the transposed
"Metric | Value" table of the Open LLM Leaderboard v2) is the seed card's, derived from the suite registry;
`harness.cardparse` reads the same layout back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean
from urllib.parse import quote

import jinja2
from huggingface_hub import EvalResult, ModelCardData

from harness.catalog import get_suite, suites
from harness.errors import UserError
from harness.records import Metric, Provenance, ResultRecord
from harness.specs import CARD_TABLES, CardTable, SuiteSpec
from harness.tables import escape_cell

TEMPLATES = Path(__file__).resolve().parent / "templates"
CI_HEADER = "95% CI"
MISSING = "—"
FAILED = "failed"
PARTIAL_MARK = "†"

# Seed-card layout facts the registry does not carry.
_CI_AFTER = {"arena_hard": "score"}  # the 95% CI column follows this metric's column
_TRANSPOSED = {"open_llm_v2"}  # printed as "| Metric | Value |", one row per suite
_AVERAGE_FIRST = {"open_llm_v2"}  # "Avg." leads; v1's "average" closes the row


@dataclass(frozen=True)
class Column:
    header: str
    """Markdown as the registry spells it (`average \\# Tokens`), printed verbatim."""
    suite: str
    metric: str
    ci: bool = False
    """True: prints the metric's 95% interval as `(-a, +b)` instead of its value."""


@dataclass
class TableView:
    """One card table, cells already formatted and escaped; the template only joins them."""

    kind: CardTable
    header: list[str]
    align: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)
    lm_eval_versions: list[str] = field(default_factory=list)


def render_card(
    records: Iterable[ResultRecord],
    subject: str | None,
    source: str,
    plots: Mapping[str, str] | None = None,
) -> str:
    """The card text. `subject` is the model the card is about (its model-index name); `plots` maps suite -> link."""
    records = list(records)
    if not records:
        raise UserError(f"{source}: no result records to render; run `sppo-bench eval` or import a reference first")
    eval_results = model_index_results(records, subject)
    card_data = (
        ModelCardData(model_name=subject, eval_results=eval_results, pipeline_tag="text-generation")
        if subject and eval_results
        else ModelCardData(pipeline_tag="text-generation")
    )
    value_header = subject if eval_results else None
    views = [v for kind in CARD_TABLES if (v := table_view(kind, records, value_header)) is not None]
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # markdown, not HTML; cells are escaped by `escape_cell`
    )
    plot_list = [(headline_caption(s), link) for s, link in (plots or {}).items()]
    return env.get_template("card.md.j2").render(
        front_matter=card_data.to_yaml(),
        title=escape_cell(subject or "sppo-bench results"),
        source=Path(source).name,
        n_records=len(records),
        tables=views,
        plots=plot_list,
    )


def columns(kind: CardTable) -> list[Column]:
    """The columns of one card table, in the seed card's order."""
    specs = [s for s in suites() if s.table == kind]
    aggregate = next((s for s in specs if s.aggregate_of), None)
    if aggregate is not None:
        members = [get_suite(n) for n in aggregate.aggregate_of]
        ordered = [aggregate, *members] if kind in _AVERAGE_FIRST else [*members, aggregate]
    else:
        ordered = specs
    out: list[Column] = []
    for spec in ordered:
        for m in spec.metrics:
            if m.column is None:
                continue
            out.append(Column(m.column, spec.name, m.key))
            if _CI_AFTER.get(spec.name) == m.key:
                out.append(Column(CI_HEADER, spec.name, m.key, ci=True))
    return out


def table_view(kind: CardTable, records: list[ResultRecord], value_header: str | None = None) -> TableView | None:
    """None when no record feeds this table. `value_header`: the model printed as "Value" in a transposed table."""
    cols = columns(kind)
    wanted = {c.suite for c in cols}
    mine = [r for r in records if r.suite in wanted]
    if not mine:
        return None
    index = {r.key: r for r in mine}
    labels = row_order(mine)
    versions = sorted({v for r in mine for k, v in r.provenance.packages.items() if k in ("lm_eval", "lm-eval")})
    view = TableView(kind, [], [], [], notes=table_notes(mine), lm_eval_versions=versions)
    if kind in _TRANSPOSED:
        only_subject = value_header is not None and labels == [(value_header, None)]
        heads = ["Value"] if only_subject else [_label(m, v) for m, v in labels]
        view.header = ["Metric", *map(escape_cell, heads)]
        view.align = [":---", *["---:"] * len(heads)]
        view.rows = [[c.header, *(cell(index.get((m, v, c.suite)), c) for m, v in labels)] for c in cols]
    else:
        view.header = ["Model", *(c.header for c in cols)]
        view.align = [":---", *[":---:"] * len(cols)]
        view.rows = [[escape_cell(_label(m, v)), *(cell(index.get((m, v, c.suite)), c) for c in cols)] for m, v in labels]
    return view


def cell(record: ResultRecord | None, col: Column) -> str:
    """One formatted cell: a number, `(-a, +b)`, `failed`, or `—` (not run); `†` marks a partial record."""
    if record is None:
        return MISSING
    if record.status == "failed":
        return FAILED
    metric = record.metrics.get(col.metric)
    if metric is None:
        return MISSING
    spec = get_suite(col.suite).metric(col.metric)
    if col.ci:
        if metric.ci_low is None or metric.ci_high is None:
            return MISSING
        text = f"(-{spec.format(metric.value - metric.ci_low)}, +{spec.format(metric.ci_high - metric.value)})"
    else:
        text = spec.format(metric.value)
    return text + PARTIAL_MARK if is_partial(record) else text


def row_order(records: list[ResultRecord]) -> list[tuple[str, str | None]]:
    """(model, variant) rows: plain decoding first, then each variant; by iteration, then first appearance."""
    first: dict[tuple[str, str | None], tuple[int, int | None]] = {}
    for i, r in enumerate(records):
        first.setdefault((r.model, r.variant), (i, r.iteration))

    def key(item: tuple[tuple[str, str | None], tuple[int, int | None]]) -> tuple[bool, str, int, int]:
        (_, variant), (seen, iteration) = item
        return (variant is not None, variant or "", -1 if iteration is None else iteration, seen)

    return [mv for mv, _ in sorted(first.items(), key=key)]


def table_notes(records: list[ResultRecord]) -> list[str]:
    """Which judge produced the numbers, partial and failed records, incomplete coverage."""
    notes: list[str] = []
    judged = [r for r in records if get_suite(r.suite).engine == "judge" and r.status != "failed"]
    for judge in {r.judge.model_dump_json(): r.judge for r in judged if r.judge}.values():
        rows = sorted({r.label for r in judged if r.judge == judge})
        notes.append(
            f"Judge: `{escape_cell(judge.id)}` ({escape_cell(judge.model)} via {judge.backend}, "
            f"prompt sha256 {judge.prompt_hash[:12]}) for {', '.join(map(escape_cell, rows))}."
        )
        if not judge.official:
            notes.append(
                f"**Local judge:** `{escape_cell(judge.id)}` is not the official judge of this benchmark; "
                "these numbers are not comparable with officially judged ones."
            )
    unknown = sorted({r.label for r in judged if r.judge is None})
    if unknown:
        notes.append(f"Judge not recorded (numbers as published) for {', '.join(map(escape_cell, unknown))}.")
    for r in records:
        what = f"{escape_cell(r.label)}, {get_suite(r.suite).title}"
        if r.status == "failed":
            notes.append(f"Not run / failed: {what}: {escape_cell(r.error or 'no error recorded')}.")
        elif is_partial(r):
            notes.append(f"{PARTIAL_MARK} Partial: {what}: {_coverage(r)}.")
        elif r.coverage and (r.coverage.scored < r.coverage.total or r.coverage.failed):
            notes.append(f"Coverage: {what}: {_coverage(r)}.")
    return notes


def model_index_results(records: list[ResultRecord], subject: str | None) -> list[EvalResult]:
    """The subject's complete Open LLM Leaderboard v2 scores, as the leaderboard bot writes them."""
    out: list[EvalResult] = []
    for r in records:
        spec = get_suite(r.suite)
        mi = spec.model_index
        if mi is None or r.model != subject or r.variant is not None or r.status != "complete":
            continue
        metric = r.metrics.get(spec.headline)
        if metric is None:
            continue
        out.append(
            EvalResult(
                task_type="text-generation",
                task_name="Text Generation",
                dataset_name=spec.title,
                dataset_type=mi.dataset_type,
                dataset_config=mi.dataset_config,
                dataset_split=mi.dataset_split,
                dataset_args={"num_few_shot": spec.num_fewshot},
                metric_type=mi.metric_type,
                metric_value=round(metric.value, spec.headline_metric.decimals),
                metric_name=mi.metric_name,
                source_name=mi.source_name,
                source_url=mi.source_url.format(model=quote(r.checkpoint or r.model, safe="/")),
            )
        )
    return out


def choose_subject(records: list[ResultRecord], wanted: str | None) -> str | None:
    """The model the card is about: `wanted` if given, else the latest iteration among models with v2 scores."""
    models = {r.model for r in records}
    if wanted is not None:
        if wanted not in models:
            import difflib

            close = difflib.get_close_matches(wanted, models, n=3)
            hint = f"did you mean {', '.join(close)}?" if close else f"known: {', '.join(sorted(models))}"
            raise UserError(f"--model {wanted!r} has no records; {hint}")
        return wanted
    candidates = [r for r in records if get_suite(r.suite).model_index and r.variant is None]
    if not candidates:
        return None
    return max(candidates, key=lambda r: -1 if r.iteration is None else r.iteration).model


def with_averages(records: list[ResultRecord]) -> list[ResultRecord]:
    """Add open_llm_v1/v2 averages computed from the six member records when all are present and none is stored."""
    index = {r.key: r for r in records}
    added: list[ResultRecord] = []
    for spec in suites():
        if not spec.aggregate_of:
            continue
        for model, variant in dict.fromkeys((r.model, r.variant) for r in records):
            if (model, variant, spec.name) in index:
                continue
            members = [index.get((model, variant, n)) for n in spec.aggregate_of]
            present = [m for m in members if m is not None and m.status != "failed"]
            if len(present) != len(members) or any(_headline(m) is None for m in present):
                continue
            added.append(_average_record(spec, present))
    return records + added


def is_partial(record: ResultRecord) -> bool:
    """Scored on part of the suite: marked `†` in its cells and listed under the table."""
    return record.status == "partial" or record.limit is not None


def headline_caption(suite: str) -> str:
    """`open_llm_v1: average`: names the suite even where its card title is just `average`."""
    metric = get_suite(suite).headline_metric
    return f"{suite}: {metric.label}"


def _average_record(spec: SuiteSpec, members: list[ResultRecord]) -> ResultRecord:
    first = members[0]
    partial = any(is_partial(m) for m in members)
    return ResultRecord(
        model=first.model,
        variant=first.variant,
        iteration=first.iteration,
        checkpoint=first.checkpoint,
        suite=spec.name,
        status="partial" if partial else "complete",
        metrics={spec.headline: Metric(value=fmean(v for m in members if (v := _headline(m)) is not None))},
        notes=[f"plain mean of {', '.join(spec.aggregate_of)} computed at report time"],
        provenance=Provenance(source="aggregate", location=None),
    )


def _headline(record: ResultRecord) -> float | None:
    metric = record.metrics.get(get_suite(record.suite).headline)
    return None if metric is None else metric.value


def _label(model: str, variant: str | None) -> str:
    return f"{model} ({variant})" if variant else model


def _coverage(r: ResultRecord) -> str:
    parts = []
    if r.coverage:
        parts.append(f"{r.coverage.scored} of {r.coverage.total} items scored")
        if r.coverage.failed:
            parts.append(f"{r.coverage.failed} failed")
    if r.limit is not None:
        parts.append(f"--limit {r.limit}")
    return ", ".join(parts) or "coverage not recorded"

