"""AlpacaEval 2 as a judged suite: the 805 instructions, alpaca_eval's file formats (`model_outputs.json`,
`<annotator>/annotations.json`), the record (alpaca_eval's `get_winrate`, and `get_length_controlled_winrate` when
df_gamed.csv has been pulled), per-instruction item rows, and the import of published annotations
(results/<model>/<annotator>/annotations.json) scored exactly as alpaca_eval scores them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from benchmarks.alpaca_eval import judging
from benchmarks.alpaca_eval.scoring import DF_GAMED_FILENAME, avg_length, length_controlled, win_rate
from harness.backends.base import Completion
from harness.engines.generation import Question
from harness.engines.judged import (
    Header,
    ImportRequest,
    JudgeRun,
    SuiteData,
    judged_status,
    number_or_none,
    text_or_none,
)
from harness.errors import UserError
from harness.io import atomic_write_text, read_jsonl, read_text, slug
from harness.judges import JudgeSpec
from harness.records import Coverage, DatasetProvenance, ItemRow, JudgeInfo, Metric, ResultRecord

N_INSTRUCTIONS = 805
OFFICIAL_ANNOTATOR = "weighted_alpaca_eval_gpt4_turbo"
LIMIT_NOTE = "LC win rate not computed on a --limit subset (the GLM is fitted on the full 805)"


class AlpacaEval:
    name = "alpaca_eval"
    import_kind = "alpaca-eval"
    judges = (judging.OFFICIAL, judging.LOCAL)
    max_new_tokens = 2048
    """FastChat/alpaca_eval default generation cap for the model's outputs."""

    def load(self, folder: Path) -> SuiteData:
        rows = read_jsonl(folder / "eval.jsonl", "AlpacaEval eval set")
        questions = [Question(str(i), (r["instruction"],), row=r) for i, r in enumerate(rows)]
        return SuiteData(folder, questions, {"df_gamed": folder / DF_GAMED_FILENAME})

    def prompt_hash(self, judge: JudgeSpec, data: SuiteData) -> str:
        return judging.spec_prompt_hash(judge)

    def write_answers(self, out: Path, label: str, questions: Sequence[Question],
                      answers: Sequence[Sequence[Completion]]) -> None:
        outputs = [{"instruction": q.turns[0], "output": a[0].text, "generator": label, "dataset": q.row.get("dataset")}
                   for q, a in zip(questions, answers, strict=True)]
        atomic_write_text(out / "model_outputs.json", json.dumps(outputs, indent=2, ensure_ascii=False) + "\n")

    def judge(self, run: JudgeRun, data: SuiteData, label: str, questions: Sequence[Question],
              answers: Sequence[Sequence[Completion]]) -> list[dict[str, Any]]:
        pairs = [{"instruction": q.turns[0], "output_1": q.row["output"], "generator_1": run.spec.baseline,
                  "output_2": a[0].text, "generator_2": label, "dataset": q.row.get("dataset")}
                 for q, a in zip(questions, answers, strict=True)]
        return judging.annotate(run.spec, pairs, run.backend, run.cache, run.concurrency, run.endpoint)

    def write_judgments(self, out: Path, label: str, judge: JudgeSpec, judgments: Sequence[dict[str, Any]]) -> None:
        atomic_write_text(out / slug(judge.id.replace("/", "__")) / "annotations.json",
                          json.dumps(list(judgments), indent=2, ensure_ascii=False) + "\n")

    def score(self, header: Header, data: SuiteData, judgments: Sequence[dict[str, Any]],
              questions: Sequence[Question], answers: Sequence[Sequence[Completion]], seed: int) -> ResultRecord:
        positions = [int(q.id) for q, a in zip(questions, answers, strict=True) if not any(c.error for c in a)]
        df_gamed = None if header.limit else data.extra["df_gamed"]
        return alpaca_record(header, judgments, positions, df_gamed, total=len(questions),
                             limit_note=LIMIT_NOTE if header.limit else None)

    def items(self, judgments: Sequence[dict[str, Any]], questions: Sequence[Question],
              answers: Sequence[Sequence[Completion]]) -> list[ItemRow]:
        positions = [int(q.id) for q, a in zip(questions, answers, strict=True) if not any(c.error for c in a)]
        return alpaca_items(judgments, positions)

    def import_file(self, request: ImportRequest) -> tuple[ResultRecord, list[ItemRow]]:
        return import_annotations(request)


