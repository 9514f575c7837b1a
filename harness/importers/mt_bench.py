"""`sppo-bench import mt-bench JUDGMENTS.jsonl --model NAME --out RUN`: FastChat single-grade judgments
(data/mt_bench/model_judgment/gpt-4_single.jsonl: question_id, model, judge [judge model, prompt name], score, turn)
scored as FastChat `show_result.py` scores them (-1 excluded; turn 1, turn 2, average)."""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path
from typing import Any

from harness.importers import judgment_rows, rows_of_model
from harness.io import read_text
from harness.records import DatasetProvenance, JudgeInfo, Provenance, ResultRecord, now


def import_file(path: Path, model: str, args: argparse.Namespace) -> list[ResultRecord]:
    from harness.judged import mt_record, package_versions

    text = read_text(path, "MT-Bench judgment file")
    rows = _parse(path, text)
    rows = rows_of_model(path, rows, model)
    judges = sorted({str(r["judge"][0]) if isinstance(r.get("judge"), list) else str(r.get("judge")) for r in rows})
    prompts = sorted({str(r["judge"][1]) for r in rows if isinstance(r.get("judge"), list) and len(r["judge"]) > 1})
    official = judges == ["gpt-4"] and all(p.startswith("single-") for p in prompts)
    judge = JudgeInfo(id="mt_bench/gpt-4-single" if official else f"mt_bench/{'+'.join(judges)}",
                      model="+".join(judges), prompt_hash=_names_hash(prompts), backend="import", official=official)
    provenance = Provenance(source="import:mt-bench", location=str(path), packages=package_versions(),
                            dataset=DatasetProvenance(id="lm-sys/FastChat", source=str(path),
                                                      sha256=hashlib.sha256(text.encode()).hexdigest()),
                            started_at=now(), finished_at=now())
    record = mt_record(model, getattr(args, "variant", None), rows, judge, provenance)
    notes = record.notes + [f"prompts: {', '.join(prompts)}; prompt_hash is of the prompt names (texts not in file)"]
    return [record.model_copy(update={"iteration": getattr(args, "iteration", None), "notes": notes})]


def _parse(path: Path, text: str) -> list[dict[str, Any]]:
    # Pairwise judgment files lack "score": they are refused here with the fields a single-grade row needs.
    return judgment_rows(path, text, {"question_id", "model", "score", "turn"}, "a FastChat single-grade judgment")


def _names_hash(names: list[str]) -> str:
    from harness.judges import prompt_hash

    return prompt_hash(names)
