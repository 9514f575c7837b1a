"""Importers: published raw results into typed records. One module per kind; each has
`import_file(path: Path, model: str, args: argparse.Namespace) -> list[ResultRecord]`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.errors import UserError

KINDS = {
    "lm-eval": "harness.importers.lm_eval",
    "alpaca-eval": "harness.importers.alpaca_eval",
    "arena-hard": "harness.importers.arena_hard",
    "mt-bench": "harness.importers.mt_bench",
}


def judgment_rows(path: Path, text: str, required: set[str], what: str) -> list[dict[str, Any]]:
    """The rows of a JSONL judgments file; a bad line is named by number, with what the row should hold."""
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}:{n}: not JSON ({exc.msg}); pass {what} .jsonl") from None
        if not isinstance(row, dict) or not required <= row.keys():
            raise UserError(f"{path}:{n}: not {what} row (needs {', '.join(sorted(required))})")
        rows.append(row)
    if not rows:
        raise UserError(f"{path}: no judgments")
    return rows


def rows_of_model(path: Path, rows: list[dict[str, Any]], model: str) -> list[dict[str, Any]]:
    """A file may hold judgments of several models: keep `model`'s, or say which ones it holds."""
    models = sorted({str(r["model"]) for r in rows})
    if len(models) <= 1:
        return rows
    if model not in models:
        raise UserError(f"{path}: judgments of {len(models)} models ({models[:5]}); pass --model as one of them")
    return [r for r in rows if r["model"] == model]