def alpaca_record(header: Header, annotations: Sequence[dict[str, Any]], positions: Sequence[int],
                  df_gamed: Path | None, total: int, limit_note: str | None = None) -> ResultRecord:
    """Score alpaca_eval annotations (preference None = failed/unparsable) into a record. `positions`: each
    annotation's index in the 805 (the LC GLM looks instruction difficulties up by it)."""
    import pandas as pd

    prefs = [a.get("preference") for a in annotations]
    scored = sum(1 for p in prefs if p is not None and p == p)
    coverage = Coverage(total=total, scored=scored, failed=total - scored, available=N_INSTRUCTIONS)
    if not scored:
        return header.failed("alpaca_eval", coverage, "no judgment could be read: nothing to score")
    wr = win_rate(prefs)
    metrics = {
        "win_rate": Metric(value=wr.win_rate, stderr=wr.standard_error, n=wr.n_total),
        "avg_length": Metric(value=float(avg_length([a["output_2"] for a in annotations])), n=len(annotations)),
    }
    notes = []
    if limit_note:
        notes.append(limit_note)
    else:
        frame = pd.DataFrame(
            [{k: a.get(k) for k in ("instruction", "output_1", "generator_1", "output_2", "generator_2", "annotator",
                                    "preference")} for a in annotations], index=list(positions))
        lc = length_controlled(frame, df_gamed)
        if lc.value is None:
            notes.append(str(lc.reason))
        else:
            metrics["lc_win_rate"] = Metric(value=lc.value, stderr=lc.stderr, n=scored)
    subtasks = {"head2head": {
        "n_wins": Metric(value=wr.n_wins), "n_wins_base": Metric(value=wr.n_wins_base),
        "n_draws": Metric(value=wr.n_draws), "n_total": Metric(value=wr.n_total),
        "discrete_win_rate": Metric(value=wr.discrete_win_rate, n=wr.n_total)}}
    unparsed = sum(1 for a in annotations if a.get("unparsed"))
    if unparsed:
        notes.append(f"{unparsed} verdicts unparsable (neither m nor M among the top logprobs): not scored, record "
                     "partial")
    combinations = sorted({str(a["combination"]) for a in annotations if a.get("combination")})
    if combinations:
        notes.append(f"local judge: {', '.join(combinations)} (each pair asked with either output first; "
                     "P(model > baseline) = sigma of the mean of the two orders' log-odds)")
    status = judged_status(total, len(annotations), annotations, unparsed)
    return header.record("alpaca_eval", status, metrics, coverage, notes, subtasks=subtasks)


def alpaca_items(annotations: Sequence[Mapping[str, Any]], positions: Sequence[int]) -> list[ItemRow]:
    """alpaca_eval annotations -> rows; `positions[i]` is annotation i's index in the 805 AlpacaEval instructions.
    A preference of 0 is alpaca_eval's legacy draw (1.5); None, NaN or a value outside [1, 2] is no judgment (alpaca_eval
    drops those before scoring)."""
    if len(annotations) != len(positions):
        raise ValueError(f"{len(annotations)} annotations but {len(positions)} positions")
    rows = []
    for a, position in zip(annotations, positions, strict=True):
        preference = number_or_none(a.get("preference"))
        preference = 1.5 if preference == 0 else preference
        if preference is None or not 1.0 <= preference <= 2.0:
            continue
        output = str(a.get("output_2") or "")
        rows.append(ItemRow(item=str(position), scores={"preference": preference, "length": float(len(output))},
                            judgment=text_or_none(a.get("raw_completion")), prompt=a.get("instruction"), answer=output,
                            length=len(output)))
    return rows


# --------------------------------------------------------------------------------------------------------- import

