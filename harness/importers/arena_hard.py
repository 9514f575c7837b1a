"""`sppo-bench import arena-hard JUDGMENTS.jsonl --model NAME --out RUN`: an arena-hard-auto v0.1 model_judgment
file (data/arena-hard-v0.1/model_judgment/<judge>/<model>.jsonl; baseline gpt-4-0314) scored as upstream
`show_result.py` scores it. Average tokens come from the sibling model_answer/<model>.jsonl when it is there."""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.importers import judgment_rows, rows_of_model
from harness.io import read_text
from harness.records import DatasetProvenance, JudgeInfo, Provenance, ResultRecord, now

BASELINE = "gpt-4-0314"


def import_file(path: Path, model: str, args: argparse.Namespace) -> list[ResultRecord]:
    from harness.judged import arena_record, package_versions

    text = read_text(path, "arena-hard judgment file")
    rows = _parse(path, text)
    rows = rows_of_model(path, rows, model)
    generator = str(rows[0]["model"])
    baseline = getattr(args, "baseline", None) or BASELINE
    judges = sorted({str(r.get("judge")) for r in rows})
    token_lens, answers_note = _token_lens(path, generator)
    judge = _judge_info(judges)
    provenance = Provenance(source="import:arena-hard", location=str(path), packages=package_versions(),
                            dataset=DatasetProvenance(id="lmarena/arena-hard-auto", source=str(path),
                                                      sha256=hashlib.sha256(text.encode()).hexdigest()),
                            started_at=now(), finished_at=now())
    record = arena_record(model if model != generator else generator, getattr(args, "variant", None), rows, token_lens,
                          judge, provenance, baseline=baseline)
    notes = record.notes + ([answers_note] if answers_note else [])
    return [record.model_copy(update={"iteration": getattr(args, "iteration", None), "notes": notes})]


def _parse(path: Path, text: str) -> list[dict[str, Any]]:
    rows = judgment_rows(path, text, {"question_id", "model", "games"}, "an arena-hard v0.1 model_judgment")
    for n, row in enumerate(rows, 1):
        if len(row["games"]) != 2:
            raise UserError(f"{path}: row {n}: {len(row['games'])} games; v0.1 judges each question twice (baseline "
                            "as A, then swapped)")
    return rows


def _token_lens(path: Path, generator: str) -> tuple[list[int] | None, str | None]:
    # upstream layout: data/<bench>/model_judgment/<judge>/<model>.jsonl and data/<bench>/model_answer/<model>.jsonl
    answers = path.parent.parent.parent / "model_answer" / f"{generator}.jsonl"
    if not answers.is_file():
        return None, None
    lens = []
    for line in answers.read_text(encoding="utf-8").splitlines():
        if line.strip():
            turn = json.loads(line)["choices"][0]["turns"][0]
            if "token_len" not in turn:
                return None, f"{answers}: answers lack token_len; avg tokens unavailable"
            lens.append(int(turn["token_len"]))
    return lens, None


def _judge_info(judges: list[str]) -> JudgeInfo:
    from harness.judges import ARENA_OFFICIAL
    from harness.judges.arena_hard import spec_prompt_hash

    if judges == [ARENA_OFFICIAL.model]:
        return JudgeInfo(id=ARENA_OFFICIAL.id, model=ARENA_OFFICIAL.model, prompt_hash=spec_prompt_hash(ARENA_OFFICIAL),
                         backend="import", official=True)
    return JudgeInfo(id=f"arena_hard/{'+'.join(judges)}", model="+".join(judges), prompt_hash="unknown",
                     backend="import", official=False)
