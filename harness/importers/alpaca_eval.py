"""`sppo-bench import alpaca-eval ANNOTATIONS.json --model NAME --out RUN`: published alpaca_eval annotations
(results/<model>/<annotator>/annotations.json) scored exactly as alpaca_eval scores them (harness.judged.alpaca_record:
`get_winrate`, and `get_length_controlled_winrate` when df_gamed.csv has been pulled)."""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.io import read_text
from harness.records import DatasetProvenance, JudgeInfo, Provenance, ResultRecord, now
from harness.settings import Settings, from_env

N_INSTRUCTIONS = 805
OFFICIAL_ANNOTATOR = "weighted_alpaca_eval_gpt4_turbo"


def import_file(path: Path, model: str, args: argparse.Namespace) -> list[ResultRecord]:
    from harness.judged import alpaca_record, package_versions
    from harness.scoring.alpaca_eval import df_gamed_path

    settings: Settings = getattr(args, "settings", None) or from_env()
    text = read_text(path, "alpaca_eval annotations file")
    annotations = _parse(path, text)
    baseline = getattr(args, "baseline", None) or "gpt4_1106_preview"
    bad_base = sorted({str(a.get("generator_1")) for a in annotations} - {baseline})
    if bad_base:
        raise UserError(f"{path}: output_1 comes from {bad_base}, not the baseline {baseline!r}; pass --baseline NAME "
                        "if that is intended")
    positions, notes = instruction_positions([a["instruction"] for a in annotations], _reference(settings), path)
    annotator = str(annotations[0].get("annotator", "unknown"))
    judge = _judge_info(annotator)
    provenance = Provenance(source="import:alpaca-eval", location=str(path), packages=package_versions(),
                            dataset=DatasetProvenance(id="tatsu-lab/alpaca_eval", source=str(path),
                                                      sha256=hashlib.sha256(text.encode()).hexdigest()),
                            started_at=now(), finished_at=now())
    record = alpaca_record(model, getattr(args, "variant", None), annotations, positions, judge, provenance,
                           df_gamed=df_gamed_path(settings), total=len(annotations))
    if annotator != OFFICIAL_ANNOTATOR:
        notes.append(f"annotator {annotator!r} is not the AlpacaEval 2 default {OFFICIAL_ANNOTATOR}")
    return [record.model_copy(update={"iteration": getattr(args, "iteration", None), "notes": record.notes + notes})]


def _parse(path: Path, text: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not JSON ({exc.msg} at line {exc.lineno}); pass an alpaca_eval annotations.json") from None
    if not isinstance(data, list) or not data:
        raise UserError(f"{path}: expected a JSON list of annotations (alpaca_eval annotations.json)")
    need = ("instruction", "output_1", "output_2", "generator_2", "preference")
    for i, a in enumerate(data):
        missing = [k for k in need if not isinstance(a, dict) or k not in a]
        if missing:
            raise UserError(f"{path}: annotation #{i} lacks {missing}; is this an alpaca_eval annotations.json?")
    generators = sorted({str(a["generator_2"]) for a in data})
    if len(generators) > 1:
        raise UserError(f"{path}: annotations of {len(generators)} models ({generators[:3]}); import one model's file")
    out = []
    for a in data:
        pref = a["preference"]
        pref = None if pref is None else float(pref)
        out.append({**{k: a.get(k) for k in ("instruction", "output_1", "generator_1", "output_2", "generator_2",
                                              "annotator", "dataset")}, "preference": pref})
    return out


def _reference(settings: Settings) -> list[str] | None:
    """The canonical 805 instructions from the pulled eval set, or None when it is not pulled."""
    path = settings.data_dir / "alpaca_eval" / "eval.jsonl"
    if not path.is_file():
        return None
    return [json.loads(line)["instruction"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def instruction_positions(instructions: list[str], reference: list[str] | None,
                          path: Path) -> tuple[list[int], list[str]]:
    """Position of each instruction in the canonical 805 (the LC GLM needs it). Any instruction not in the set is an
    error naming how many and which (upstream silently returns NaN)."""
    if reference is None:
        notes = ["instructions not checked against the AlpacaEval set (eval data not pulled); file order used"]
        if len(instructions) != N_INSTRUCTIONS or len(set(instructions)) != len(instructions):
            raise UserError(f"{path}: {len(instructions)} annotations ({len(set(instructions))} distinct instructions), "
                            f"expected the {N_INSTRUCTIONS} AlpacaEval instructions once each")
        return list(range(len(instructions))), notes
    index = {text: i for i, text in enumerate(reference)}
    unknown = [(i, t) for i, t in enumerate(instructions) if t not in index]
    if unknown:
        shown = "; ".join(f"#{i}: {t[:60]!r}" for i, t in unknown[:3])
        raise UserError(f"{path}: {len(unknown)} of {len(instructions)} instructions are not AlpacaEval instructions "
                        f"({shown}); re-generate the outputs on the official 805")
    dup = len(instructions) - len(set(instructions))
    if dup:
        raise UserError(f"{path}: {dup} instructions appear more than once; each of the {len(reference)} once")
    notes = []
    if len(instructions) != len(reference):
        missing = [t for t in reference if t not in set(instructions)]
        notes.append(f"{len(missing)} of the {len(reference)} instructions are missing from the file")
    return [index[t] for t in instructions], notes


def _judge_info(annotator: str) -> JudgeInfo:
    if annotator == OFFICIAL_ANNOTATOR:
        from harness.judges import ALPACA_OFFICIAL
        from harness.judges.alpaca_eval import spec_prompt_hash

        return JudgeInfo(id=ALPACA_OFFICIAL.id, model=ALPACA_OFFICIAL.model,
                         prompt_hash=spec_prompt_hash(ALPACA_OFFICIAL), backend="import", official=True)
    return JudgeInfo(id=f"alpaca_eval/{annotator}", model="unknown", prompt_hash="unknown", backend="import",
                     official=False)
