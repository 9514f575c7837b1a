"""MT-Bench single-grade judging, as FastChat `llm_judge` `run_judge_single` does it: the `single-v1` /
`single-math-v1` prompts (`-multi-turn` for turn 2) from the data's judge_prompts.jsonl, reference answers for
math/reasoning/coding, system prompt + user prompt, temperature 0, rating regex with fallback, -1 = unparsable.
FastChat's own call uses the pre-1.0 openai API, so the call is ours; prompts and rules are FastChat's."""

from __future__ import annotations

import ast
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness.backends.base import ChatBackend, ChatRequest, ChoiceRequest, ChoiceScorer, Message, SamplingParams
from harness.errors import UserError
from harness.io import read_jsonl
from harness.judges import JudgeSpec, prompt_hash
from harness.judges.calls import JudgeCache, Result, run_batched, run_choices

# FastChat fastchat/llm_judge/common.py (0.2.36): one_score_pattern, one_score_pattern_backup. Copied (importing that
# module costs seconds and pulls the pre-1.0 openai client paths); tests assert they equal FastChat's own.
MT_RATING = re.compile(r"\[\[(\d+\.?\d*)\]\]")
MT_RATING_BACKUP = re.compile(r"\[(\d+\.?\d*)\]")

OFFICIAL = JudgeSpec(
    id="mt_bench/gpt-4-single", suite="mt_bench", official=True, model="gpt-4", version="fastchat-0e6d3e4",
    prompt="FastChat judge_prompts.jsonl single-v1 / single-math-v1 (+ -multi-turn)",
    parser=r"FastChat \[\[(\d+\.?\d*)\]\] then \[(\d+\.?\d*)\]; -1 = unparsable",
    sampling=SamplingParams(temperature=0.0, max_new_tokens=2048), baseline=None,
    description="MT-Bench official: single-grade 1-10, reference-guided for math/reasoning/coding",
)
LOCAL = JudgeSpec(
    id="mt_bench/local-choice", suite="mt_bench", official=False, model="local", version="1", prompt=OFFICIAL.prompt,
    parser="expected rating over P(1..10) (argmax recorded); chain: 1..9, then 0]] | ]] after 1",
    sampling=SamplingParams(), baseline=None, choices=tuple(str(i) for i in range(1, 10)), assistant_prefix="Rating: [[",
    description="MT-Bench prompts on a local model; rating = expectation over 1-10 (not comparable)",
)

# FastChat fastchat/llm_judge/common.py NEED_REF_CATS (tests assert equality with FastChat's own).
NEED_REF_CATS = ("math", "reasoning", "coding", "arena-hard-200")
PROMPT_NAMES = ("single-v1", "single-math-v1", "single-v1-multi-turn", "single-math-v1-multi-turn")


def load_prompts(path: Path) -> dict[str, dict[str, Any]]:
    if not path.is_file():
        raise UserError(f"{path}: MT-Bench judge prompts missing; run `sppo-bench data pull --suites mt_bench`")
    prompts = {str(p.get("name")): p for p in read_jsonl(path, "MT-Bench judge prompts")}
    missing = [n for n in PROMPT_NAMES if n not in prompts]
    if missing:
        raise UserError(f"{path}: lacks judge prompts {missing}; re-pull the MT-Bench data")
    return prompts


def spec_prompt_hash(spec: JudgeSpec, prompts: Mapping[str, Mapping[str, Any]]) -> str:
    used = [[prompts[n]["system_prompt"], prompts[n]["prompt_template"]] for n in PROMPT_NAMES]
    return prompt_hash(used, spec.assistant_prefix, list(spec.choices))


def prompt_name(category: str, turn: int) -> str:
    base = "single-math-v1" if category in NEED_REF_CATS else "single-v1"
    return base + ("-multi-turn" if turn == 2 else "")


def judge_messages(prompts: Mapping[str, Mapping[str, Any]], question: Mapping[str, Any], answers: Sequence[str],
                   turn: int, reference: Sequence[str] | None) -> tuple[str, tuple[Message, ...]]:
    name = prompt_name(question["category"], turn)
    p = prompts[name]
    kwargs: dict[str, str] = {}
    if question["category"] in NEED_REF_CATS:
        if not reference:
            raise UserError(f"MT-Bench question {question['question_id']} ({question['category']}) needs a reference "
                            "answer; the data's reference_answer/gpt-4.jsonl lacks it, re-pull the MT-Bench data")
        kwargs["ref_answer_1"] = reference[0]
        if turn == 2:
            kwargs["ref_answer_2"] = reference[1]
    if turn == 2:
        user = p["prompt_template"].format(question_1=question["turns"][0], question_2=question["turns"][1],
                                           answer_1=answers[0], answer_2=answers[1], **kwargs)
    else:
        user = p["prompt_template"].format(question=question["turns"][0], answer=answers[0], **kwargs)
    return name, ({"role": "system", "content": p["system_prompt"]}, {"role": "user", "content": user})


