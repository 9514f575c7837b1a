"""Parse a published model card into reference records: `model-index` front matter and the five kinds of tables.

Front matter goes through huggingface_hub (its own front-matter regex, `ModelCardData`, which turns `model-index`
into `EvalResult`s). Markdown tables have no maintained parser that keeps cells verbatim, so the small splitter below
is ours: it tolerates rows without leading pipes, alignment colons, escaped `\\|` and `\\#`, and padded cells.
A table is recognised by its column headers, using the same layout `harness.cards` renders.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import yaml
from huggingface_hub import EvalResult, ModelCardData
from huggingface_hub.repocard import REGEX_YAML_BLOCK
from pydantic import ValidationError

from harness.cards import FAILED, MISSING, PARTIAL_MARK, Column, columns
from harness.cards.notes import with_card_judges
from harness.catalog import suites
from harness.errors import UserError
from harness.records import Metric, Provenance, ReferenceSet, ResultRecord, Status
from harness.specs import CARD_TABLES, CardTable

_SEPARATOR = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")
_VARIANT = re.compile(r"^(?P<model>.+?)\s+\((?P<variant>[^()]+)\)$", re.S)
_ITERATION = re.compile(r"\biter(?:ation)?[\s_-]*(\d+)", re.I)
_CI = re.compile(r"^\(\s*([-+]?\d+(?:\.\d+)?)\s*,\s*([-+]?\d+(?:\.\d+)?)\s*\)$")
_NUM = r"[-+]?\d+(?:\.\d+)?"
_CELL = re.compile(rf"^(?P<value>.+?)\s*(?:\[\s*(?P<low>{_NUM})\s*,\s*(?P<high>{_NUM})\s*\])?\s*(?:\bn=(?P<n>\d+))?$")
"""A cell `harness.cards` renders: `VALUE[†][ [LOW, HIGH]][ n=N]` (a published card's cells are bare values)."""
_NOT_A_VALUE = {MISSING, "-", "", FAILED, "n/a", "na", "not run"}


def parse_card(text: str, source: str) -> ReferenceSet:
    """All recognised scores of a model card. Raises UserError when the card holds none or a cell is not a number."""
    name, eval_results, body = _front_matter(text, source)
    found: list[ResultRecord] = []
    if eval_results:
        found += _from_model_index(name, eval_results, source)
    offset = text[: len(text) - len(body)].count("\n")  # table line numbers count from the file's first line
    tables = list(markdown_tables(body))
    lines = body.splitlines()
    for k, (line, header, rows) in enumerate(tables):
        end = tables[k + 1][0] - 1 if k + 1 < len(tables) else len(lines)  # the table's footnotes name its judge
        found += with_card_judges(_from_table(header, rows, name or Path(source).stem, source, line + offset),
                                  lines[line:end])
    if not found:
        raise UserError(
            f"{source}: no model-index scores and no recognised results table (AlpacaEval, Arena-Hard, "
            "Open LLM Leaderboard v1/v2, MT-Bench); pass a model card that reports them"
        )
    return ReferenceSet(name=name or Path(source).stem, source=source, card_model=name, records=_merge(found))


def split_label(label: str) -> tuple[str, str | None, int | None]:
    """"Mistral7B-PairRM-SPPO Iter 1 (best-of-16)" -> ("Mistral7B-PairRM-SPPO Iter 1", "best-of-16", 1)."""
    m = _VARIANT.match(label)
    model, variant = (m["model"], m["variant"].strip()) if m else (label, None)
    iterations = _ITERATION.findall(model)
    return model, variant, int(iterations[-1]) if iterations else None


def markdown_tables(body: str) -> Iterator[tuple[int, list[str], list[list[str]]]]:
    """(line number, header cells, row cells) of every pipe table outside code fences."""
    lines = body.splitlines()
    fenced = False
    i = 0
    while i < len(lines) - 1:
        if lines[i].lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced and "|" in lines[i] and _SEPARATOR.match(lines[i + 1]) and "-" in lines[i + 1]:
            j = i + 2
            while j < len(lines) and "|" in lines[j] and lines[j].strip():
                j += 1
            yield i + 1, split_row(lines[i]), [split_row(row) for row in lines[i + 2 : j]]
            i = j
            continue
        i += 1


def split_row(line: str) -> list[str]:
    """Cells of one table row; a backslash escapes the next character (`\\|`, `\\#`, `\\\\`)."""
    cells: list[str] = []
    current: list[str] = []
    text = line.strip()
    i = 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            current.append(text[i + 1])
            i += 1
        elif text[i] == "|":
            cells.append("".join(current))
            current = []
        else:
            current.append(text[i])
        i += 1
    if current or not cells:  # no closing pipe: the last cell is still open
        cells.append("".join(current))
    if text.startswith("|"):
        cells = cells[1:]
    return [c.strip() for c in cells]


def _front_matter(text: str, source: str) -> tuple[str | None, list[EvalResult], str]:
    match = REGEX_YAML_BLOCK.search(text)
    if not match:
        return None, [], text
    try:
        data = yaml.safe_load(match.group(2)) or {}
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 2}" if where is not None else ""
        raise UserError(f"{source}: malformed YAML front matter{line}; fix the block between the `---` lines") from None
    if not isinstance(data, dict):
        raise UserError(f"{source}: YAML front matter is not a mapping; fix the block between the `---` lines")
    try:
        card = ModelCardData(**{str(k): v for k, v in data.items()})
    except (ValueError, TypeError) as exc:
        cause = exc.__context__ or exc  # huggingface_hub wraps the KeyError naming the missing field
        raise UserError(f"{source}: invalid model-index in the front matter (missing or bad field {cause}); "
                        "fix or remove it") from None
    name = None if card.model_name is None else str(card.model_name)
    return name, list(card.eval_results or []), text[match.end() :]


