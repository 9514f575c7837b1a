"""Arena-Hard v0.1 as a judged suite: the 500 questions and gpt-4-0314 baseline answers, arena-hard-auto's file
formats (`model_answer/<model>.jsonl` with token_len, `model_judgment/<judge>/<model>.jsonl`), the record (upstream
`show_result.py`'s Bradley-Terry score and bootstrap CI), per-question item rows (both games), and the import of a
published model_judgment file."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from benchmarks.arena_hard import judging
from benchmarks.arena_hard.scoring import DEFAULT_SEED, LABELS, arena_hard_score, avg_tokens
from harness.backends.base import Completion
from harness.engines.generation import Question
from harness.engines.judged import (
    Header,
    ImportRequest,
    JudgeRun,
    SuiteData,
    judged_status,
    judgment_rows,
    rows_of_model,
)
from harness.errors import UserError
from harness.io import read_jsonl, read_text, slug, write_jsonl
from harness.judges import JUDGES, JudgeSpec
from harness.judges.pairwise import COMBINATION
from harness.records import Coverage, DatasetProvenance, ItemRow, JudgeInfo, Metric, ResultRecord

BASELINE = "gpt-4-0314"
N_QUESTIONS = 500


class ArenaHard:
    name = "arena_hard"
    import_kind = "arena-hard"
    judges = (judging.OFFICIAL, judging.LOCAL)
    max_new_tokens = 4096
    """arena-hard gen_answer_config max_tokens."""

    def load(self, folder: Path) -> SuiteData:
        data = arena_dir(folder)
        rows = read_jsonl(data / "question.jsonl", "Arena-Hard questions")
        questions = [Question(str(r["question_id"]), (r["turns"][0]["content"],), row=r) for r in rows]
        return SuiteData(data, questions)

    def prompt_hash(self, judge: JudgeSpec, data: SuiteData) -> str:
        return judging.spec_prompt_hash(judge)

    def write_answers(self, out: Path, label: str, questions: Sequence[Question],
                      answers: Sequence[Sequence[Completion]]) -> None:
        rows = [{"question_id": q.row["question_id"], "answer_id": uuid.uuid4().hex, "model_id": label,
                 "choices": [{"index": 0, "turns": [{"content": c.text, "token_len": c.completion_tokens} for c in a]}],
                 "tstamp": time.time()} for q, a in zip(questions, answers, strict=True)]
        write_jsonl(out / "model_answer" / f"{slug(label)}.jsonl", rows)

    def judge(self, run: JudgeRun, data: SuiteData, label: str, questions: Sequence[Question],
              answers: Sequence[Sequence[Completion]]) -> list[dict[str, Any]]:
        baseline = load_baseline(data.folder, run.spec.baseline or BASELINE, [q.row["question_id"] for q in questions])
        items = [{"question_id": q.row["question_id"], "question": q.turns[0], "answer": a[0].text,
                  "baseline_answer": baseline[q.row["question_id"]]} for q, a in zip(questions, answers, strict=True)]
        return judging.judge(run.spec, items, label, run.backend, run.cache, run.concurrency, run.endpoint)

    def write_judgments(self, out: Path, label: str, judge: JudgeSpec, judgments: Sequence[dict[str, Any]]) -> None:
        write_jsonl(out / "model_judgment" / slug(judge.id.replace("/", "__")) / f"{slug(label)}.jsonl", judgments)

    def score(self, header: Header, data: SuiteData, judgments: Sequence[dict[str, Any]],
              questions: Sequence[Question], answers: Sequence[Sequence[Completion]], seed: int) -> ResultRecord:
        token_lens = [a[0].completion_tokens for a in answers]
        baseline = JUDGES.get(header.judge.id).baseline or BASELINE
        return arena_record(header, judgments, token_lens, baseline=baseline, total_questions=len(questions), seed=seed)

    def items(self, judgments: Sequence[dict[str, Any]], questions: Sequence[Question],
              answers: Sequence[Sequence[Completion]]) -> list[ItemRow]:
        texts = {str(q.row["question_id"]): q.turns[0] for q in questions}
        rows = {str(q.row["question_id"]): {"choices": [{"turns": [{"content": a[0].text, "token_len": a[0].completion_tokens}]}]}
                for q, a in zip(questions, answers, strict=True)}
        return arena_items(judgments, texts, rows)

    def import_file(self, request: ImportRequest) -> tuple[ResultRecord, list[ItemRow]]:
        return import_judgments(request)


def arena_record(header: Header, judgments: Sequence[dict[str, Any]], token_lens: Sequence[int] | None,
                 baseline: str = BASELINE, total_questions: int | None = None, seed: int = 0) -> ResultRecord:
    """Score v0.1 model_judgment rows. `seed` offsets upstream's bootstrap seed 42 (0 = upstream's draws)."""
    if header.model == baseline:
        raise UserError(f"--model {header.model!r} is the baseline itself; give the evaluated model's name")
    total_games = 2 * (total_questions if total_questions is not None else len(judgments))
    scored = sum(1 for j in judgments for g in j["games"][:2] if g.get("score") in LABELS)
    coverage = Coverage(total=total_games, scored=scored, failed=total_games - scored, available=2 * N_QUESTIONS)
    if not scored:
        return header.failed("arena_hard", coverage, "no game verdict could be read: nothing to score")
    s = arena_hard_score(judgments, model=header.model, baseline=baseline, seed=DEFAULT_SEED + seed)
    metrics = {"score": Metric(value=s.score, ci_low=s.ci_low, ci_high=s.ci_high, n=len(judgments))}
    notes = [f"Bradley-Terry on {s.n_battles} battles from {s.n_games} games vs {baseline}; 100 bootstrap rounds"]
    if token_lens:
        metrics["avg_tokens"] = Metric(value=float(avg_tokens(list(token_lens))), n=len(token_lens))
    else:
        notes.append("avg tokens unavailable: no model_answer file with token_len beside the judgments")
    games = [g for j in judgments for g in j["games"][:2]]
    if s.n_unparsed:
        notes.append(f"{s.n_unparsed} games without a verdict after the upstream retries: no battle, record partial")
    if any("combined_logprobs" in g for g in games):
        notes.append(f"local judge: both games combined ({COMBINATION} of each verdict label and its mirror)")
    unparsed = sum(1 for g in games if g.get("score") not in LABELS and not g.get("error"))
    return header.record("arena_hard", judged_status(total_games, len(games), games, unparsed), metrics, coverage,
                         notes)


def arena_items(judgments: Iterable[Mapping[str, Any]], questions: Mapping[str, str] | None = None,
                answers: Mapping[str, Mapping[str, Any]] | None = None) -> list[ItemRow]:
    """arena-hard v0.1 model_judgment rows ({question_id, games: [{judgment, score}, {judgment, score}]}) -> rows with
    the two verdicts (game 1: baseline is A; game 2: swapped; a missing or unparsable verdict is None). `questions`:
    question text by id; `answers`: upstream model_answer rows by id (their `token_len` is the length)."""
    rows = []
    for j in judgments:
        qid = str(j["question_id"])
        games = list(j["games"])[:2]
        verdicts = [g.get("score") if g.get("score") in LABELS else None for g in games]
        if not any(verdicts):
            continue
        turn = ((answers or {}).get(qid) or {}).get("choices", [{}])[0].get("turns", [{}])[0]
        texts = [f"--- game {i} ---\n{g.get('judgment') or ''}" for i, g in enumerate(games, 1)]
        rows.append(ItemRow(item=qid, games=verdicts, judgment="\n".join(texts), prompt=(questions or {}).get(qid),
                            answer=turn.get("content"), length=turn.get("token_len")))
    return rows


def arena_dir(root: Path) -> Path:
    """The v0.1 folder: <data>/arena_hard/v0.1 (data pull layout) or a mirror holding question.jsonl directly."""
    for cand in (root / "v0.1", root):
        if (cand / "question.jsonl").is_file():
            return cand
    raise UserError(f"{root}: no Arena-Hard v0.1 question.jsonl; run `sppo-bench data pull --suites arena_hard`")


def load_baseline(data: Path, baseline: str, question_ids: Sequence[str]) -> dict[str, str]:
    path = data / "model_answer" / f"{baseline}.jsonl"
    if not path.is_file():
        raise UserError(f"{path}: baseline answers of {baseline} missing; run `sppo-bench data pull --suites arena_hard`")
    answers = {r["question_id"]: r["choices"][0]["turns"][0]["content"] for r in read_jsonl(path, "baseline answers")}
    missing = [q for q in question_ids if q not in answers]
    if missing:
        raise UserError(f"{path}: no baseline answer for {len(missing)} questions (e.g. {missing[:3]}); re-pull the data")
    return answers


# --------------------------------------------------------------------------------------------------------- import

class _Game(BaseModel):
    model_config = ConfigDict(extra="allow")
    score: str | None = None
    judgment: str | None = None


class _Judgment(BaseModel):
    model_config = ConfigDict(extra="allow")
    question_id: str | int
    model: str
    games: list[_Game]


def import_judgments(request: ImportRequest) -> tuple[ResultRecord, list[ItemRow]]:
    """An arena-hard-auto v0.1 model_judgment file (data/arena-hard-v0.1/model_judgment/<judge>/<model>.jsonl);
    average tokens come from the sibling model_answer/<model>.jsonl when it is there."""
    path = request.path
    text = read_text(path, "arena-hard judgment file")
    rows = rows_of_model(path, _parse(path, text), request.model)
    generator = str(rows[0]["model"])
    judges = sorted({str(r.get("judge")) for r in rows})
    answers, token_lens, answers_note = _sibling_answers(path, generator)
    dataset = DatasetProvenance(id="lmarena/arena-hard-auto", source=str(path),
                                sha256=hashlib.sha256(text.encode()).hexdigest())
    header = request.header("import:arena-hard", _judge_info(judges), dataset, [answers_note] if answers_note else [])
    record = arena_record(header, rows, token_lens, baseline=request.baseline or BASELINE)
    return record, arena_items(rows, None, answers)


def _parse(path: Path, text: str) -> list[dict[str, Any]]:
    rows = judgment_rows(path, text, {"question_id", "model", "games"}, "an arena-hard v0.1 model_judgment")
    for n, row in enumerate(rows, 1):
        try:
            _Judgment.model_validate(row)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(x) for x in err["loc"])
            raise UserError(f"{path}: row {n}: field {where}: {err['msg']}; not an arena-hard v0.1 judgment") from None
        if len(row["games"]) != 2:
            raise UserError(f"{path}: row {n}: {len(row['games'])} games; v0.1 judges each question twice (baseline "
                            "as A, then swapped)")
    return rows


def _sibling_answers(path: Path, generator: str) -> tuple[dict[str, Any], list[int] | None, str | None]:
    """The model's upstream model_answer rows beside the judgments (data/<bench>/model_answer/<model>.jsonl for
    data/<bench>/model_judgment/<judge>/<model>.jsonl), their token lengths, and a note when the lengths are missing."""
    answers = path.parent.parent.parent / "model_answer" / f"{generator}.jsonl"
    if not answers.is_file():
        return {}, None, None
    rows = read_jsonl(answers, "arena-hard answers")
    turns = [row["choices"][0]["turns"][0] for row in rows]
    by_id = {str(row["question_id"]): row for row in rows}
    if any("token_len" not in t for t in turns):
        return by_id, None, f"{answers}: answers lack token_len; avg tokens unavailable"
    return by_id, [int(t["token_len"]) for t in turns], None


def _judge_info(judges: list[str]) -> JudgeInfo:
    spec = judging.OFFICIAL
    if judges == [spec.model]:
        return JudgeInfo(id=spec.id, model=spec.model, prompt_hash=judging.spec_prompt_hash(spec), backend="import",
                         official=True)
    return JudgeInfo(id=f"arena_hard/{'+'.join(judges)}", model="+".join(judges), prompt_hash="unknown",
                     backend="import", official=False)
