"""Converters for the Open LLM Leaderboard suites: upstream files in, the hub dataset's layout out. Pure.

Each output is `<config>/<split>.jsonl` (or `.csv` for GPQA, which the hub serves as CSV and `datasets` reads with its
csv builder) with the hub's columns in the hub's order and the upstream row order: lm-eval hashes every document it
logs (`doc_hash` = sha256 of the document as JSON), so a column order or a type that differs would show there.
tests/test_open_llm_offline.py checks the first documents of every subtask against hashes lm-eval logged on the hub's
own datasets (../shared/data/published).
"""

from __future__ import annotations

import ast
import csv
import io
import json
import zipfile
from typing import Any

from harness.data.convert import Files, read_jsonl, write_jsonl
from harness.errors import UserError

MATH_CONFIGS = {
    "Algebra": "algebra", "Counting & Probability": "counting_and_probability", "Geometry": "geometry",
    "Intermediate Algebra": "intermediate_algebra", "Number Theory": "number_theory", "Prealgebra": "prealgebra",
    "Precalculus": "precalculus",
}
"""MATH `type` -> config of DigitalLearningGmbH/MATH-lighteval (the configs lm-eval's leaderboard_math_* read)."""

GPQA_CONFIGS = ("gpqa_main", "gpqa_diamond", "gpqa_extended")
MUSR_SPLITS = {"murder_mystery.json": "murder_mysteries", "object_placements.json": "object_placements",
               "team_allocation.json": "team_allocation"}


def bbh(files: Files, origin: str) -> Files:
    """BIG-Bench-Hard `bbh/<task>.json` ({canary, examples}) -> `<task>/test.jsonl` with columns input, target."""
    out: Files = {}
    for name, data in files.items():
        examples = _json(data, f"{origin}: {name}").get("examples") if name.endswith(".json") else None
        if not isinstance(examples, list) or not examples:
            raise UserError(f"{origin}: {name} has no `examples` list; not a BIG-Bench-Hard task file")
        rows = [{"input": e["input"], "target": e["target"]} for e in _dicts(examples, ("input", "target"), origin)]
        out[f"{name.removesuffix('.json')}/test.jsonl"] = write_jsonl(rows)
    return out


def gpqa(files: Files, origin: str) -> Files:
    """The authors' encrypted dataset.zip -> `gpqa_<x>/train.csv`, the CSV bytes unchanged (the hub serves these
    files and `datasets` reads them with its csv builder). Nothing of the content is ever put in a message."""
    from harness.data.open_llm import GPQA_PASSWORD

    try:
        with zipfile.ZipFile(io.BytesIO(files["dataset.zip"])) as zf:
            out = {f"{c}/train.csv": zf.read(f"dataset/{c}.csv", pwd=GPQA_PASSWORD) for c in GPQA_CONFIGS}
    except (zipfile.BadZipFile, KeyError, RuntimeError) as exc:
        raise UserError(f"{origin}: dataset.zip is not the GPQA archive ({exc.__class__.__name__}); "
                        "expected dataset/gpqa_{main,diamond,extended}.csv inside") from None
    for name, data in out.items():
        header = next(csv.reader(io.StringIO(data.decode("utf-8", errors="replace"))), [])
        if not {"Question", "Correct Answer", "Incorrect Answer 1"} <= set(header):
            raise UserError(f"{origin}: {name} lacks the GPQA columns (Question, Correct Answer, ...)")
    return out


