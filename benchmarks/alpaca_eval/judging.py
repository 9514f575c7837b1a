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
from harness.judges.pairwise import COMBINATION, both_orders_probability

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
    id="alpaca_eval/local-choice", suite="alpaca_eval", official=False, model="local", version="2",
    prompt=OFFICIAL.prompt, parser=f"next-token P(m) vs P(M), {COMBINATION}", sampling=SamplingParams(),
    baseline="gpt4_1106_preview", choices=("m", "M"),
    description="AlpacaEval 2 prompt on a local model, asked in both orders; preference from the mean of the two "
                "orders' log-odds of P(m) vs P(M) (not comparable with official)",
)


def template_text() -> str:
    return (Path(alpaca_eval_module().__file__).parent / TEMPLATE).read_text(encoding="utf-8")


def spec_prompt_hash(spec: JudgeSpec) -> str:
    if spec.official:
        return prompt_hash(template_text(), spec.assistant_prefix, list(spec.choices))
    # the local judge's verdict also depends on how its two orders are combined
    return prompt_hash(template_text(), spec.assistant_prefix, list(spec.choices), COMBINATION)


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
    Returns alpaca_eval annotations (preference None where the verdict could not be read, with `error`).

    The official judge asks one order per row, alpaca_eval's seeded switch (upstream's rule). A local judge asks both
    orders and combines them by the mean of their log-odds (`annotate_local`)."""
    if not spec.official:
        assert isinstance(backend, ChoiceScorer)
        return annotate_local(spec, rows, backend, cache)
    tasks = []
    for row in rows:
        switched = is_switched(row["instruction"])
        o1, o2 = (row["output_2"], row["output_1"]) if switched else (row["output_1"], row["output_2"])
        tasks.append((judge_messages(row["instruction"], o1, o2), switched))
    assert isinstance(backend, ChatBackend)
    chat: ChatBackend = backend

    def step(chunk: list[tuple[tuple[Message, ...], bool]]) -> list[Result]:
        done = chat.generate([ChatRequest(t[0], spec.sampling) for t in chunk])
        return [{"error": c.error} if c.error else
                {"text": c.text, "top_logprobs": c.top_logprobs, "raw_preference": alpaca_preference(c.top_logprobs)}
                for c in done]

    results = run_batched(tasks, inputs=lambda t: [list(t[0]), asdict(spec.sampling)], step=step, cache=cache,
                          concurrency=concurrency, endpoint=endpoint)
    out = []
    for row, (_, switched), res in zip(rows, tasks, results, strict=True):
        pref = None if res.get("error") else unswitch_preference(res.get("raw_preference"), switched)
        raw = None if res.get("error") else res.get("raw_preference")
        out.append({
            **_row_fields(spec, row), "preference": pref, "is_switched_outputs": switched,
            "single_order": {"output_2_first" if switched else "output_1_first": raw},
            "raw_completion": {k: res.get(k) for k in ("text", "top_logprobs") if res.get(k) is not None},
            "error": res.get("error"), "unparsed": pref is None and not res.get("error"),
        })
    return out


def annotate_local(spec: JudgeSpec, rows: Sequence[dict[str, Any]], backend: ChoiceScorer,
                   cache: JudgeCache) -> list[dict[str, Any]]:
    """Both orders per row (output_1 first, then output_2 first), each call cached by its own content, combined by
    `local_both_orders`. `single_order` keeps what each order alone said (alpaca_eval's scale of the row: > 1.5 =
    output_2 preferred), for `judge calibrate`'s position figures."""
    orders = [(judge_messages(r["instruction"], r["output_1"], r["output_2"]),
               judge_messages(r["instruction"], r["output_2"], r["output_1"])) for r in rows]
    flat = [m for pair in orders for m in pair]
    requests = [ChoiceRequest(m, spec.choices, spec.assistant_prefix) for m in flat]
    scores = run_choices(backend, requests, [[list(m), list(spec.choices)] for m in flat], cache)
    out = []
    for n, row in enumerate(rows):
        first, second = scores[2 * n], scores[2 * n + 1]
        pref = local_both_orders(first, second)
        raw_second = alpaca_local_preference(second)
        out.append({
            **_row_fields(spec, row), "preference": pref, "is_switched_outputs": False, "combination": COMBINATION,
            "single_order": {"output_1_first": alpaca_local_preference(first),
                             "output_2_first": None if raw_second is None else 3.0 - raw_second},
            "raw_completion": {"logprobs_output_1_first": first, "logprobs_output_2_first": second},
            "error": None, "unparsed": pref is None,
        })
    return out


def local_both_orders(first: Mapping[str, float], second: Mapping[str, float]) -> float | None:
    """alpaca_eval's preference (1 = output_1 preferred, 2 = output_2) from a ChoiceScorer's {m, M} log-probabilities
    with output_1 shown first (`first`: m = output_1) and with output_2 shown first (`second`: m = output_2), by the
    mean of the two orders' log-odds: P(output_1 > output_2) = sigma(((lm - lM)_first - (lm - lM)_second) / 2).
    None when a log-probability is missing or NaN."""
    values = [first.get("m"), first.get("M"), second.get("m"), second.get("M")]
    if any(v is None or math.isnan(v) for v in values):
        return None
    lm1, lM1, lm2, lM2 = (float(v) for v in values)  # type: ignore[arg-type]
    return 2.0 - both_orders_probability(lm1 - lM1, lm2 - lM2)


def _row_fields(spec: JudgeSpec, row: Mapping[str, Any]) -> dict[str, Any]:
    return {"instruction": row["instruction"], "output_1": row["output_1"], "generator_1": row["generator_1"],
            "dataset": row.get("dataset"), "output_2": row["output_2"], "generator_2": row["generator_2"],
            "annotator": spec.id}


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
