"""Judges as named, versioned specs: model, prompt template, parser, sampling, baseline.

Each judged suite has an official judge (over the `openai` backend, the upstream configuration) and a local judge (on a
ChoiceScorer backend, e.g. `hf`, reading the verdict from next-token probabilities, so it never fails to parse).
The judge id and the hash of the prompt it used go into every record's `JudgeInfo`; local-judge numbers are marked
`official=False` and are not comparable with the official judge's.

Choosing: `--judge official|local|<judge id>`; None = official when the judge's API key variable is set, else local.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from harness.backends.base import SamplingParams
from harness.errors import UserError
from harness.registry import Registry


@dataclass(frozen=True)
class JudgeSpec:
    id: str
    suite: str
    official: bool
    model: str
    """The judge model (official) or "local" (the judge backend's model, the embedded default unless given)."""
    version: str
    prompt: str
    """Where the prompt template comes from (package file or data file, with version/commit)."""
    parser: str
    sampling: SamplingParams
    baseline: str | None
    description: str
    choices: tuple[str, ...] = ()
    """Local judges: the verdict tokens whose probabilities are read."""
    assistant_prefix: str = ""
    """Local judges: the text the assistant turn starts with before the verdict token."""
    extra: Mapping[str, object] = field(default_factory=dict)


JUDGES: Registry[JudgeSpec] = Registry("judge")

ALPACA_OFFICIAL = JUDGES.add("alpaca_eval/weighted_alpaca_eval_gpt4_turbo", JudgeSpec(
    id="alpaca_eval/weighted_alpaca_eval_gpt4_turbo", suite="alpaca_eval", official=True,
    model="gpt-4-1106-preview", version="alpaca_eval-0.6.6",
    prompt="alpaca_eval package: evaluators_configs/alpaca_eval_clf_gpt4_turbo/alpaca_eval_clf.txt",
    parser="alpaca_eval logprob_parser(numerator m, denominator [m, M], is_binarize False)",
    sampling=SamplingParams(temperature=1.0, max_new_tokens=1, top_logprobs=5), baseline="gpt4_1106_preview",
    description="AlpacaEval 2 official: preference = 2 - P(m)/(P(m)+P(M)), baseline as output m, order randomised",
))
ALPACA_LOCAL = JUDGES.add("alpaca_eval/local-choice", JudgeSpec(
    id="alpaca_eval/local-choice", suite="alpaca_eval", official=False, model="local", version="1",
    prompt=ALPACA_OFFICIAL.prompt, parser="next-token P(m) vs P(M)", sampling=SamplingParams(),
    baseline="gpt4_1106_preview", choices=("m", "M"),
    description="AlpacaEval 2 prompt on a local model; preference from P(m) vs P(M) (not comparable with official)",
))
ARENA_OFFICIAL = JUDGES.add("arena_hard/v0.1-gpt-4-1106-preview", JudgeSpec(
    id="arena_hard/v0.1-gpt-4-1106-preview", suite="arena_hard", official=True, model="gpt-4-1106-preview",
    version="v0.1", prompt="vendored arena-hard-auto@0489bf3 config/judge_config.yaml",
    parser=r"regex \[\[([AB<>=]+)\]\], 2 attempts", sampling=SamplingParams(temperature=0.0, max_new_tokens=4096),
    baseline="gpt-4-0314", description="Arena-Hard v0.1 official: two games with swapped positions, 5-way verdicts",
    extra={"number_of_judgment_attempts": 2},
))
ARENA_LOCAL = JUDGES.add("arena_hard/local-choice", JudgeSpec(
    id="arena_hard/local-choice", suite="arena_hard", official=False, model="local", version="1",
    prompt=ARENA_OFFICIAL.prompt, parser="argmax over the five verdict labels (chain: A|B, then >>B|>B|=B or >A|>>A)",
    sampling=SamplingParams(), baseline="gpt-4-0314", choices=("A", "B"),
    assistant_prefix="My final verdict is: [[",
    description="Arena-Hard v0.1 prompt on a local model; verdict = most probable label (not comparable)",
))
MT_OFFICIAL = JUDGES.add("mt_bench/gpt-4-single", JudgeSpec(
    id="mt_bench/gpt-4-single", suite="mt_bench", official=True, model="gpt-4", version="fastchat-0e6d3e4",
    prompt="FastChat judge_prompts.jsonl single-v1 / single-math-v1 (+ -multi-turn)",
    parser=r"FastChat \[\[(\d+\.?\d*)\]\] then \[(\d+\.?\d*)\]; -1 = unparsable",
    sampling=SamplingParams(temperature=0.0, max_new_tokens=2048), baseline=None,
    description="MT-Bench official: single-grade 1-10, reference-guided for math/reasoning/coding",
))
MT_LOCAL = JUDGES.add("mt_bench/local-choice", JudgeSpec(
    id="mt_bench/local-choice", suite="mt_bench", official=False, model="local", version="1", prompt=MT_OFFICIAL.prompt,
    parser="expected rating over P(1..10) (argmax recorded); chain: 1..9, then 0]] | ]] after 1",
    sampling=SamplingParams(), baseline=None, choices=tuple(str(i) for i in range(1, 10)), assistant_prefix="Rating: [[",
    description="MT-Bench prompts on a local model; rating = expectation over 1-10 (not comparable)",
))

_DEFAULTS = {
    "alpaca_eval": (ALPACA_OFFICIAL, ALPACA_LOCAL),
    "arena_hard": (ARENA_OFFICIAL, ARENA_LOCAL),
    "mt_bench": (MT_OFFICIAL, MT_LOCAL),
}


def choose_judge(suite: str, choice: str | None, api_key_env: str = "OPENAI_API_KEY",
                 environ: Mapping[str, str] | None = None) -> JudgeSpec:
    """`choice`: None (official if the key variable is set, else local), "official", "local", or a judge id."""
    if suite not in _DEFAULTS:
        raise UserError(f"suite {suite!r} has no judge; judged suites: {', '.join(_DEFAULTS)}")
    official, local = _DEFAULTS[suite]
    env = os.environ if environ is None else environ
    if choice is None:
        return official if env.get(api_key_env) else local
    if choice == "official":
        return official
    if choice == "local":
        return local
    spec = JUDGES.get(choice)
    if spec.suite != suite:
        raise UserError(f"judge {choice!r} is for {spec.suite}, not {suite}; use official, local or a {suite}/ judge")
    return spec


def prompt_hash(*parts: object) -> str:
    """sha256 (first 16 hex) of the prompt material a judge sends: templates, system prompt, prefix, choices."""
    text = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
