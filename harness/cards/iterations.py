"""The card section "Iteration vs previous and vs base": for each suite's headline metric, every SPPO iteration against
the one before it and against the base (iteration 0), as paired comparisons over the run's items (harness.compare),
with Holm-adjusted p-values across every row of the section; and a length-gaming warning where AlpacaEval's win rate
rises with the average length while the length-controlled win rate does not.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from harness.cards.notes import headline_caption
from harness.catalog import get_suite, suites
from harness.compare import NOT_COMPARABLE, Row, Side, compare
from harness.records import ItemRow, ResultRecord
from harness.stats import DEFAULT_RESAMPLES, holm
from harness.tables import escape_cell

ItemsOf = Callable[[ResultRecord], Sequence[ItemRow] | None]
ALPHA = 0.05
NO_CHANGE = "no significant change"
HEADER = ["Suite: metric", "Comparison", "Before → after", "Δ [95% CI]", "p (Holm)", "n", "Test", "Finding"]


@dataclass(frozen=True)
class Pair:
    before: str
    """Model label of the earlier checkpoint."""
    after: str
    name: str
    """"Iter 2 vs Iter 1", "Iter 2 vs base", with the variant when there is one."""


@dataclass
class Section:
    header: list[str]
    align: list[str]
    rows: list[list[str]]
    tests: int
    """Rows with a p-value: the number of tests Holm adjusts over."""
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def iteration_section(records: Sequence[ResultRecord], items: ItemsOf | None, order: Sequence[str] = (),
                      source: str = "run", resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> Section | None:
    """`items`: a record's items.jsonl rows (None when it has none); `order`: suites in the order the card shows them
    (others follow in the registry's order). None without `items` (the records are not from a run directory) or
    without two iterations of one model to compare."""
    if items is None:
        return None
    pairs = iteration_pairs(records)
    if not pairs:
        return None
    sides = _sides(records, pairs, items, source)
    found: list[tuple[Pair, Row, str]] = []
    for pair in pairs:
        a, b, captions = _headline_sides(sides[pair.before], sides[pair.after])
        found += [(pair, row, captions.get(row.suite) or headline_caption(row.suite))
                  for row in compare(a, b, resamples, seed)]
    if not found:
        return None
    rank = {name: i for i, name in enumerate(dict.fromkeys([*order, *(s.name for s in suites())]))}
    found.sort(key=lambda t: rank[t[1].suite])  # by suite, comparisons in pair order (the sort is stable)
    adjusted = holm([row.p_value for _, row, _ in found])
    rows = [replace(row, p_holm=p) for (_, row, _), p in zip(found, adjusted, strict=True)]
    section = Section(HEADER, [":---", ":---", ":---:", ":---:", "---:", "---:", ":---", ":---"],
                      [_cells(pair, row, caption) for (pair, _, caption), row in zip(found, rows, strict=True)],
                      sum(r.p_value is not None for r in rows))
    section.warnings = [w for pair in pairs if (w := length_gaming(sides[pair.before], sides[pair.after], pair))]
    section.notes = list(dict.fromkeys(f"{r.suite}, {pair.name}: {escape_cell(r.note)}"
                                       for (pair, _, _), r in zip(found, rows, strict=True) if r.note))
    return section


def _sides(records: Sequence[ResultRecord], pairs: Sequence[Pair], items: ItemsOf, source: str) -> dict[str, Side]:
    """Each compared model's records and items, read once."""
    sides = {}
    for label in dict.fromkeys(p for pair in pairs for p in (pair.before, pair.after)):
        mine = {r.suite: r for r in records if r.label == label}
        sides[label] = Side(label, source, mine, {suite: rows for suite, r in mine.items() if (rows := items(r))})
    return sides


def iteration_pairs(records: Sequence[ResultRecord]) -> list[Pair]:
    """Per decoding variant: each iteration against the previous one, and against iteration 0 (the base) when that is
    not the previous one. Where two labels share an iteration, the one with more records is taken."""
    by_variant: dict[str | None, dict[int, dict[str, int]]] = {}
    for r in records:
        if r.iteration is not None:
            counts = by_variant.setdefault(r.variant, {}).setdefault(r.iteration, {})
            counts[r.label] = counts.get(r.label, 0) + 1
    pairs = []
    for variant, iterations in by_variant.items():
        label = {t: max(c, key=lambda k: c[k]) for t, c in iterations.items()}
        ordered = sorted(label)
        suffix = f" ({variant})" if variant else ""
        for prev, t in zip(ordered, ordered[1:], strict=False):
            pairs.append(Pair(label[prev], label[t], f"{_name(t)} vs {_name(prev)}{suffix}"))
            if 0 in label and prev != 0:
                pairs.append(Pair(label[0], label[t], f"{_name(t)} vs base{suffix}"))
    return pairs


def length_gaming(a: Side, b: Side, pair: Pair) -> str | None:
    """A warning when AlpacaEval's win rate and average length both rise from A to B and the length-controlled win rate
    does not (or is absent, which leaves length gaming open): point estimates, as the card's table prints them."""
    ra, rb = a.records.get("alpaca_eval"), b.records.get("alpaca_eval")
    if ra is None or rb is None or ra.status == "failed" or rb.status == "failed":
        return None
    ma, mb = ra.metrics, rb.metrics
    if not all(k in ma and k in mb for k in ("win_rate", "avg_length")):
        return None
    win, length = mb["win_rate"].value - ma["win_rate"].value, mb["avg_length"].value - ma["avg_length"].value
    if win <= 0 or length <= 0:
        return None
    head = (f"**Length gaming?** {pair.name}: the AlpacaEval win rate rose ({win:+.2f}) with the average length "
            f"({length:+.0f} characters)")
    if "lc_win_rate" in ma and "lc_win_rate" in mb:
        lc = mb["lc_win_rate"].value - ma["lc_win_rate"].value
        return None if lc > 0 else f"{head} while the length-controlled win rate did not ({lc:+.2f})."
    who = " and ".join(escape_cell(r.label) for r in (ra, rb) if "lc_win_rate" not in r.metrics)
    why = "the AlpacaEval notes say why" if any(r.notes for r in (ra, rb)) else "no reason recorded"
    return f"{head}, and the length-controlled win rate, which would tell length from quality, is absent on {who} ({why})."


def _headline_sides(a: Side, b: Side) -> tuple[Side, Side, dict[str, str]]:
    """Both sides reduced to one metric per suite: the headline, or, where a side lacks it, the first metric of the
    card's table both carry (AlpacaEval's win rate when LC could not be computed); and each suite's caption."""
    keep_a, keep_b, captions = {}, {}, {}
    for suite, ra in a.records.items():
        rb = b.records.get(suite)
        if rb is None:
            continue
        spec = get_suite(suite)
        shown = [spec.headline] + [m.key for m in spec.metrics if m.column and m.key != spec.headline]
        chosen = next((k for k in shown if k in ra.metrics and k in rb.metrics), None)
        if chosen is None:
            continue
        keep_a[suite] = ra.model_copy(update={"metrics": {chosen: ra.metrics[chosen]}})
        keep_b[suite] = rb.model_copy(update={"metrics": {chosen: rb.metrics[chosen]}})
        caption = f"{suite}: {spec.metric(chosen).label}"
        if chosen != spec.headline:
            caption += f" ({spec.headline_metric.label} absent)"
        captions[suite] = caption
    return replace(a, records=keep_a), replace(b, records=keep_b), captions


def _cells(pair: Pair, row: Row, caption: str) -> list[str]:
    metric = get_suite(row.suite).metric(row.metric)
    d = metric.decimals
    ci = "" if row.ci_low is None or row.ci_high is None else f" [{row.ci_low:+.{d}f}, {row.ci_high:+.{d}f}]"
    return [escape_cell(caption), escape_cell(pair.name), f"{metric.format(row.a)} → {metric.format(row.b)}",
            f"{row.delta:+.{d}f}{ci}", _p(row.p_holm), "—" if row.n_paired is None else str(row.n_paired),
            row.method, finding(row)]


def finding(row: Row) -> str:
    """"no significant change" when the Holm-adjusted p is at least 0.05 or Δ is 0; else the direction of Δ, which
    the test is about (it runs on the reported scale). A p below 0.05 with a Δ the CI does not support (the items both
    sides scored disagree with the records' Δ: see the notes) says so instead of naming a direction."""
    if row.method == NOT_COMPARABLE:
        return "not comparable (different judges)"
    if row.p_holm is None or math.isnan(row.p_holm):
        return "no test"
    if row.p_holm >= ALPHA or row.delta == 0:
        return NO_CHANGE
    rise = row.delta > 0
    if row.ci_low is not None and row.ci_high is not None and (row.ci_high < 0 if rise else row.ci_low > 0):
        return "test and Δ disagree (see notes)"
    return "**significant rise**" if rise else "**significant drop**"


def _p(p: float | None) -> str:
    if p is None or math.isnan(p):
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _name(iteration: int) -> str:
    return "base" if iteration == 0 else f"Iter {iteration}"