def math(files: Files, origin: str) -> Files:
    """MATH test.jsonl (all 5000, with `idx`) -> `<config>/test.jsonl` by `type`, columns problem, level, solution,
    type (the hub's order), file order kept. lm-eval's leaderboard_math_*_hard keep Level 5 themselves."""
    rows = read_jsonl(files["test.jsonl"], f"{origin}: MATH test.jsonl")
    by_config: dict[str, list[dict[str, Any]]] = {c: [] for c in MATH_CONFIGS.values()}
    for row in _dicts(rows, ("problem", "level", "type", "solution"), origin):
        if row["type"] not in MATH_CONFIGS:
            raise UserError(f"{origin}: MATH type {row['type']!r} is not one of the 7 subjects")
        by_config[MATH_CONFIGS[row["type"]]].append({k: row[k] for k in ("problem", "level", "solution", "type")})
    return {f"{c}/test.jsonl": write_jsonl(r) for c, r in by_config.items()}


def gsm8k(files: Files, origin: str) -> Files:
    """grade-school-math test/train.jsonl -> `main/<split>.jsonl` (columns question, answer, as they are)."""
    out: Files = {}
    for split in ("test", "train"):
        rows = _dicts(read_jsonl(files[f"{split}.jsonl"], f"{origin}: GSM8K {split}"), ("question", "answer"), origin)
        out[f"main/{split}.jsonl"] = write_jsonl({"question": r["question"], "answer": r["answer"]} for r in rows)
    return out


def truthfulqa(files: Files, origin: str) -> Files:
    """TruthfulQA mc_task.json -> `multiple_choice/validation.jsonl`, as the hub's loading script builds it: question,
    mc1_targets and mc2_targets each {choices: the answers, labels: their 0/1}."""
    rows = _json(files["mc_task.json"], f"{origin}: mc_task.json")
    if not isinstance(rows, list):
        raise UserError(f"{origin}: mc_task.json is not a list; not TruthfulQA's mc_task.json")

    def targets(d: dict[str, int]) -> dict[str, list[Any]]:
        return {"choices": list(d.keys()), "labels": list(d.values())}

    out = [{"question": r["question"], "mc1_targets": targets(r["mc1_targets"]), "mc2_targets": targets(r["mc2_targets"])}
           for r in _dicts(rows, ("question", "mc1_targets", "mc2_targets"), origin)]
    return {"multiple_choice/validation.jsonl": write_jsonl(out)}


def musr(files: Files, origin: str) -> Files:
    """MuSR `datasets/<domain>.json` (stories with questions) -> `<split>.jsonl`, one row per question: narrative
    (the story's context), question, choices (the Python-repr string lm-eval `literal_eval`s), answer_index,
    answer_choice."""
    out: Files = {}
    for name, data in files.items():
        split = MUSR_SPLITS.get(name.rsplit("/", 1)[-1].removeprefix("small_"))
        stories = _json(data, f"{origin}: {name}")
        if split is None or not isinstance(stories, list):
            raise UserError(f"{origin}: {name} is not a MuSR datasets/*.json file (a list of stories)")
        rows = []
        for story in _dicts(stories, ("context", "questions"), origin):
            for q in _dicts(story["questions"], ("question", "choices", "answer"), origin):
                choices = q["choices"] if isinstance(q["choices"], list) else ast.literal_eval(q["choices"])
                answer = int(q["answer"])
                rows.append({"narrative": story["context"], "question": q["question"], "choices": str(choices),
                             "answer_index": answer, "answer_choice": choices[answer]})
        out[f"{split}.jsonl"] = write_jsonl(rows)
    return out


def mmlu_pro(files: Files, origin: str) -> Files:
    """TIGER-Lab/MMLU-Pro parquet (or JSON/JSONL rows) -> `<split>.jsonl` with the hub's columns in order."""
    cols = ("question_id", "question", "options", "answer", "answer_index", "cot_content", "category", "src")
    out: Files = {}
    for name, data in files.items():
        split = name.rsplit("/", 1)[-1].split(".")[0].split("-")[0]
        rows = _table_rows(name, data, origin)
        out[f"{split}.jsonl"] = write_jsonl({c: r[c] for c in cols} for r in _dicts(rows, cols, origin))
    return out


