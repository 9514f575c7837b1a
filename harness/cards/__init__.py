"""Render a markdown model card from result records: `model-index` front matter plus the seed card's five tables.

Every number comes from a record and is formatted by its `MetricSpec`; the jinja2 template (StrictUndefined) only
lays out what this module hands it. The table layout (column order, the Arena-Hard CI column, the transposed
"Metric | Value" table of the Open LLM Leaderboard v2) is the seed card's, derived from the suite registry;
`harness.cardparse` reads the same layout back.

A cell is `VALUE[†][ [LOW, HIGH]][ n=N]`: the 95% interval and the number of items scored, where the card knows them
(`harness.cards.intervals`; a footnote says how each interval was obtained). A published card's records carry neither,
so its cells are bare numbers, as published. Cards rendered from a run directory also get the section "Iteration vs
previous and vs base" (`harness.cards.iterations`) and a table of the evaluated checkpoints' content fingerprints.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import jinja2
from huggingface_hub import EvalResult, ModelCardData

from harness.cards.intervals import Estimate, Intervals, Method, describe
from harness.cards.iterations import iteration_section
from harness.cards.notes import PARTIAL_MARK, checkpoint_rows, coverage_text, headline_caption, is_partial, table_notes
from harness.catalog import get_suite, suites
from harness.errors import UserError
from harness.records import ResultRecord
from harness.scoring import averages
from harness.specs import CARD_TABLES, CardTable, MetricSpec
from harness.stats import DEFAULT_RESAMPLES
from harness.store import RunDir
from harness.tables import escape_cell

__all__ = ["CI_HEADER", "FAILED", "MISSING", "PARTIAL_MARK", "Column", "TableView", "cell", "choose_subject",
           "columns", "coverage_text", "headline_caption", "is_partial", "model_index_results", "render_card",
           "row_order", "table_view", "with_averages"]

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
CI_HEADER = "95% CI"
MISSING = "—"
FAILED = "failed"

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
    run: RunDir | None = None,
    resamples: int = DEFAULT_RESAMPLES,
) -> str:
    """The card text. `subject` is the model the card is about (its model-index name); `plots` maps suite -> link;
    `run`: the run directory the records come from (its items give intervals and the iteration section)."""
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
    intervals = Intervals(records, run, resamples)
    views = [v for kind in CARD_TABLES if (v := table_view(kind, records, value_header, intervals)) is not None]
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
        iterations=iteration_section(records, intervals.items if run else None,
                                     [c.suite for kind in CARD_TABLES for c in columns(kind)],
                                     str(run.root) if run else source, resamples),
        checkpoints=checkpoint_rows(records, row_order(records)),
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


def table_view(kind: CardTable, records: list[ResultRecord], value_header: str | None = None,
               intervals: Intervals | None = None) -> TableView | None:
    """None when no record feeds this table. `value_header`: the model printed as "Value" in a transposed table;
    `intervals`: print each number's 95% interval and n where known (without: bare numbers)."""
    cols = columns(kind)
    wanted = {c.suite for c in cols}
    mine = [r for r in records if r.suite in wanted]
    if not mine:
        return None
    index = {r.key: r for r in mine}
    labels = row_order(mine)
    versions = sorted({v for r in mine if get_suite(r.suite).engine == "lm-eval"
                       for k, v in r.provenance.packages.items() if k in ("lm_eval", "lm-eval")})
    view = TableView(kind, [], [], [], notes=table_notes(mine), lm_eval_versions=versions)
    used: dict[Method | None, dict[str, list[str]]] = {}  # interval method -> column header -> row labels

    def fill(model: str, variant: str | None, col: Column) -> str:
        record = index.get((model, variant, col.suite))
        estimate = None if intervals is None or record is None else intervals.get(record, col.metric)
        ci_column = _has_ci_column(col, cols)
        if record is not None and estimate is not None and _shows(record, col, estimate, ci_column):
            used.setdefault(estimate.method, {}).setdefault(col.header, []).append(_label(model, variant))
        return cell(record, col, estimate, ci_column)

    if kind in _TRANSPOSED:
        only_subject = value_header is not None and labels == [(value_header, None)]
        heads = ["Value"] if only_subject else [_label(m, v) for m, v in labels]
        view.header = ["Metric", *map(escape_cell, heads)]
        view.align = [":---", *["---:"] * len(heads)]
        view.rows = [[c.header, *(fill(m, v, c) for m, v in labels)] for c in cols]
    else:
        view.header = ["Model", *(c.header for c in cols)]
        view.align = [":---", *[":---:"] * len(cols)]
        view.rows = [[escape_cell(_label(m, v)), *(fill(m, v, c) for c in cols)] for m, v in labels]
    if used and intervals is not None:
        view.notes.append(_interval_note(used, len(labels), intervals.resamples))
    return view