def _from_model_index(name: str | None, results: list[EvalResult], source: str) -> list[ResultRecord]:
    if not name:
        raise UserError(f"{source}: model-index has no `name`; add the model's name to the front matter")
    model, variant, iteration = split_label(name)
    out: list[ResultRecord] = []
    for res in results:
        spec = next(
            (s for s in suites() if s.model_index and (s.title == res.dataset_name or
             (s.model_index.dataset_type, s.model_index.metric_type) == (res.dataset_type, res.metric_type))),
            None,
        )
        if spec is None:
            continue  # another leaderboard's entry (e.g. the v1 bot's 25-shot ARC); not one of our suites
        value = _number(str(res.metric_value), f"model-index {res.dataset_name!r}", source)
        checkpoint = parse_qs(urlparse(res.source_url or "").query).get("query", [None])[0]
        out.append(_record(model, variant, iteration, spec.name, {spec.headline: Metric(value=value)}, source,
                           checkpoint=checkpoint))
    return out


def _from_table(header: list[str], rows: list[list[str]], card_model: str, source: str, line: int) -> list[ResultRecord]:
    kind, cols = _recognise([row[0] for row in rows]) if _norm(header[0]) == "metric" else (None, [])
    if kind is not None:
        # Transposed ("| Metric | Value |"): one row per suite, one column per model; "Value" is the card's model.
        labels = [card_model if _norm(h) == "value" else h for h in header[1:]]
        grid = {label: [row[k + 1] if k + 1 < len(row) else "" for row in rows] for k, label in enumerate(labels)}
    else:
        kind, cols = _recognise(header[1:])
        grid = {row[0]: row[1:] for row in rows if row[0]}
    if kind is None:
        return []
    out: list[ResultRecord] = []
    for label, cells in grid.items():
        model, variant, iteration = split_label(label)
        per_suite: dict[str, dict[str, Metric]] = {}
        partial: set[str] = set()
        for col, text in zip(cols, cells, strict=False):
            if col is None or text.lower() in _NOT_A_VALUE:
                continue
            where = f"table at line {line}, row {label!r}, column {col.header!r}"
            metrics = per_suite.setdefault(col.suite, {})
            if col.ci:
                text, is_partial = _unmark(text)
                _attach_ci(metrics, col, text, where, source)
            else:
                metrics[col.metric], is_partial = _value_cell(text, where, source)
            if is_partial:
                partial.add(col.suite)
        for suite, metrics in per_suite.items():
            status: Status = "partial" if suite in partial else "complete"
            out.append(_record(model, variant, iteration, suite, metrics, source, status=status))
    return out