def judge(spec: JudgeSpec, prompts: Mapping[str, Mapping[str, Any]], items: Sequence[dict[str, Any]], model: str,
          backend: ChatBackend | ChoiceScorer, cache: JudgeCache, concurrency: int = 8,
          endpoint: str = "") -> list[dict[str, Any]]:
    """items: {question (FastChat question row), answers [turn1, turn2], reference [ref1, ref2] | None}.
    Returns FastChat single-grade judgment rows, one per (question, turn)."""
    tasks = []
    for it in items:
        for turn in (1, 2):
            name, messages = judge_messages(prompts, it["question"], it["answers"], turn, it.get("reference"))
            tasks.append((it["question"]["question_id"], turn, name, messages))
    if spec.official:
        assert isinstance(backend, ChatBackend)
        chat: ChatBackend = backend

        def step(chunk: list[tuple[Any, int, str, tuple[Message, ...]]]) -> list[Result]:
            done = chat.generate([ChatRequest(t[3], spec.sampling) for t in chunk])
            return [{"error": c.error} if c.error else {"judgment": c.text, "score": mt_rating(c.text)} for c in done]

        results = run_batched(tasks, inputs=lambda t: [list(t[3]), asdict(spec.sampling)], step=step, cache=cache,
                              concurrency=concurrency, endpoint=endpoint)
    else:
        assert isinstance(backend, ChoiceScorer)
        pre = spec.assistant_prefix
        per_read = []
        for choices, prefix in ((spec.choices, pre), (("0]]", "]]"), pre + "1")):
            requests = [ChoiceRequest(t[3], choices, prefix) for t in tasks]
            per_read.append(run_choices(backend, requests, [[list(t[3]), list(choices), prefix] for t in tasks], cache))
        scores = [mt_chain_logprobs(a, b) for a, b in zip(*per_read, strict=True)]
        results = []
        for s in scores:
            rated = mt_local_rating(s)
            results.append({"judgment": "", "logprobs": s, "score": rated[0] if rated else -1,
                            "argmax": rated[1] if rated else None})
    rows = []
    for (qid, turn, name, messages), res in zip(tasks, results, strict=True):
        row = {"question_id": qid, "model": model, "judge": [spec.model if spec.official else spec.id, name],
               "user_prompt": messages[1]["content"], "judgment": res.get("judgment", ""),
               "score": None if res.get("error") else res.get("score"), "turn": turn, "tstamp": time.time()}
        for k in ("logprobs", "argmax", "error"):
            if res.get(k) is not None:
                row[k] = res[k]
        rows.append(row)
    return rows


def mt_rating(judgment: str) -> float:
    """FastChat single-grade rating: `[[x]]`, else `[x]`, via ast.literal_eval; -1 when unparsable."""
    match = MT_RATING.search(judgment) or MT_RATING_BACKUP.search(judgment)
    if not match:
        return -1
    try:
        value = ast.literal_eval(match.groups()[0])
    except (ValueError, SyntaxError):
        return -1
    return float(value)


def mt_local_rating(logprobs: Mapping[str, float]) -> tuple[float, int] | None:
    """(expected rating, argmax rating) over P(1..10) renormalised; None when no rating is scored."""
    pairs = [(int(k), v) for k, v in logprobs.items() if k.isdigit() and 1 <= int(k) <= 10 and not math.isnan(v)]
    if not pairs:
        return None
    top = max(v for _, v in pairs)
    weights = [(r, math.exp(v - top)) for r, v in pairs]
    total = sum(w for _, w in weights)
    expected = sum(r * w for r, w in weights) / total
    argmax = max(pairs, key=lambda p: (p[1], -p[0]))[0]
    return expected, argmax


def mt_chain_logprobs(digits: Mapping[str, float], after_one: Mapping[str, float]) -> dict[str, float]:
    """Ratings 1..10 from two reads: "[[" -> 1..9, and "[[1" -> "0]]" (10) | "]]" (1), since "1" and "10" share
    their first token."""
    out = {d: v for d, v in digits.items() if d != "1"}
    out["1"] = digits["1"] + after_one["]]"]
    out["10"] = digits["1"] + after_one["0]]"]
    return out
