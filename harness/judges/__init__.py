"""Judges as named, versioned specs: model, prompt template, parser, sampling, baseline.

Each judged suite (benchmarks/<suite>) declares an official judge (over the `openai` backend, the upstream
configuration) and a local judge (on a ChoiceScorer backend, e.g. `hf`, reading the verdict from next-token
probabilities, so it never fails to parse; a pairwise local judge asks both orders and combines them by the mean of
their log-odds, harness.judges.pairwise.COMBINATION) and registers them here.
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
_SUITE_JUDGES: dict[str, tuple[JudgeSpec, JudgeSpec]] = {}
"""suite -> (official, local), filled when a judged suite registers (benchmarks/<suite>)."""


def register_suite_judges(suite: str, official: JudgeSpec, local: JudgeSpec) -> None:
    for spec in (official, local):
        if spec.suite != suite:
            raise ValueError(f"judge {spec.id!r} is for {spec.suite}, registered for {suite}")
        JUDGES.add(spec.id, spec)
    _SUITE_JUDGES[suite] = (official, local)


def choose_judge(suite: str, choice: str | None, api_key_env: str = "OPENAI_API_KEY",
                 environ: Mapping[str, str] | None = None) -> JudgeSpec:
    """`choice`: None (official if the key variable is set, else local), "official", "local", or a judge id."""
    if suite not in _SUITE_JUDGES:
        raise UserError(f"suite {suite!r} has no judge; judged suites: {', '.join(_SUITE_JUDGES)}")
    official, local = _SUITE_JUDGES[suite]
    if choice is None:
        choice = resolve_choice(api_key_env, environ)
    if choice == "official":
        return official
    if choice == "local":
        return local
    spec = JUDGES.get(choice)
    if spec.suite != suite:
        raise UserError(f"judge {choice!r} is for {spec.suite}, not {suite}; use official, local or a {suite}/ judge")
    return spec


def resolve_choice(api_key_env: str = "OPENAI_API_KEY", environ: Mapping[str, str] | None = None) -> str:
    """The default judge kind here and now: official when its API key is set, else local."""
    env = os.environ if environ is None else environ
    return "official" if env.get(api_key_env) else "local"


def prompt_hash(*parts: object) -> str:
    """sha256 (first 16 hex) of the prompt material a judge sends: templates, system prompt, prefix, choices."""
    text = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
