"""The item browser of one suite: one entry per item, one cell per checkpoint (its answer, the judge's verdict or
rating, the lm-eval target and extracted answer), plus what the filters need: whether the verdict changed between
checkpoints and how much the answer's length moved.

Answers and judgments are markdown, rendered by markdown-it-py with raw HTML off (a `<script>` in an answer comes
out as text) and images off (an answer cannot make the page fetch anything).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from markdown_it import MarkdownIt

from harness.records import ItemRow
from harness.specs import SuiteSpec

PAGE_SIZE = 25
PROMPT_CHARS = 6000
"""Longer prompts (lm-eval few-shot contexts) keep their last PROMPT_CHARS characters, where the question is."""

# Arena-Hard verdicts from the model's side: game 1 has the baseline as A, game 2 swaps the two answers.
_GAME_1 = {"A>>B": "much worse", "A>B": "worse", "A=B": "tie", "B>A": "better", "B>>A": "much better"}
_GAME_2 = {"A>>B": "much better", "A>B": "better", "A=B": "tie", "B>A": "worse", "B>>A": "much worse"}
_SIGN = {"much worse": -1, "worse": -1, "tie": 0, "better": 1, "much better": 1}
_LM_EVAL_PRIMARY = ("acc_norm", "acc", "exact_match", "prompt_level_strict_acc", "mc2")


def markdown() -> MarkdownIt:
    """CommonMark + tables and strikethrough; raw HTML and images disabled; single newlines kept as line breaks."""
    return MarkdownIt("commonmark", {"html": False, "breaks": True}).enable(["table", "strikethrough"]).disable("image")


@dataclass
class Cell:
    answer_html: str | None
    verdict: str | None
    """Short label the "verdict changed" filter compares: win / tie / loss, better / worse, rating 7, correct."""
    tone: str | None
    """good / bad / even: the badge's colour."""
    details: list[str] = field(default_factory=list)
    length: int | None = None
    judgment_html: str | None = None
    target: str | None = None
    extracted: str | None = None


@dataclass
class Item:
    key: str
    """Unique within the suite: subtask / item id / turn."""
    item: str
    subtask: str | None
    turn: int | None
    prompt: str | None
    prompt_omitted: int
    cells: list[Cell | None]
    changed: bool
    length_change: int | None


def build_items(spec: SuiteSpec, columns: Sequence[Sequence[ItemRow]], md: MarkdownIt) -> list[Item]:
    """Items of one suite in id order; `columns[i]` are checkpoint i's rows (an item a checkpoint lacks is None)."""
    by_key: dict[str, list[ItemRow | None]] = {}
    for i, rows in enumerate(columns):
        for row in rows:
            by_key.setdefault(item_key(row), [None] * len(columns))[i] = row
    items = []
    for key, slots in sorted(by_key.items(), key=lambda kv: _order(next(r for r in kv[1] if r is not None))):
        first = next(r for r in slots if r is not None)
        cells: list[Cell | None] = [None if r is None else cell(r, spec, md) for r in slots]
        prompt, omitted = _clip(next((r.prompt for r in slots if r is not None and r.prompt), None))
        items.append(Item(key=key, item=first.item, subtask=first.subtask, turn=first.turn, prompt=prompt,
                          prompt_omitted=omitted, cells=cells, changed=verdict_changed(cells),
                          length_change=length_change(cells)))
    return items


def item_key(row: ItemRow) -> str:
    parts = [row.subtask or "", row.item] + ([f"turn{row.turn}"] if row.turn is not None else [])
    return "/".join(parts).strip("/")


def cell(row: ItemRow, spec: SuiteSpec, md: MarkdownIt) -> Cell:
    verdict, tone, details = judge_verdict(row, spec)
    return Cell(
        answer_html=md.render(row.answer) if row.answer else None,
        verdict=verdict,
        tone=tone,
        details=details,
        length=row.length,
        judgment_html=md.render(row.judgment) if row.judgment else None,
        target=row.target,
        extracted=row.extracted,
    )


def judge_verdict(row: ItemRow, spec: SuiteSpec) -> tuple[str | None, str | None, list[str]]:
    """(label, tone, detail lines) for one item row, by what the row carries."""
    if row.games is not None:
        return _arena_games(row.games)
    scores = row.scores
    if "preference" in scores:
        p = scores["preference"]
        label, tone = ("win", "good") if p > 1.5 else ("loss", "bad") if p < 1.5 else ("tie", "even")
        return label, tone, [f"preference {p:.3f} (1 = baseline preferred, 2 = this model)"]
    if "rating" in scores:
        r = scores["rating"]
        return f"rating {r:g}", "good" if r >= 7 else "bad" if r <= 4 else "even", [f"judge's rating {r:g} of 10"]
    if spec.engine != "lm-eval" or not scores:
        return None, None, []  # e.g. published outputs that were never judged: no verdict to show
    primary = next((k for k in (spec.headline, *_LM_EVAL_PRIMARY) if k in scores), next(iter(scores)))
    value = scores[primary]
    label, tone = ("correct", "good") if value == 1 else ("wrong", "bad") if value == 0 else (f"{primary} {value:g}", "even")
    return label, tone, [" · ".join(f"{k} {v:g}" for k, v in scores.items())]


def verdict_changed(cells: Sequence[Cell | None]) -> bool:
    return len({c.verdict for c in cells if c is not None and c.verdict is not None}) > 1


def length_change(cells: Sequence[Cell | None]) -> int | None:
    lengths = [c.length for c in cells if c is not None and c.length is not None]
    return max(lengths) - min(lengths) if len(lengths) >= 2 else None


def payload(items: Sequence[Item]) -> list[dict[str, Any]]:
    """What the page's script receives (the same fields the template renders)."""
    return [asdict(it) for it in items]


def _arena_games(games: Sequence[str | None]) -> tuple[str, str, list[str]]:
    sides = []
    details = []
    for n, (verdict, table) in enumerate(zip(games, (_GAME_1, _GAME_2), strict=False), 1):
        side = table.get(verdict or "", "no verdict")
        sides.append(side)
        who = "baseline is A" if n == 1 else "this model is A"
        details.append(f"game {n} ({who}): {verdict or 'no verdict'} → this model {side}")
    total = sum(_SIGN.get(s, 0) for s in sides)
    tone = "good" if total > 0 else "bad" if total < 0 else "even"
    return " / ".join(sides), tone, details


def _order(row: ItemRow) -> tuple[str, int, int | str, int]:
    numeric = row.item.isdigit()
    return (row.subtask or "", 0 if numeric else 1, int(row.item) if numeric else row.item, row.turn or 0)


def _clip(prompt: str | None) -> tuple[str | None, int]:
    if prompt is None or len(prompt) <= PROMPT_CHARS:
        return prompt, 0
    return prompt[-PROMPT_CHARS:], len(prompt) - PROMPT_CHARS
