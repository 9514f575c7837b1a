"""Which judge produced a judged suite's numbers, and whether two records' judges are the same instrument: `check` and
`compare` pair two numbers only when they are (a GPT-4-judged win rate and a SmolLM2-judged one measure different
things, whatever their difference is).

A record's judge: its `JudgeInfo` (a run records it); else the judge an `.eval_results` entry names in its notes
("judge: ID (MODEL via BACKEND), the official judge"); else, for a published number whose judge was not recorded (a
model card, a reference JSON imported from one), the benchmark's official judge, as the benchmark publishes it. Two
judges differ when their judge id, judge model, prompt hash or content fingerprint differ (a field unknown on one side
is not compared). Metrics that describe the answers, not the verdicts (average length, token counts), are the same
whoever judged, and stay comparable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.catalog import get_suite
from harness.judges import choose_judge
from harness.records import ResultRecord

_NOTE = re.compile(r"^judge: (?P<id>\S+) \((?P<model>.+) via (?P<backend>[^)]+)\), (?P<official>the official judge)?")
AS_PUBLISHED = "as published"
NOT_JUDGED = frozenset({"avg_length", "avg_tokens", "empty_answers", "repeated_token_answers"})
"""Metrics of judged suites computed from the answers alone."""


@dataclass(frozen=True)
class Judge:
    id: str
    model: str
    official: bool
    prompt_hash: str | None = None
    fingerprint: str | None = None
    source: str = "recorded"
    """recorded (JudgeInfo), eval-results notes, or "as published" (assumed: the benchmark's official judge)."""

    @property
    def label(self) -> str:
        kind = "official" if self.official else "local"
        where = f", {self.source}" if self.source != "recorded" else ""
        return f"{kind} ({self.id}, {self.model}{where})"


def judge_of(record: ResultRecord) -> Judge | None:
    """The judge behind a judged suite's record; None for a suite without a judge (lm-eval, aggregates)."""
    if get_suite(record.suite).engine != "judge":
        return None
    if record.judge is not None:
        j = record.judge
        return Judge(j.id, j.model, j.official, j.prompt_hash, j.fingerprint)
    for note in record.notes:
        m = _NOTE.match(note)
        if m:
            return Judge(m["id"], m["model"], m["official"] is not None, source="eval-results notes")
    official = choose_judge(record.suite, "official")
    return Judge(official.id, official.model, True, source=AS_PUBLISHED)


def judge_mismatch(a: ResultRecord, b: ResultRecord, metric: str | None = None) -> str | None:
    """Why `a` and `b` were judged by different judges ("different judges: official (...) vs local (...) — not
    comparable"), or None when they were judged alike, the suite has no judge, or `metric` does not depend on it."""
    if metric in NOT_JUDGED:
        return None
    ja, jb = judge_of(a), judge_of(b)
    if ja is None or jb is None:
        return None
    differ = [what for what, x, y in (("judge id", ja.id, jb.id), ("judge model", ja.model, jb.model)) if x != y]
    differ += [what for what, x, y in (("prompt hash", ja.prompt_hash, jb.prompt_hash),
                                       ("judge fingerprint", ja.fingerprint, jb.fingerprint))
               if x is not None and y is not None and not _same_hash(x, y)]
    if not differ:
        return None
    return f"different judges ({', '.join(differ)}): {ja.label} vs {jb.label} — not comparable"


def _same_hash(x: str, y: str) -> bool:
    """Hashes printed shortened (a card shows 12 hex digits) match their full form."""
    return x == y or (min(len(x), len(y)) >= 12 and (x.startswith(y) or y.startswith(x)))