class _Annotation(BaseModel):
    """One row of an alpaca_eval annotations.json, as far as scoring reads it."""

    model_config = ConfigDict(extra="allow")
    instruction: str
    output_1: str | None = None
    generator_1: str | None = None
    output_2: str
    generator_2: str
    annotator: str | None = None
    dataset: str | None = None
    preference: float | None

    @field_validator("output_1", "output_2", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return "" if value is None else value

    @field_validator("preference")
    @classmethod
    def _encoded(cls, value: float | None) -> float | None:
        """alpaca_eval's encoding: 1 (baseline wins) .. 2 (model wins), 0 or 1.5 a draw, None/NaN no judgment;
        anything else (Infinity, 1e308, 3) would make a win rate outside 0..100."""
        if value is None or value != value or value == 0 or 1.0 <= value <= 2.0:
            return value
        raise ValueError(f"{value!r} is outside alpaca_eval's preference encoding (1..2; 0 or 1.5 = draw; null = none)")


def import_annotations(request: ImportRequest) -> tuple[ResultRecord, list[ItemRow]]:
    path = request.path
    text = read_text(path, "alpaca_eval annotations file")
    annotations = parse_annotations(path, text)
    baseline = request.baseline or "gpt4_1106_preview"
    bad_base = sorted({str(a.get("generator_1")) for a in annotations} - {baseline})
    if bad_base:
        raise UserError(f"{path}: output_1 comes from {bad_base}, not the baseline {baseline!r}; pass --baseline NAME "
                        "if that is intended")
    reference = _reference(request.data_dir)
    positions, notes = instruction_positions([a["instruction"] for a in annotations], reference, path)
    annotator = str(annotations[0].get("annotator", "unknown"))
    if annotator != OFFICIAL_ANNOTATOR:
        notes.append(f"annotator {annotator!r} is not the AlpacaEval 2 default {OFFICIAL_ANNOTATOR}")
    dataset = DatasetProvenance(id="tatsu-lab/alpaca_eval", source=str(path), sha256=hashlib.sha256(text.encode()).hexdigest())
    header = request.header("import:alpaca-eval", _judge_info(annotator), dataset, notes)
    df_gamed = request.data_dir / "alpaca_eval" / DF_GAMED_FILENAME if request.data_dir else None
    record = alpaca_record(header, annotations, positions, df_gamed, total=len(annotations))
    if record.status == "failed":
        raise UserError(f"{path}: {record.error}: every preference is null or NaN; import the file alpaca_eval "
                        "wrote after annotating")
    if len(annotations) < N_INSTRUCTIONS:  # counted, not assumed: a file of 400 instructions is no full AlpacaEval
        record = record.model_copy(update={
            "status": "partial",
            "notes": [*record.notes, f"{len(annotations)} of {N_INSTRUCTIONS} instructions in the file"]})
    return record, alpaca_items(annotations, positions)


def parse_annotations(path: Path, text: str) -> list[dict[str, Any]]:
    """The rows of an alpaca_eval annotations.json, validated (one-line errors naming the row and field)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not JSON ({exc.msg} at line {exc.lineno}); pass an alpaca_eval annotations.json") from None
    if not isinstance(data, list) or not data:
        raise UserError(f"{path}: expected a JSON list of annotations (alpaca_eval annotations.json)")
    out = []
    for i, row in enumerate(data):
        try:
            a = _Annotation.model_validate(row)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(x) for x in err["loc"]) or "row"
            raise UserError(f"{path}: annotation #{i}: field {where}: {err['msg']}; is this an alpaca_eval "
                            "annotations.json?") from None
        out.append(a.model_dump(include={"instruction", "output_1", "generator_1", "output_2", "generator_2",
                                         "annotator", "dataset", "preference"}))
    generators = sorted({str(a["generator_2"]) for a in out})
    if len(generators) > 1:
        raise UserError(f"{path}: annotations of {len(generators)} models ({generators[:3]}); import one model's file")
    return out


def _reference(data_dir: Path | None) -> list[str] | None:
    """The canonical 805 instructions from the pulled eval set, or None when it is not pulled."""
    path = data_dir / "alpaca_eval" / "eval.jsonl" if data_dir else None
    if path is None or not path.is_file():
        return None
    return [str(r["instruction"]) for r in read_jsonl(path, "AlpacaEval eval set")]


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
        spec = judging.OFFICIAL
        return JudgeInfo(id=spec.id, model=spec.model, prompt_hash=judging.spec_prompt_hash(spec), backend="import",
                         official=True)
    return JudgeInfo(id=f"alpaca_eval/{annotator}", model="unknown", prompt_hash="unknown", backend="import",
                     official=False)
