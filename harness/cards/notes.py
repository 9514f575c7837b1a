"""The footnotes under a card table and the card's checkpoint table: which judge produced the numbers (and how it
agrees with the official one), partial and failed records, coverage, the records' own notes (deduplicated across rows),
and which checkpoint content each row evaluated."""

from __future__ import annotations

import re
from collections.abc import Sequence

from harness.catalog import get_suite
from harness.records import CalibrationSummary, JudgeInfo, ResultRecord
from harness.scoring.averages import is_partial
from harness.tables import escape_cell

PARTIAL_MARK = "†"
SHA_SHOWN = 12
PLUMBING_KAPPA = 0.4
"""Below this Cohen's kappa (Landis & Koch: "fair" or worse), or at or below the majority baseline, a local judge's
numbers are a plumbing check."""


def table_notes(records: list[ResultRecord]) -> list[str]:
    """Which judge produced the numbers, partial and failed records, incomplete coverage, record notes."""
    notes = judge_notes(records)
    for r in records:
        what = f"{escape_cell(r.label)}, {get_suite(r.suite).title}"
        if r.status == "failed":
            notes.append(f"Not run / failed: {what}: {escape_cell(r.error or 'no error recorded')}.")
        elif is_partial(r):
            notes.append(f"{PARTIAL_MARK} Partial: {what}: {coverage_text(r)}.")
        elif r.coverage and (r.coverage.scored < r.coverage.total or r.coverage.failed):
            notes.append(f"Coverage: {what}: {coverage_text(r)}.")
    return notes + average_notes(records) + record_notes(records)


def average_notes(records: list[ResultRecord]) -> list[str]:
    """An Open LLM average the rows lack because members are missing: which ones (the leaderboard's needs all)."""
    from harness.catalog import suites

    notes = []
    for spec in (s for s in suites() if s.aggregate_of):
        shown = {(r.model, r.variant) for r in records if r.suite == spec.name}
        lacking: dict[tuple[str, ...], list[str]] = {}
        for model, variant, label in dict.fromkeys((r.model, r.variant, r.label) for r in records
                                                   if r.suite in spec.aggregate_of):
            have = {r.suite for r in records if (r.model, r.variant) == (model, variant) and r.status != "failed"}
            missing = tuple(get_suite(m).title for m in spec.aggregate_of if m not in have)
            if missing and (model, variant) not in shown:
                lacking.setdefault(missing, []).append(escape_cell(label))
        notes += [f"{spec.title} ({spec.name}) partial, not shown for {', '.join(rows)}: lacks {', '.join(missing)} "
                  f"(the leaderboard's average needs all {len(spec.aggregate_of)})." for missing, rows in lacking.items()]
    return notes


def judge_notes(records: list[ResultRecord]) -> list[str]:
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
                f"these numbers are not comparable with officially judged ones. {calibration_text(judge)}"
            )
    unknown = sorted({r.label for r in judged if r.judge is None})
    if unknown:
        notes.append(f"Judge not recorded (numbers as published) for {', '.join(map(escape_cell, unknown))}.")
    return notes


_JUDGE_NOTE = re.compile(r"^-?\s*Judge: `(?P<id>(?:[^`\\]|\\.)+)` \((?P<model>.+) via (?P<backend>\S+), prompt sha256 "
                         r"(?P<hash>[0-9a-f]+)\) for (?P<rows>.+)\.$")
_LOCAL_NOTE = re.compile(r"^-?\s*\*\*Local judge:\*\* `(?P<id>(?:[^`\\]|\\.)+)`")


