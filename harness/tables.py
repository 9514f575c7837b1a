"""Flatten records into rows (model, variant, suite, metric, value, ...) for CSV / JSON / markdown."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from typing import Any

from harness.records import ResultRecord

COLUMNS = ("model", "variant", "iteration", "suite", "metric", "value", "stderr", "ci_low", "ci_high", "n", "status", "judge")


def rows(records: Iterable[ResultRecord], subtasks: bool = False) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for r in records:
        items = list(r.metrics.items())
        if subtasks:
            items += [(f"{sub}/{k}", m) for sub, ms in r.subtasks.items() for k, m in ms.items()]
        for key, m in items:
            out.append(
                {
                    "model": r.model,
                    "variant": r.variant,
                    "iteration": r.iteration,
                    "suite": r.suite,
                    "metric": key,
                    "value": m.value,
                    "stderr": m.stderr,
                    "ci_low": m.ci_low,
                    "ci_high": m.ci_high,
                    "n": m.n,
                    "status": r.status,
                    "judge": r.judge.id if r.judge else None,
                }
            )
    return out


def render(table: list[dict[str, Any]], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(table, indent=2) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        for row in table:
            w.writerow({k: ("" if v is None else v) for k, v in row.items()})
        return buf.getvalue()
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in table:
        lines.append("| " + " | ".join(escape_cell("" if row[c] is None else str(row[c])) for c in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def escape_cell(text: str) -> str:
    """Keep a markdown table intact, and free of markup, whatever a model name holds: `|` and backslashes escaped, line
    breaks as spaces, `<`, `>` and `&` backslash-escaped (CommonMark then prints them, never raw HTML or an entity),
    NUL and other control characters as U+FFFD (as CommonMark reads NUL). `cardparse.split_row` undoes the escapes."""
    text = text.replace("\\", "\\\\").replace("|", "\\|").replace("\r\n", " ").replace("\n", " ").replace("\r", " ")
    text = text.replace("<", "\\<").replace(">", "\\>").replace("&", "\\&")
    return _CONTROL.sub("\ufffd", text)
