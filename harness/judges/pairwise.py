"""A local LLM as a pairwise preference model: "A or B?" asked in both orders through a `ChoiceScorer`.

Used by SPPO to rank K sampled responses (harness.sppo.rank) and by best-of-n decoding to pick a sample
(harness.engines.generation). `L[i][j] = log P("A") - log P("B")` with response i shown as A; responses are reduced to
one score each as PairRM does, `s_i = mean_j (L[i][j] - L[j][i])`, so that `P(i > j) = sigma(s_i - s_j)`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from harness.backends.base import ChoiceRequest, ChoiceScorer

JUDGE_PROMPT = (
    "Which response follows the instruction better? Judge helpfulness, correctness and clarity; ignore the order "
    "in which they are shown.\n\n[Instruction]\n{instruction}\n\n[Response A]\n{a}\n\n[Response B]\n{b}\n\n"
    "Answer with one letter: A or B."
)


class Candidates(Protocol):
    """One prompt and the responses to rank (harness.sppo.sample.SampledPrompt is one)."""

    @property
    def prompt_id(self) -> str: ...

    @property
    def prompt(self) -> str: ...

    @property
    def responses(self) -> list[str]: ...


@dataclass(frozen=True)
class Ranked:
    prompt_id: str
    scores: list[float]
    logits: list[list[float]] | None = None
    """The all-pairs logit matrix for pairwise kinds that expose it (the local judge)."""


class PreferenceModel(Protocol):
    @property
    def fingerprint(self) -> str: ...

    def rank(self, rows: Sequence[Candidates], progress: Callable[[int], None] | None = None) -> list[Ranked]: ...


def scores_from_pairwise_logits(logits: Sequence[Sequence[float]]) -> list[float]:
    """PairRM's reduction of an all-pairs logit matrix: `s_i = mean_j (L[i][j] - L[j][i])`.

    `L[i][j]` is the logit that i beats j when i is shown first; the diagonal is never read."""
    k = len(logits)
    return [sum(logits[i][j] - logits[j][i] for j in range(k) if j != i) / k for i in range(k)]


class LocalJudge:
    """PreferenceModel on a ChoiceScorer: every ordered pair of responses is one "A or B?" question."""

    def __init__(self, scorer: ChoiceScorer, batch_size: int = 8) -> None:
        self.scorer = scorer
        self.batch_size = batch_size

    @property
    def fingerprint(self) -> str:
        return f"judge:{self.scorer.fingerprint}"

    def rank(self, rows: Sequence[Candidates], progress: Callable[[int], None] | None = None) -> list[Ranked]:
        out = []
        per_call = max(1, 4 * self.batch_size // 6)  # several prompts per scorer call, so its batches stay full
        for start in range(0, len(rows), per_call):
            chunk = rows[start : start + per_call]
            pairs = [list(itertools.permutations(range(len(r.responses)), 2)) for r in chunk]  # both orders
            requests = [
                ChoiceRequest(messages=({"role": "user", "content": JUDGE_PROMPT.format(
                    instruction=row.prompt, a=row.responses[i], b=row.responses[j])},), choices=("A", "B"))
                for row, row_pairs in zip(chunk, pairs, strict=True)
                for i, j in row_pairs
            ]
            answers = iter(self.scorer.choice_logprobs(requests))
            for row, row_pairs in zip(chunk, pairs, strict=True):
                k = len(row.responses)
                logits = [[0.0] * k for _ in range(k)]
                for i, j in row_pairs:
                    lp = next(answers)
                    logits[i][j] = lp["A"] - lp["B"]
                out.append(Ranked(row.prompt_id, scores_from_pairwise_logits(logits), logits))
            if progress:
                progress(len(chunk))
        return out