def with_card_judges(records: Sequence[ResultRecord], lines: Sequence[str]) -> list[ResultRecord]:
    """`records` read from one table of a card `judge_notes` wrote, each judged-suite record given the judge its
    footnote (in `lines`, the text from that table to the next) names for its row: a card re-read as a reference
    says which judge produced its numbers (the `**Local judge:**` note marks it not official). Records whose row no
    footnote names are returned as they are (a published card: its judge is the benchmark's, as published)."""
    local = {_unescape(m["id"]) for line in lines if (m := _LOCAL_NOTE.match(line.strip()))}
    by_row: dict[str, JudgeInfo] = {}
    for line in lines:
        m = _JUDGE_NOTE.match(line.strip())
        if m is None:
            continue
        judge_id = _unescape(m["id"])
        judge = JudgeInfo(id=judge_id, model=_unescape(m["model"]), prompt_hash=m["hash"], backend=m["backend"],
                          official=judge_id not in local)
        for row in _unescape(m["rows"]).split(", "):
            by_row.setdefault(row, judge)
    out = []
    for r in records:
        named = by_row.get(r.label) if r.judge is None and get_suite(r.suite).engine == "judge" else None
        out.append(r.model_copy(update={"judge": named}) if named is not None else r)
    return out


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def calibration_text(judge: JudgeInfo) -> str:
    """What `sppo-bench judge calibrate` found for this local judge, or that it was not calibrated."""
    c = judge.calibration
    if c is None:
        return ("Not calibrated: its agreement with the official judge is unknown (`sppo-bench judge calibrate` "
                "measures it).")
    text = (f"Calibration: agrees with the official judge on {c.agreement:.0%} of {c.n} published pairs "
            f"(always answering the majority verdict: {c.majority_baseline:.0%}), κ {c.kappa:.2f}, win-rate bias "
            f"{c.bias:+.1f} points (95% CI {c.bias_ci_low:+.1f} to {c.bias_ci_high:+.1f})")
    if c.position_consistency is not None:
        text += f", same verdict with the outputs swapped on {c.position_consistency:.0%}"
    text += f"; reference: {escape_cell(c.reference)}"
    if judge.fingerprint is not None and c.judge_fingerprint != judge.fingerprint:
        text += f"; **measured for judge fingerprint {c.judge_fingerprint[:SHA_SHOWN]}, not this judge's**"
    return text + (" — these numbers are a plumbing check, not a quality measure." if plumbing(c) else ".")


def plumbing(c: CalibrationSummary) -> bool:
    return not c.kappa >= PLUMBING_KAPPA or c.agreement <= c.majority_baseline


def record_notes(records: Sequence[ResultRecord]) -> list[str]:
    """Each distinct note once, with the rows that carry it: "AlpacaEval 2 (all rows): LC needs df_gamed.csv ..."."""
    carriers: dict[str, list[ResultRecord]] = {}
    for r in records:
        for note in dict.fromkeys(r.notes):
            carriers.setdefault(note, []).append(r)
    out = []
    for note, rs in carriers.items():
        where = []
        for suite in dict.fromkeys(r.suite for r in rs):
            labels = [r.label for r in rs if r.suite == suite]
            every = {r.label for r in records if r.suite == suite}
            who = "all rows" if set(labels) == every and len(every) > 1 else ", ".join(map(escape_cell, labels))
            where.append(f"{get_suite(suite).title} ({who})")
        out.append(f"Note, {'; '.join(where)}: {escape_cell(note)}")
    return out


def headline_caption(suite: str) -> str:
    """`open_llm_v1: average`: names the suite even where its card title is just `average`."""
    return f"{suite}: {get_suite(suite).headline_metric.label}"


def coverage_text(r: ResultRecord) -> str:
    """"2 of 805 items scored, --limit 2": out of the whole suite when the record knows its size."""
    parts = []
    if r.coverage:
        c = r.coverage
        parts.append(f"{c.scored} of {c.available or c.total} items scored")
        if c.available is not None and c.total not in (c.available, c.scored):
            parts.append(f"{c.total} attempted")
        if c.failed:
            parts.append(f"{c.failed} failed")
    if r.limit is not None:
        parts.append(f"--limit {r.limit}")
    return ", ".join(parts) or "coverage not recorded"


def checkpoint_rows(records: Sequence[ResultRecord], order: Sequence[tuple[str, str | None]]) -> list[list[str]]:
    """| Model | Checkpoint | Content sha256 | per row that records the evaluated checkpoint's fingerprint (one line per
    distinct fingerprint, naming its suites when a row has several)."""
    out = []
    for model, variant in order:
        mine = [r for r in records if (r.model, r.variant) == (model, variant) and r.provenance.checkpoint_sha256]
        shas = dict.fromkeys(r.provenance.checkpoint_sha256 for r in mine)
        for sha in shas:
            assert sha is not None
            cell = f"`{sha[:SHA_SHOWN]}`"
            if len(shas) > 1:
                cell += f" ({', '.join(r.suite for r in mine if r.provenance.checkpoint_sha256 == sha)})"
            checkpoint = next((r.checkpoint for r in mine if r.checkpoint), None)
            out.append([escape_cell(mine[0].label), escape_cell(checkpoint) if checkpoint else "—", cell])
    return out
