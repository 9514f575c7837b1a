"""The overview page's content: the model card's tables (laid out by harness.cards, so the site and the card cannot
disagree) with each number's n and 95% interval and a link to the items behind it, the judges with their
calibration, and every record's status and coverage."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

from markdown_it import MarkdownIt
from markupsafe import Markup

from harness import cards
from harness.catalog import get_suite
from harness.io import slug
from harness.records import JudgeInfo, Metric, ResultRecord
from harness.specs import CARD_TABLES

Link = Callable[[ResultRecord], str]


@dataclass
class CellView:
    html: Markup
    href: str | None = None
    n: int | None = None
    ci: str | None = None
    """The 95% interval as `low–high`, on the card's scale."""


@dataclass
class TableHtml:
    kind: str
    header: list[Markup]
    rows: list[list[CellView]]
    notes: list[Markup]
    lm_eval_versions: list[str]


@dataclass
class MetricLine:
    name: str
    value: str
    n: int | None
    ci: str | None
    stderr: str | None
    repeat_sd: str | None


@dataclass
class RecordView:
    record: ResultRecord
    anchor: str
    href: str
    """Where the numbers of this record lead: its items, or this section when it has none."""
    metrics: list[MetricLine]
    subtasks: list[tuple[str, str, list[MetricLine]]]
    """(subtask, link to its items, its metrics)."""
    item_rows: int | None


@dataclass
class JudgeView:
    judge: JudgeInfo
    used_by: list[tuple[str, str]] = field(default_factory=list)
    """(record label / suite, link)."""


def checkpoint_slug(model: str, variant: str | None) -> str:
    """The same folder name a run directory gives this (model, variant)."""
    return slug(f"{model}@{variant}" if variant else model)


def record_anchor(record: ResultRecord) -> str:
    return f"rec-{checkpoint_slug(record.model, record.variant)}-{record.suite}"


def card_tables(records: list[ResultRecord], md: MarkdownIt, link: Link) -> list[TableHtml]:
    """The card's five tables, in the card's order, each cell linked to its record's items."""
    out = []
    for kind in CARD_TABLES:
        view = cards.table_view(kind, records)
        if view is None:
            continue
        cols = cards.columns(kind)
        mine = [r for r in records if r.suite in {c.suite for c in cols}]
        index = {r.key: r for r in mine}
        labels = cards.row_order(mine)
        transposed = view.header[0] == "Metric"  # the Open LLM Leaderboard v2 layout: one row per metric
        rows: list[list[CellView]] = []
        for i, row in enumerate(view.rows):
            views = [CellView(html=_inline(md, row[0]))]
            for j, text in enumerate(row[1:]):
                (model, variant), col = (labels[j], cols[i]) if transposed else (labels[i], cols[j])
                views.append(_cell_view(md, text, index.get((model, variant, col.suite)), col, link))
            rows.append(views)
        out.append(TableHtml(kind=kind, header=[_inline(md, h) for h in view.header], rows=rows,
                             notes=[_inline(md, n) for n in view.notes], lm_eval_versions=view.lm_eval_versions))
    return out


def record_views(records: list[ResultRecord], item_counts: dict[tuple[str, str | None, str], int],
                 link: Link) -> list[RecordView]:
    out = []
    for key in cards.row_order(records):
        for r in sorted((r for r in records if (r.model, r.variant) == key), key=lambda r: r.suite):
            spec = get_suite(r.suite)
            metrics = [_metric_line(spec.metric(k).label if _known(r.suite, k) else k, m, r.suite, k)
                       for k, m in r.metrics.items()]
            subtasks = [(name, f"{link(r)}&subtask={quote(name)}" if r.key in item_counts else link(r),
                         [_metric_line(k, m, r.suite, k) for k, m in ms.items()]) for name, ms in r.subtasks.items()]
            out.append(RecordView(record=r, anchor=record_anchor(r), href=link(r), metrics=metrics,
                                  subtasks=subtasks, item_rows=item_counts.get(r.key)))
    return out


def judges(records: Sequence[ResultRecord], link: Link) -> list[JudgeView]:
    """Every distinct judge, with the records it scored."""
    found: dict[str, JudgeView] = {}
    for r in records:
        if r.judge is None:
            continue
        view = found.setdefault(r.judge.model_dump_json(), JudgeView(judge=r.judge))
        view.used_by.append((f"{r.label} / {r.suite}", link(r)))
    return list(found.values())


def headline_text(record: ResultRecord) -> str:
    """`LC. Win Rate 50.47 (n=805, 95% CI 48.10–52.90)`: the record's headline metric, or the first of the suite's
    metrics it has, with what the record knows of its precision."""
    spec = get_suite(record.suite)
    key = next((k for k in (spec.headline, *(m.key for m in spec.metrics)) if k in record.metrics), None)
    if key is None:
        return f"{record.status}: no metrics" if record.status != "complete" else "no metrics"
    line = _metric_line(spec.metric(key).label, record.metrics[key], record.suite, key)
    extra = [f"n={line.n}"] if line.n is not None else []
    extra += [f"95% CI {line.ci}"] if line.ci else []
    return f"{line.name} {line.value}" + (f" ({', '.join(extra)})" if extra else "")


def _cell_view(md: MarkdownIt, text: str, record: ResultRecord | None, col: cards.Column, link: Link) -> CellView:
    view = CellView(html=_inline(md, text))
    if record is None:
        return view
    view.href = link(record)
    metric = record.metrics.get(col.metric)
    if metric is not None and not col.ci:
        view.n = metric.n
        view.ci = _ci(metric, record.suite, col.metric)
    return view


def _metric_line(name: str, m: Metric, suite: str, key: str) -> MetricLine:
    fmt = _formatter(suite, key)
    return MetricLine(name=name, value=fmt(m.value), n=m.n, ci=_ci(m, suite, key),
                      stderr=None if m.stderr is None else fmt(m.stderr),
                      repeat_sd=None if m.repeat_sd is None else fmt(m.repeat_sd))


def _ci(m: Metric, suite: str, key: str) -> str | None:
    if m.ci_low is None or m.ci_high is None:
        return None
    fmt = _formatter(suite, key)
    return f"{fmt(m.ci_low)}–{fmt(m.ci_high)}"


def _formatter(suite: str, key: str) -> Callable[[float], str]:
    if _known(suite, key):
        return get_suite(suite).metric(key).format
    return lambda v: f"{v:.4g}"


def _known(suite: str, key: str) -> bool:
    return any(m.key == key for m in get_suite(suite).metrics)


def _inline(md: MarkdownIt, text: str) -> Markup:
    """A card cell / header / note is markdown (escaped `\\|`, `**bold**`): rendered inline, raw HTML off."""
    return Markup(md.renderInline(text))  # markdown-it with raw HTML disabled escapes everything it does not render
