"""AlpacaEval 2 judging: the official and local judge specs, and alpaca_eval's own prompt template, prompt builder,
ChatML parser, order randomisation rule and logprob parser; only the API call is ours (it goes through our backend,
cache and concurrency)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks.alpaca_eval.scoring import alpaca_eval_module
from harness.backends.base import ChatBackend, ChatRequest, ChoiceRequest, ChoiceScorer, Message, SamplingParams
from harness.judges import JudgeSpec, prompt_hash
from harness.judges.calls import JudgeCache, Result, run_batched, run_choices

TEMPLATE = "evaluators_configs/alpaca_eval_clf_gpt4_turbo/alpaca_eval_clf.txt"
SWITCH_SEED = 0

OFFICIAL = JudgeSpec(
    id="alpaca_eval/weighted_alpaca_eval_gpt4_turbo", suite="alpaca_eval", official=True,
    model="gpt-4-1106-preview", version="alpaca_eval-0.6.6",
    prompt="alpaca_eval package: evaluators_configs/alpaca_eval_clf_gpt4_turbo/alpaca_eval_clf.txt",
    parser="alpaca_eval logprob_parser(numerator m, denominator [m, M], is_binarize False)",
    sampling=SamplingParams(temperature=1.0, max_new_tokens=1, top_logprobs=5), baseline="gpt4_1106_preview",
    description="AlpacaEval 2 official: preference = 2 - P(m)/(P(m)+P(M)), baseline as output m, order randomised",
)
LOCAL = JudgeSpec(
    id="alpaca_eval/local-choice", suite="alpaca_eval", official=False, model="local", version="1",
    prompt=OFFICIAL.prompt, parser="next-token P(m) vs P(M)", sampling=SamplingParams(),
    baseline="gpt4_1106_preview", choices=("m", "M"),
    description="AlpacaEval 2 prompt on a local model; preference from P(m) vs P(M) (not comparable with official)",
)


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


def alpaca_preference(top_logprobs: Sequence[Mapping[str, float]] | None) -> float | None:
    """AlpacaEval `weighted_alpaca_eval_gpt4_turbo`: 2 - P(m)/(P(m)+P(M)) over the first token's top logprobs, through
    alpaca_eval's own `logprob_parser`. None when neither m nor M is among them (alpaca_eval gives NaN)."""
    logprob_parser = alpaca_eval_module("alpaca_eval.completion_parsers").logprob_parser

    if not top_logprobs:
        return None
    completion = {"logprobs": {"content": [
        {"top_logprobs": [{"token": t, "logprob": lp} for t, lp in top_logprobs[0].items()]}]}}
    value = logprob_parser(completion, numerator_token="m", denominator_tokens=["m", "M"], is_binarize=False,
                           log_prob_index=0)[0]
    return None if value is None or math.isnan(value) else float(value)


def alpaca_local_preference(logprobs: Mapping[str, float]) -> float | None:
    """Same scale from a ChoiceScorer's {m, M} log-probabilities."""
    lm, lM = logprobs.get("m"), logprobs.get("M")
    if lm is None or lM is None or math.isnan(lm) or math.isnan(lM):
        return None
    top = max(lm, lM)
    pm, pM = math.exp(lm - top), math.exp(lM - top)
    return 2.0 - pm / (pm + pM)


def unswitch_preference(preference: float | None, switched: bool) -> float | None:
    """alpaca_eval randomises output order per example and undoes it with 3 - preference."""
    if preference is None:
        return None
    return 3.0 - preference if switched else preference
