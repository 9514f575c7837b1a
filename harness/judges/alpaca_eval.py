"""AlpacaEval 2 judging: alpaca_eval's own prompt template, prompt builder, ChatML parser, order randomisation rule and
logprob parser; only the API call is ours (it goes through our backend, cache and concurrency)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness.backends.base import ChatBackend, ChatRequest, ChoiceRequest, ChoiceScorer, Message
from harness.judges import JudgeSpec, prompt_hash
from harness.judges.calls import JudgeCache, Result, run_batched, run_choices
from harness.judges.parsers import alpaca_local_preference, alpaca_preference, unswitch_preference
from harness.scoring.alpaca_eval import alpaca_eval_module

TEMPLATE = "evaluators_configs/alpaca_eval_clf_gpt4_turbo/alpaca_eval_clf.txt"
SWITCH_SEED = 0


def template_text() -> str:
    return (Path(alpaca_eval_module().__file__).parent / TEMPLATE).read_text(encoding="utf-8")


def spec_prompt_hash(spec: JudgeSpec) -> str:
    return prompt_hash(template_text(), spec.assistant_prefix, list(spec.choices))


def is_switched(instruction: str, seed: int = SWITCH_SEED) -> bool:
    """alpaca_eval's RandomSwitchTwoColumnsProcessor rule (seeded on the instruction, column name as salt)."""
    utils = alpaca_eval_module("alpaca_eval.utils")
    return bool(utils.random_seeded_choice(seed="is_switched_outputs" + instruction + str(seed), choices=[False, True]))


def judge_messages(instruction: str, output_1: str, output_2: str) -> tuple[Message, ...]:
    import pandas as pd
    utils = alpaca_eval_module("alpaca_eval.utils")
    frame = pd.DataFrame([{"instruction": instruction, "output_1": output_1, "output_2": output_2}])
    prompt = utils.make_prompts(frame, template_text())[0][0]
    return tuple({"role": m["role"], "content": m["content"]} for m in utils.prompt_to_chatml(prompt))


def annotate(spec: JudgeSpec, rows: Sequence[dict[str, Any]], backend: ChatBackend | ChoiceScorer,
             cache: JudgeCache, concurrency: int = 8, endpoint: str = "") -> list[dict[str, Any]]:
    """rows: {instruction, output_1 (baseline), output_2 (model), generator_1, generator_2, dataset}.
    Returns alpaca_eval annotations (preference None where the verdict could not be read, with `error`)."""
    tasks = []
    for row in rows:
        switched = is_switched(row["instruction"])
        o1, o2 = (row["output_2"], row["output_1"]) if switched else (row["output_1"], row["output_2"])
        tasks.append((judge_messages(row["instruction"], o1, o2), switched))
    if spec.official:
        assert isinstance(backend, ChatBackend)
        chat: ChatBackend = backend

        def step(chunk: list[tuple[tuple[Message, ...], bool]]) -> list[Result]:
            done = chat.generate([ChatRequest(t[0], spec.sampling) for t in chunk])
            return [{"error": c.error} if c.error else
                    {"text": c.text, "top_logprobs": c.top_logprobs, "raw_preference": alpaca_preference(c.top_logprobs)}
                    for c in done]

        results = run_batched(tasks, inputs=lambda t: [list(t[0]), asdict(spec.sampling)], step=step, cache=cache,
                              concurrency=concurrency, endpoint=endpoint)
    else:
        assert isinstance(backend, ChoiceScorer)
        requests = [ChoiceRequest(t[0], spec.choices, spec.assistant_prefix) for t in tasks]
        scores = run_choices(backend, requests, [[list(t[0]), list(spec.choices)] for t in tasks], cache)
        results = [{"logprobs": s, "raw_preference": alpaca_local_preference(s), "error": None} for s in scores]
    out = []
    for row, (_, switched), res in zip(rows, tasks, results, strict=True):
        pref = None if res.get("error") else unswitch_preference(res.get("raw_preference"), switched)
        out.append({
            "instruction": row["instruction"], "output_1": row["output_1"], "generator_1": row["generator_1"],
            "dataset": row.get("dataset"), "output_2": row["output_2"], "generator_2": row["generator_2"],
            "annotator": spec.id, "preference": pref, "is_switched_outputs": switched,
            "raw_completion": {k: res.get(k) for k in ("text", "top_logprobs", "logprobs") if res.get(k) is not None},
            "error": res.get("error"), "unparsed": pref is None and not res.get("error"),
        })
    return out