def cell(record: ResultRecord | None, col: Column, estimate: Estimate | None = None, ci_column: bool = False) -> str:
    """One formatted cell: a number, `(-a, +b)`, `failed`, or `—` (not run); `†` marks a partial record. With an
    `estimate`, a number is followed by its interval `[low, high]` (unless `ci_column`: the table prints it in its own
    column) and `n=N`; a CI column uses the estimate's interval when the record has none."""
    if record is None:
        return MISSING
    if record.status == "failed":
        return FAILED
    metric = record.metrics.get(col.metric)
    if metric is None:
        return MISSING
    spec = get_suite(col.suite).metric(col.metric)
    mark = PARTIAL_MARK if is_partial(record) else ""
    if col.ci:
        low, high = metric.ci_low, metric.ci_high
        if (low is None or high is None) and estimate is not None:
            low, high = estimate.low, estimate.high
        if low is None or high is None:
            return MISSING
        return f"({_offset(spec, low - metric.value, '-')}, {_offset(spec, high - metric.value, '+')}){mark}"
    text = spec.format(metric.value) + mark
    if estimate is not None and estimate.low is not None and estimate.high is not None and not ci_column:
        text += f" [{spec.format(estimate.low)}, {spec.format(estimate.high)}]"
    if estimate is not None and estimate.n is not None:
        text += f" n={estimate.n}"
    return text


def row_order(records: list[ResultRecord]) -> list[tuple[str, str | None]]:
    """(model, variant) rows: plain decoding first, then each variant; by iteration, then first appearance."""
    first: dict[tuple[str, str | None], tuple[int, int | None]] = {}
    for i, r in enumerate(records):
        first.setdefault((r.model, r.variant), (i, r.iteration))

    def key(item: tuple[tuple[str, str | None], tuple[int, int | None]]) -> tuple[bool, str, int, int]:
        (_, variant), (seen, iteration) = item
        return (variant is not None, variant or "", -1 if iteration is None else iteration, seen)

    return [mv for mv, _ in sorted(first.items(), key=key)]


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
    """Add open_llm_v1/v2 averages computed from the member records when all are present and none is stored."""
    return averages.with_averages(records, suites())


def _label(model: str, variant: str | None) -> str:
    return f"{model} ({variant})" if variant else model


def _shows(record: ResultRecord, col: Column, estimate: Estimate, ci_column: bool) -> bool:
    """Whether the cell prints something of `estimate` that the record itself does not hold."""
    metric = record.metrics.get(col.metric)
    if metric is None or record.status == "failed":
        return False
    if col.ci:
        return estimate.method != "recorded" and estimate.has_interval
    return (estimate.has_interval and not ci_column) or estimate.n is not None


def _has_ci_column(col: Column, cols: list[Column]) -> bool:
    return any(c.ci and (c.suite, c.metric) == (col.suite, col.metric) for c in cols)


def _offset(spec: MetricSpec, delta: float, sign: str) -> str:
    """`-1.8` / `+1.8`: a bound relative to the value, as the seed card prints Arena-Hard's CI; `sign` is the bound's
    usual side (a zero offset keeps it)."""
    if delta != 0:
        sign = "-" if delta < 0 else "+"
    return f"{sign}{spec.format(abs(delta))}"


def _interval_note(used: dict[Method | None, dict[str, list[str]]], n_rows: int, resamples: int) -> str:
    """Which columns (and rows, where a column mixes methods) got their interval how."""
    parts = []
    for method, by_column in used.items():
        names = []
        for header, rows in by_column.items():
            mixed = sum(header in other for other in used.values()) > 1
            names.append(f"{header} ({', '.join(map(escape_cell, rows))})" if mixed and len(rows) < n_rows else header)
        parts.append(f"{describe(method, resamples)}: {', '.join(names)}")
    return "`[low, high]` is the 95% interval and `n` the items scored; " + "; ".join(parts) + "."