def hellaswag(files: Files, origin: str) -> Files:
    """rowanz/hellaswag `hellaswag_{train,val}.jsonl` -> `<split>.jsonl` in Rowan/hellaswag's columns (label a string)."""
    cols = ("ind", "activity_label", "ctx_a", "ctx_b", "ctx", "endings", "source_id", "split", "split_type", "label")
    out: Files = {}
    for name, split in (("train.jsonl", "train"), ("validation.jsonl", "validation")):
        if name in files:
            rows = _dicts(read_jsonl(files[name], f"{origin}: HellaSwag {split}"), cols, origin)
            out[f"{split}.jsonl"] = write_jsonl({**{c: r[c] for c in cols}, "label": str(r["label"])} for r in rows)
    return out


def arc(files: Files, origin: str) -> Files:
    """AI2 ARC `ARC-Challenge-{Train,Dev,Test}.jsonl` -> `ARC-Challenge/<split>.jsonl` in allenai/ai2_arc's columns:
    id, question (the stem), choices {text, label}, answerKey."""
    out: Files = {}
    for name, data in files.items():
        split = name.removesuffix(".jsonl")
        rows = _dicts(read_jsonl(data, f"{origin}: ARC {split}"), ("id", "question", "answerKey"), origin)
        out[f"ARC-Challenge/{split}.jsonl"] = write_jsonl(
            {"id": r["id"], "question": r["question"]["stem"],
             "choices": {"text": [c["text"] for c in r["question"]["choices"]],
                         "label": [c["label"] for c in r["question"]["choices"]]},
             "answerKey": r["answerKey"]} for r in rows)
    return out


def winogrande(files: Files, origin: str) -> Files:
    """allenai/winogrande `train_xl.jsonl` / `dev.jsonl` -> `winogrande_xl/<split>.jsonl`: sentence, option1, option2,
    answer (the hub's columns; `qID` dropped)."""
    cols = ("sentence", "option1", "option2", "answer")
    out: Files = {}
    for name, data in files.items():
        split = name.removesuffix(".jsonl")
        rows = _dicts(read_jsonl(data, f"{origin}: Winogrande {split}"), cols, origin)
        out[f"winogrande_xl/{split}.jsonl"] = write_jsonl({c: str(r[c]) for c in cols} for r in rows)
    return out


CONVERTERS = {"hellaswag": hellaswag, "arc": arc, "winogrande": winogrande, "bbh": bbh, "gpqa": gpqa, "math": math, "gsm8k": gsm8k, "truthfulqa": truthfulqa, "musr": musr,
              "mmlu_pro": mmlu_pro}


def csv_rows(data: bytes) -> int:
    """Data rows of a CSV file (quoted newlines inside a field do not count), as the csv builder reads it."""
    return max(sum(1 for _ in csv.reader(io.StringIO(data.decode("utf-8")))) - 1, 0)


def _table_rows(name: str, data: bytes, origin: str) -> list[Any]:
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        try:
            return list(pq.read_table(io.BytesIO(data)).to_pylist())
        except Exception as exc:  # pyarrow raises several types for a corrupt file
            raise UserError(f"{origin}: {name} is not a parquet file ({exc.__class__.__name__})") from None
    if name.endswith(".jsonl"):
        return read_jsonl(data, f"{origin}: {name}")
    parsed = _json(data, f"{origin}: {name}")
    return parsed if isinstance(parsed, list) else []


def _json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{what}: not JSON ({exc.__class__.__name__}); the file is corrupt") from None


def _dicts(rows: Any, keys: tuple[str, ...], origin: str) -> list[dict[str, Any]]:
    if not isinstance(rows, list) or not rows:
        raise UserError(f"{origin}: no rows; the source file is empty or not a list")
    for i, row in enumerate(rows, 1):
        missing = [k for k in keys if not isinstance(row, dict) or k not in row]
        if missing:
            raise UserError(f"{origin}: row {i} lacks {', '.join(missing)}; not the expected upstream format")
    return rows
