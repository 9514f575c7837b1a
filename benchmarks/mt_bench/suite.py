"""MT-Bench as a judged suite: FastChat's 80 two-turn questions, reference answers and judge prompts, FastChat's file
formats (`model_answer/<model>.jsonl`, `model_judgment/<judge>_single.jsonl`), answer temperatures per category, the
record (FastChat `show_result.py`: -1 excluded; turn 1, turn 2, average), per-(question, turn) item rows, and the
import of published single-grade judgments."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from benchmarks.mt_bench import judging
from benchmarks.mt_bench.scoring import mt_bench_scores
from harness.backends.base import Completion
from harness.engines.generation import Question
from harness.engines.judged import (
    Header,
    ImportRequest,
    JudgeRun,
    SuiteData,
    judged_status,
    judgment_rows,
    number_or_none,
    rows_of_model,
)
from harness.errors import UserError
from harness.io import read_jsonl, read_text, slug, write_jsonl
from harness.judges import JudgeSpec, prompt_hash
from harness.records import Coverage, DatasetProvenance, ItemRow, JudgeInfo, Metric, ResultRecord

# FastChat fastchat/llm_judge/common.py temperature_config (tests assert equality with FastChat's own).
MT_TEMPERATURE = {"writing": 0.7, "roleplay": 0.7, "extraction": 0.0, "math": 0.0, "coding": 0.0, "reasoning": 0.0,
                  "stem": 0.1, "humanities": 0.1, "arena-hard-200": 0.0}
N_QUESTIONS = 80


class MTBench:
    name = "mt_bench"
    import_kind = "mt-bench"
    judges = (judging.OFFICIAL, judging.LOCAL)
    max_new_tokens = 1024
    """FastChat gen_model_answer --max-new-token."""

    def load(self, folder: Path) -> SuiteData:
        rows = read_jsonl(folder / "question.jsonl", "MT-Bench questions")
        refs = {r["question_id"]: r["choices"][0]["turns"]
                for r in read_jsonl(folder / "reference_answer" / "gpt-4.jsonl", "MT-Bench reference answers")}
        questions = [Question(str(r["question_id"]), tuple(r["turns"]), MT_TEMPERATURE.get(r["category"], 0.7), row=r)
                     for r in rows]
        return SuiteData(folder, questions, {"references": refs,
                                             "prompts": judging.load_prompts(folder / "judge_prompts.jsonl")})

    def prompt_hash(self, judge: JudgeSpec, data: SuiteData) -> str:
        return judging.spec_prompt_hash(judge, data.extra["prompts"])

    def write_answers(self, out: Path, label: str, questions: Sequence[Question],
                      answers: Sequence[Sequence[Completion]]) -> None:
        rows = [{"question_id": q.row["question_id"], "answer_id": uuid.uuid4().hex, "model_id": label,
                 "choices": [{"index": 0, "turns": [c.text for c in a]}], "tstamp": time.time(),
                 "token_len": [c.completion_tokens for c in a]} for q, a in zip(questions, answers, strict=True)]
        write_jsonl(out / "model_answer" / f"{slug(label)}.jsonl", rows)

    def judge(self, run: JudgeRun, data: SuiteData, label: str, questions: Sequence[Question],
              answers: Sequence[Sequence[Completion]]) -> list[dict[str, Any]]:
        items = [{"question": q.row, "answers": [c.text for c in a], "reference": data.extra["references"].get(
                  q.row["question_id"])} for q, a in zip(questions, answers, strict=True)]
        return judging.judge(run.spec, data.extra["prompts"], items, label, run.backend, run.cache, run.concurrency,
                             run.endpoint)

    def write_judgments(self, out: Path, label: str, judge: JudgeSpec, judgments: Sequence[dict[str, Any]]) -> None:
        write_jsonl(out / "model_judgment" / f"{slug(judge.id.replace('/', '__'))}_single.jsonl", judgments)

    def score(self, header: Header, data: SuiteData, judgments: Sequence[dict[str, Any]],
              questions: Sequence[Question], answers: Sequence[Sequence[Completion]], seed: int) -> ResultRecord:
        return mt_record(header, judgments, total=2 * len(questions))

    def items(self, judgments: Sequence[dict[str, Any]], questions: Sequence[Question],
              answers: Sequence[Sequence[Completion]]) -> list[ItemRow]:
        texts = {str(q.row["question_id"]): list(q.turns) for q in questions}
        rows = {str(q.row["question_id"]): {"choices": [{"turns": [c.text for c in a]}],
                                            "token_len": [c.completion_tokens for c in a]}
                for q, a in zip(questions, answers, strict=True)}
        return mt_bench_items(judgments, texts, rows)

    def import_file(self, request: ImportRequest) -> tuple[ResultRecord, list[ItemRow]]:
        return import_judgments(request)


def mt_record(header: Header, judgments: Sequence[dict[str, Any]], total: int | None = None) -> ResultRecord:
    s = mt_bench_scores(judgments)
    total = len(judgments) if total is None else total
    scored = s.n_turn_1 + s.n_turn_2
    coverage = Coverage(total=total, scored=scored, failed=total - scored, available=2 * N_QUESTIONS)
    if s.average is None:
        return header.failed("mt_bench", coverage, "no rating could be read")
    metrics = {"average": Metric(value=s.average, n=scored)}
    if s.turn_1 is not None:
        metrics["turn_1"] = Metric(value=s.turn_1, n=s.n_turn_1)
    if s.turn_2 is not None:
        metrics["turn_2"] = Metric(value=s.turn_2, n=s.n_turn_2)
    notes = [f"{s.n_unparsed} judgments unparsable (score -1), excluded as FastChat does; record partial"] \
        if s.n_unparsed else []
    return header.record("mt_bench", judged_status(total, len(judgments), judgments, s.n_unparsed), metrics, coverage,
                         notes)


def mt_bench_items(judgments: Iterable[Mapping[str, Any]], questions: Mapping[str, Sequence[str]] | None = None,
                   answers: Mapping[str, Mapping[str, Any]] | None = None) -> list[ItemRow]:
    """FastChat single-grade judgments ({question_id, turn, score, judgment}) -> one row per (question, turn) with a
    rating; -1 (unparsable) and missing scores are left out, as FastChat's show_result leaves them out. `questions`:
    the two user turns by id; `answers`: FastChat model_answer rows by id (turn texts; `token_len` list if present)."""
    rows = []
    for j in judgments:
        score, turn, qid = number_or_none(j.get("score")), int(j["turn"]), str(j["question_id"])
        if score is None or score == -1:
            continue
        answer = (answers or {}).get(qid) or {}
        texts = answer.get("choices", [{}])[0].get("turns", [])
        lengths = answer.get("token_len") or []
        rows.append(ItemRow(item=qid, turn=turn, scores={"rating": score}, judgment=j.get("judgment"),
                            prompt=_at((questions or {}).get(qid), turn), answer=_at(texts, turn),
                            length=_at(lengths, turn)))
    return rows


def _at(seq: Sequence[Any] | None, turn: int) -> Any:
    return seq[turn - 1] if seq and len(seq) >= turn else None


# --------------------------------------------------------------------------------------------------------- import

class _Judgment(BaseModel):
    model_config = ConfigDict(extra="allow")
    question_id: str | int
    model: str
    score: float | None
    turn: int
    judge: list[str] | str | None = None


def import_judgments(request: ImportRequest) -> tuple[ResultRecord, list[ItemRow]]:
    """FastChat single-grade judgments (data/mt_bench/model_judgment/gpt-4_single.jsonl: question_id, model, judge
    [judge model, prompt name], score, turn) scored as FastChat `show_result.py` scores them."""
    path = request.path
    text = read_text(path, "MT-Bench judgment file")
    rows = rows_of_model(path, _parse(path, text), request.model)
    _check_ratings(path, rows)
    judges = sorted({str(r["judge"][0]) if isinstance(r.get("judge"), list) else str(r.get("judge")) for r in rows})
    prompts = sorted({str(r["judge"][1]) for r in rows if isinstance(r.get("judge"), list) and len(r["judge"]) > 1})
    official = judges == ["gpt-4"] and all(p.startswith("single-") for p in prompts)
    judge = JudgeInfo(id=judging.OFFICIAL.id if official else f"mt_bench/{'+'.join(judges)}", model="+".join(judges),
                      prompt_hash=prompt_hash(prompts), backend="import", official=official)
    dataset = DatasetProvenance(id="lm-sys/FastChat", source=str(path), sha256=hashlib.sha256(text.encode()).hexdigest())
    notes = [f"prompts: {', '.join(prompts)}; prompt_hash is of the prompt names (texts not in file)"]
    record = mt_record(request.header("import:mt-bench", judge, dataset, notes), rows)
    return record, mt_bench_items(rows)


def _check_ratings(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """FastChat's ratings are 1..10; -1 marks an unparsable verdict (excluded from the means, as upstream does);
    anything else (11, 1e308, Infinity) is no rating and is refused, not averaged."""
    for r in rows:
        score = r.get("score")
        if score is None or score == -1 or (isinstance(score, int | float) and 1 <= score <= 10):
            continue
        raise UserError(f"{path}: question {r['question_id']} turn {r['turn']}: score {score!r} is not a FastChat "
                        "rating (1..10, or -1 for an unparsable verdict); fix the file")


def _parse(path: Path, text: str) -> list[dict[str, Any]]:
    # Pairwise judgment files lack "score": they are refused here with the fields a single-grade row needs.
    rows = judgment_rows(path, text, {"question_id", "model", "score", "turn"}, "a FastChat single-grade judgment")
    for n, row in enumerate(rows, 1):
        try:
            parsed = _Judgment.model_validate(row)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(x) for x in err["loc"])
            raise UserError(f"{path}: row {n}: field {where}: {err['msg']}; not a FastChat single-grade judgment") \
                from None
        if parsed.turn not in (1, 2):
            raise UserError(f"{path}: row {n}: field turn: {parsed.turn} (MT-Bench has turns 1 and 2)")
    return rows
