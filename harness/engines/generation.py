"""Answering a judged suite's questions: every turn conditioned on the model's own earlier answers, and best-of-n
decoding (the seed card's "best-of-16" rows: n samples per prompt, the one a preference model ranks first is kept,
evaluated as its own row with record.variant = "best-of-N").

The preference model is a `harness.judges.pairwise.PreferenceModel` — by default its `LocalJudge`, a ChoiceScorer
asked "A or B?" in both orders with PairRM's reduction; PairRM or reward models plug in through the same protocol.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from harness.backends.base import ChatBackend, ChatRequest, Completion, Message, SamplingParams
from harness.judges.pairwise import PreferenceModel

SAMPLING = SamplingParams(temperature=0.7, top_p=0.9)
"""SPPO's sampling (DESIGN: temperature 0.7, top_p 0.9); each of the n samples gets its own seed."""


@dataclass(frozen=True)
class Question:
    """One item of a judged suite as the model sees it."""

    id: str
    """Stable item id (the same for every checkpoint)."""
    turns: tuple[str, ...]
    """User turns; turn t is asked after the model's own answers to turns < t (MT-Bench has two)."""
    temperature: float = 0.0
    row: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    """The upstream row the question came from (baseline output, category, references...)."""


@dataclass(frozen=True)
class BestOfN:
    completion: Completion
    index: int
    scores: list[float]
    candidates: list[str]


@dataclass(frozen=True)
class _Candidates:
    prompt_id: str
    prompt: str
    responses: list[str]


def variant_name(n: int) -> str:
    return f"best-of-{n}"


def n_from_variant(variant: str | None) -> int | None:
    """The N of a "best-of-N" variant label, else None."""
    m = re.fullmatch(r"best-of-(\d+)", variant or "")
    return int(m.group(1)) if m else None


def answer(backend: ChatBackend, questions: Sequence[Question], cap: int, seed: int,
           best_of: tuple[int, PreferenceModel] | None = None) -> list[list[Completion]]:
    """The answers to every turn of every question, in question order. Turns are generated round by round: round t
    asks every question's turn t after that question's own answers so far (a failed answer conditions as "")."""
    answers: list[list[Completion]] = [[] for _ in questions]
    rounds = max((len(q.turns) for q in questions), default=0)
    for t in range(rounds):
        active = [i for i, q in enumerate(questions) if t < len(q.turns)]
        conversations = [_conversation(questions[i], answers[i]) for i in active]
        params = [SamplingParams(temperature=questions[i].temperature, max_new_tokens=cap, seed=seed) for i in active]
        if best_of is None:
            done = backend.generate([ChatRequest(c, p) for c, p in zip(conversations, params, strict=True)])
        else:
            n, ranker = best_of
            done = [b.completion for b in best_of_n(backend, conversations, n, ranker,
                                                    params=replace(SAMPLING, max_new_tokens=cap), seed=seed)]
        for i, completion in zip(active, done, strict=True):
            answers[i].append(completion)
    return answers


def _conversation(question: Question, answered: Sequence[Completion]) -> tuple[Message, ...]:
    messages: list[Message] = []
    for turn, reply in zip(question.turns, answered, strict=False):
        messages += [{"role": "user", "content": turn}, {"role": "assistant", "content": reply.text}]
    return (*messages, {"role": "user", "content": question.turns[len(answered)]})


def best_of_n(backend: ChatBackend, conversations: Sequence[tuple[Message, ...]], n: int, ranker: PreferenceModel,
              params: SamplingParams = SAMPLING, seed: int = 0) -> list[BestOfN]:
    """For each conversation, n samples (seeds seed*n .. seed*n+n-1), ranked by `ranker`; the top-ranked sample is
    kept (first on ties). Failed samples are never chosen."""
    if n < 1:
        raise ValueError("best-of-n needs n >= 1")
    requests = [ChatRequest(conv, replace(params, seed=seed * n + k)) for conv in conversations for k in range(n)]
    completions = backend.generate(requests)
    out: list[BestOfN] = []
    for c_i, conv in enumerate(conversations):
        group = completions[c_i * n : (c_i + 1) * n]
        ok = [k for k, c in enumerate(group) if not c.error]
        if len(ok) <= 1:
            pick = ok[0] if ok else 0
            out.append(BestOfN(group[pick], pick, [0.0] if ok else [], [c.text for c in group]))
            continue
        prompt = "\n\n".join(m["content"] for m in conv if m["role"] == "user")
        row = _Candidates(prompt_id=str(c_i), prompt=prompt, responses=[group[k].text for k in ok])
        scores = list(ranker.rank([row])[0].scores)
        best = max(range(len(ok)), key=lambda i: (scores[i], -i))
        out.append(BestOfN(group[ok[best]], ok[best], scores, [c.text for c in group]))
    return out
