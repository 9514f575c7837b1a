"""Property: records at the card's precision -> rendered card -> imported card gives back identical rows.

Model names are awkward on purpose: pipes, backslashes, markdown and YAML punctuation, unicode, numbers-as-names.
"""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import tables
from harness.cardparse import parse_card
from harness.cards import choose_subject, columns, render_card
from harness.catalog import get_suite
from harness.records import Metric, Provenance, ResultRecord, metric_bounds
from harness.specs import CARD_TABLES

SUITES = sorted({c.suite for kind in CARD_TABLES for c in columns(kind)})
NAME_ALPHABET = st.characters(
    categories=("L", "N", "P", "S", "Zs"),
    include_characters="|\\`*_#:-—†<>[]{}'\"",
    exclude_characters="()\u2028\u2029",
)


def _base_name(text: str) -> bool:
    # A trailing "(...)" reads as a variant and "iter N" as an iteration: both are the card's own conventions.
    return (text == text.strip() and bool(text) and not re.search(r"iter", text, re.I)
            and text.lower() not in {"value", "metric"} and not text.endswith(")"))


names = st.text(NAME_ALPHABET, min_size=1, max_size=24).filter(_base_name)
variants = st.none() | st.text(st.characters(categories=("L", "N"), include_characters="-|_ "), min_size=1,
                               max_size=12).filter(lambda v: v == v.strip() and bool(v))


@st.composite
def metric_at_card_precision(draw, suite: str, key: str, with_ci: bool) -> Metric:
    spec = get_suite(suite).metric(key)
    scale = 10**spec.decimals
    low, high = metric_bounds(suite, key)  # a value the records accept (MT-Bench 1..10)
    value = round(draw(st.integers(int(low * scale), int(min(high, 100) * scale))) / scale, spec.decimals)
    if not with_ci:
        return Metric(value=value)
    low, high = (draw(st.integers(0, 5 * scale)) / scale for _ in range(2))
    return Metric(value=value, ci_low=round(value - low, 9), ci_high=round(value + high, 9))


@st.composite
def record_sets(draw) -> list[ResultRecord]:
    rows = draw(st.lists(st.tuples(names, st.none() | st.integers(0, 9), variants), min_size=1, max_size=4,
                         unique_by=lambda t: (t[0], t[1], t[2])))
    records: list[ResultRecord] = []
    for base, iteration, variant in rows:
        model = base if iteration is None else f"{base} Iter {iteration}"
        for suite in draw(st.lists(st.sampled_from(SUITES), min_size=1, max_size=5, unique=True)):
            status = draw(st.sampled_from(["complete", "complete", "partial", "failed"]))
            metrics = {} if status == "failed" else {
                m.key: draw(metric_at_card_precision(suite, m.key, with_ci=suite == "arena_hard" and m.key == "score"))
                for m in get_suite(suite).metrics if m.column is not None
            }
            records.append(ResultRecord(model=model, variant=variant, iteration=iteration, suite=suite, status=status,
                                        metrics=metrics, provenance=Provenance(source="test")))
    return records


def _sorted_rows(records: list[ResultRecord]) -> list[tuple]:
    return sorted(tuple(str(v) for v in row.values()) for row in tables.rows(records))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(record_sets())
def test_render_then_import_gives_identical_rows(records):
    subject = choose_subject(records, None)
    text = render_card(records, subject=subject, source="generated")
    if not any(r.metrics for r in records):
        return  # nothing but failures: the card lists them, there are no numbers to import back
    again = parse_card(text, source="generated.md")
    assert _sorted_rows(again.records) == _sorted_rows(records)


def test_model_named_like_a_column_header_round_trips():
    # Found by the property above: a v2 column headed "MMLU" once read as the v1 table's mmlu column.
    records = [ResultRecord(model=name, suite="open_llm_v2", metrics={"average": Metric(value=1.5)},
                            provenance=Provenance(source="test")) for name in ("MMLU", "average")]
    again = parse_card(render_card(records, subject=None, source="x"), source="x.md")
    assert _sorted_rows(again.records) == _sorted_rows(records)


@st.composite
def records_with_intervals(draw) -> list[ResultRecord]:
    """Records whose every metric carries a 95% interval and n, as a run card prints them: `v [low, high] n=N`."""
    records = draw(record_sets())
    out = []
    for r in records:
        metrics = {k: draw(metric_at_card_precision(r.suite, k, with_ci=True)).model_copy(
            update={"n": draw(st.integers(1, 20_000))}) for k in r.metrics}
        out.append(r.model_copy(update={"metrics": metrics}))
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(records_with_intervals())
def test_intervals_and_n_round_trip(records):
    text = render_card(records, subject=choose_subject(records, None), source="generated")
    if not any(r.metrics for r in records):
        return
    assert _sorted_rows(parse_card(text, source="generated.md").records) == _sorted_rows(records)
