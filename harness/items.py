"""Per-item results, `RUN/samples/<model-slug>/<suite>/items.jsonl`: one `harness.records.ItemRow` per scored unit,
converted from what each upstream tool writes per item, written atomically and read back with validation.

Converters (pure functions of upstream rows):
- `lmeval_items`: lm-eval's per-sample dicts (`results["samples"]`, or the `samples_<task>.jsonl` files), leaf task kept
  as the subtask, only rows of the metric's filter (GSM8K logs one row per filter);
- `alpaca_items`: alpaca_eval annotations (preference per instruction, output length in characters);
- `arena_items`: arena-hard v0.1 model_judgment rows (the two games' verdicts; token length from model_answer rows);
- `mt_bench_items`: FastChat single-grade judgments (a rating per (question, turn)).
Items without a score (a failed judgment, an unparsable verdict) are left out: the record's coverage counts them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from harness.errors import UserError
from harness.io import atomic_write_text, read_text
from harness.records import ItemRow

ITEMS_FILE = "items.jsonl"
ARENA_LABELS = ("A>>B", "A>B", "A=B", "B>A", "B>>A")
ItemKey = tuple[str | None, str, int | None]


def item_key(row: ItemRow) -> ItemKey:
    """What pairs an item across checkpoints: (subtask, item id, turn)."""
    return (row.subtask, row.item, row.turn)


# ------------------------------------------------------------------------------------------------------------ lm-eval

def lmeval_items(samples: Mapping[str, Sequence[Mapping[str, Any]]], task: str, filter: str = "none") -> list[ItemRow]:
    """lm-eval per-sample dicts by leaf task -> rows. `task` is the suite's lm-eval task (a leaf equal to it is a
    one-task suite: subtask None); `filter` the suite's filter ("strict-match" for GSM8K). Every per-sample metric
    lm-eval logged is kept under its name; list-valued ones (IFEval's instruction-level results) become the fraction
    of True, and `inst_level_strict_n` the number of instructions (the same list length for strict and loose)."""
    rows = []
    for leaf, samples_of_leaf in samples.items():
        for sample in samples_of_leaf:
            if sample.get("filter", "none") != filter:
                continue
            rows.append(_lmeval_row(sample, None if leaf == task else leaf))
    return rows


def lmeval_items_from_dir(folder: Path, task: str, filter: str = "none") -> list[ItemRow]:
    """The same from the `samples_<leaf>.jsonl` files lm-eval's outputs left in `folder`."""
    files = sorted(Path(folder).glob("samples_*.jsonl"))
    if not files:
        raise UserError(f"{folder}: no lm-eval samples_*.jsonl; run the suite with per-sample logging")
    samples = {}
    for path in files:
        lines = read_text(path, "lm-eval samples file").split("\n")  # not splitlines(): texts may hold U+2028
        samples[path.stem.removeprefix("samples_")] = [json.loads(line) for line in lines if line.strip()]
    return lmeval_items(samples, task, filter)


def _lmeval_row(sample: Mapping[str, Any], subtask: str | None) -> ItemRow:
    scores: dict[str, float] = {}
    instructions = 0
    for name in sample.get("metrics", []):
        value = sample[name]
        if isinstance(value, list):
            scores[name] = sum(bool(v) for v in value) / len(value) if value else math.nan
            instructions = len(value)
        else:
            scores[name] = float(value)
    if instructions:
        scores["inst_level_strict_n"] = float(instructions)
    context, response = _lmeval_texts(sample)
    extracted = sample.get("filtered_resps")
    return ItemRow(item=str(sample["doc_id"]), subtask=subtask, scores=scores, prompt=context, answer=response,
                   target=None if sample.get("target") is None else str(sample["target"]),
                   extracted=extracted[0] if response is not None and extracted and isinstance(extracted[0], str)
                   else None)


def _lmeval_texts(sample: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(prompt of the first request, raw response for generative tasks). lm-eval 0.4 logs `arguments` as a list of
    argument tuples; later releases as {"gen_args_0": {"arg_0": ..., "arg_1": ...}}."""
    args = sample.get("arguments")
    first: Any = args[0] if isinstance(args, list) and args else next(iter(args.values()), None) if isinstance(args, dict) else None
    if isinstance(first, dict):
        first = list(first.values())
    context = first[0] if isinstance(first, list | tuple) and first and isinstance(first[0], str) else None
    resps = sample.get("resps")
    response = resps[0][0] if resps and isinstance(resps[0], list) and resps[0] and isinstance(resps[0][0], str) else None
    return context, response


# ------------------------------------------------------------------------------------------------------ judged suites

def alpaca_items(annotations: Sequence[Mapping[str, Any]], positions: Sequence[int]) -> list[ItemRow]:
    """alpaca_eval annotations -> rows; `positions[i]` is annotation i's index in the 805 AlpacaEval instructions.
    A preference of 0 is alpaca_eval's legacy draw (1.5); None, NaN or a value outside [1, 2] is no judgment (alpaca_eval
    drops those before scoring)."""
    if len(annotations) != len(positions):
        raise ValueError(f"{len(annotations)} annotations but {len(positions)} positions")
    rows = []
    for a, position in zip(annotations, positions, strict=True):
        preference = _number(a.get("preference"))
        preference = 1.5 if preference == 0 else preference
        if preference is None or not 1.0 <= preference <= 2.0:
            continue
        output = str(a.get("output_2") or "")
        rows.append(ItemRow(item=str(position), scores={"preference": preference, "length": float(len(output))},
                            judgment=_text(a.get("raw_completion")), prompt=a.get("instruction"), answer=output,
                            length=len(output)))
    return rows


def arena_items(judgments: Iterable[Mapping[str, Any]], questions: Mapping[str, str] | None = None,
                answers: Mapping[str, Mapping[str, Any]] | None = None) -> list[ItemRow]:
    """arena-hard v0.1 model_judgment rows ({question_id, games: [{judgment, score}, {judgment, score}]}) -> rows with
    the two verdicts (game 1: baseline is A; game 2: swapped; a missing or unparsable verdict is None). `questions`:
    question text by id; `answers`: upstream model_answer rows by id (their `token_len` is the length)."""
    rows = []
    for j in judgments:
        qid = str(j["question_id"])
        games = list(j["games"])[:2]
        verdicts = [g.get("score") if g.get("score") in ARENA_LABELS else None for g in games]
        if not any(verdicts):
            continue
        turn = ((answers or {}).get(qid) or {}).get("choices", [{}])[0].get("turns", [{}])[0]
        texts = [f"--- game {i} ---\n{g.get('judgment') or ''}" for i, g in enumerate(games, 1)]
        rows.append(ItemRow(item=qid, games=verdicts, judgment="\n".join(texts), prompt=(questions or {}).get(qid),
                            answer=turn.get("content"), length=turn.get("token_len")))
    return rows


def mt_bench_items(judgments: Iterable[Mapping[str, Any]], questions: Mapping[str, Sequence[str]] | None = None,
                   answers: Mapping[str, Mapping[str, Any]] | None = None) -> list[ItemRow]:
    """FastChat single-grade judgments ({question_id, turn, score, judgment}) -> one row per (question, turn) with a
    rating; -1 (unparsable) and missing scores are left out, as FastChat's show_result leaves them out. `questions`:
    the two user turns by id; `answers`: FastChat model_answer rows by id (turn texts; `token_len` list if present)."""
    rows = []
    for j in judgments:
        score, turn, qid = _number(j.get("score")), int(j["turn"]), str(j["question_id"])
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


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


# ---------------------------------------------------------------------------------------------------------------- I/O

def write_items(path: Path, rows: Iterable[ItemRow]) -> Path:
    """One JSON object per line (fields that are None left out), written atomically."""
    return atomic_write_text(Path(path), "".join(r.model_dump_json(exclude_none=True) + "\n" for r in rows))


_ROWS = TypeAdapter(list[ItemRow])


def read_items(path: Path) -> list[ItemRow]:
    """Rows of an items.jsonl; a malformed line or a repeated (subtask, item, turn) is a one-line error naming
    file:line:field."""
    lines = read_text(path, "items file").split("\n")
    numbered = [(n, line) for n, line in enumerate(lines, 1) if line.strip()]
    try:  # one validation pass for the whole file; line by line only to name a bad line
        rows = _ROWS.validate_json("[" + ",".join(line for _, line in numbered) + "]")
    except ValidationError:
        rows = []
    if len(rows) != len(numbered):  # a bad line, or one line holding two objects
        rows = [_row(path, n, line) for n, line in numbered]
    seen: dict[ItemKey, int] = {}
    for (n, _), row in zip(numbered, rows, strict=True):
        key = item_key(row)
        if key in seen:
            raise UserError(f"{path}:{n}: item {row.item!r} (subtask {row.subtask}, turn {row.turn}) repeats line "
                            f"{seen[key]}; delete the file and rerun the suite")
        seen[key] = n
    return rows


def _row(path: Path, n: int, line: str) -> ItemRow:
    try:
        return ItemRow.model_validate_json(line)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "line"
        raise UserError(f"{path}:{n}:{where}: {err['msg']}; delete the file and rerun the suite (or re-import it)") from None