def _recognise(cells: list[str]) -> tuple[CardTable | None, list[Column | None]]:
    """The table kind whose column headers match most of `cells` (at least one), and each cell's column."""
    best: tuple[int, CardTable | None, list[Column | None]] = (0, None, [])
    for kind in CARD_TABLES:
        known = {_norm(c.header): c for c in columns(kind)}
        mapped = [known.get(_norm(cell)) for cell in cells]
        hits = sum(c is not None for c in mapped)
        if hits > best[0]:
            best = (hits, kind, mapped)
    return best[1], best[2]


def _value_cell(text: str, where: str, source: str) -> tuple[Metric, bool]:
    """A value cell: its number, the 95% interval and n when the card printed them, and whether it is marked partial."""
    m = _CELL.match(text)
    if m is None or (m["low"] is None and m["n"] is None):
        value, partial = _unmark(text)
        return Metric(value=_number(value, where, source)), partial
    value, partial = _unmark(m["value"])
    low, high = (None, None) if m["low"] is None else (float(m["low"]), float(m["high"]))
    try:
        metric = Metric(value=_number(value, where, source), ci_low=low, ci_high=high,
                        n=None if m["n"] is None else int(m["n"]))
    except ValidationError as exc:
        raise UserError(f"{source}: {where}: {text!r}: {exc.errors()[0]['msg'].removeprefix('Value error, ')}; "
                        "fix the cell") from None
    return metric, partial


def _unmark(text: str) -> tuple[str, bool]:
    """The cell without its partial mark `†`, and whether it had one."""
    stripped = text.strip()
    return (stripped.removesuffix(PARTIAL_MARK).strip(), True) if stripped.endswith(PARTIAL_MARK) else (stripped, False)


def _attach_ci(metrics: dict[str, Metric], col: Column, text: str, where: str, source: str) -> None:
    m = _CI.match(text)
    point = metrics.get(col.metric)
    if m is None or point is None:
        raise UserError(f"{source}: {where}: {text!r} is not a CI like (-1.8, +1.8) after a score; fix the cell")
    low, high = point.value + float(m[1]), point.value + float(m[2])
    metrics[col.metric] = point.model_copy(update={"ci_low": round(low, 9), "ci_high": round(high, 9)})


def _number(text: str, where: str, source: str) -> float:
    try:
        value = float(text.strip().rstrip("%"))
    except ValueError:
        raise UserError(f"{source}: {where}: {text!r} is not a number; fix the cell or write — for not run") from None
    if not math.isfinite(value):
        raise UserError(f"{source}: {where}: {text!r} is not a finite number; fix the cell or write — for not run")
    return value


def _record(model: str, variant: str | None, iteration: int | None, suite: str, metrics: dict[str, Metric],
            source: str, status: Status = "complete", checkpoint: str | None = None) -> ResultRecord:
    try:
        return ResultRecord(
            model=model, variant=variant, iteration=iteration, checkpoint=checkpoint, suite=suite,
            status=status,
            metrics=metrics, provenance=Provenance(source="card", location=source),
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or suite
        raise UserError(f"{source}: row {model!r}, {suite}: {where}: {err['msg'].removeprefix('Value error, ')}; "
                        "fix the card") from None


def _merge(records: list[ResultRecord]) -> list[ResultRecord]:
    """One record per (model, variant, suite); the first value wins (model-index before tables), conflicts are noted.
    A row's checkpoint (from the model-index source URL) is shared by all its records."""
    out: dict[tuple[str, str | None, str], ResultRecord] = {}
    for r in records:
        kept = out.get(r.key)
        if kept is None:
            out[r.key] = r
            continue
        for key, metric in r.metrics.items():
            if key not in kept.metrics:
                kept.metrics[key] = metric
            elif kept.metrics[key].value != metric.value:
                kept.notes.append(f"{key}: the card also prints {metric.value} (kept {kept.metrics[key].value})")
            else:  # the same number (model-index and table): keep the interval and n the table prints beside it
                extra = {k: v for k, v in metric.model_dump(exclude_none=True).items() if k != "value"}
                kept.metrics[key] = kept.metrics[key].model_copy(update=extra)
        kept.checkpoint = kept.checkpoint or r.checkpoint
        if r.status == "partial":
            kept.status = "partial"
    checkpoints = {(r.model, r.variant): r.checkpoint for r in out.values() if r.checkpoint}
    for r in out.values():
        r.checkpoint = r.checkpoint or checkpoints.get((r.model, r.variant))
    return list(out.values())


def _norm(text: str) -> str:
    return " ".join(text.replace("\\", "").split()).lower()
