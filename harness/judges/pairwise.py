"""A local LLM as a pairwise preference model: "A or B?" asked in both orders through a `ChoiceScorer`.

Every local pairwise judgment in the harness (this judge, used by SPPO to rank K sampled responses (harness.sppo.rank),
by the SPPO objective and by best-of-n decoding; the local AlpacaEval and Arena-Hard judges) asks both orders and
combines them as the MEAN of the two orders' log-odds (`COMBINATION`): with `L_ab = log P(slot 1) - log P(slot 2)`
when a is shown first and `L_ba` when b is shown first, `P(a > b) = sigma((L_ab - L_ba) / 2)`. A judge that only
follows the slot (L_ab = L_ba) gives exactly 1/2, swapping the two outputs gives exactly 1 - P, and a judge that
says 0.55 in each order gives 0.55 (the sum of the two log-odds would say 0.599).

K responses are reduced to one score each as PairRM does, halved so that K = 2 is exactly that mean:
`s_i = mean_j (L[i][j] - L[j][i]) / 2` with `L[i][j]` the log-odds of response i shown as A over j shown as B, and
`P(i > j) = sigma(s_i - s_j)`.
"""

from __future__ import annotations

import itertools
import math
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


COMBINATION = "both orders, mean log-odds"
"""How every local pairwise judgment combines its two orders; named in the records it produces."""


def mean_log_odds(first: float, second: float) -> float:
    """The log-odds that a beats b from both orders: `first` = log P(slot 1) - log P(slot 2) with a in slot 1,
    `second` = the same with b in slot 1. Antisymmetric exactly: swapping the arguments negates the result."""
    return (first - second) / 2


def sigmoid(x: float) -> float:
    """sigma(x), written so that sigmoid(-x) == 1 - sigmoid(x) holds exactly in floating point (not just closely)."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    return 1.0 - 1.0 / (1.0 + math.exp(x))


def both_orders_probability(first: float, second: float) -> float:
    """P(a > b) = sigma((L_ab - L_ba) / 2); see `mean_log_odds`. Swapping a and b gives exactly 1 - P."""
    return sigmoid(mean_log_odds(first, second))


def scores_from_pairwise_logits(logits: Sequence[Sequence[float]]) -> list[float]:
    """PairRM's reduction of an all-pairs logit matrix, halved: `s_i = mean_j (L[i][j] - L[j][i]) / 2`.

    `L[i][j]` is the logit that i beats j when i is shown first; the diagonal is never read. For K = 2,
    `s_0 - s_1 = (L[0][1] - L[1][0]) / 2`: the mean of the two orders' log-odds (`COMBINATION`)."""
    k = len(logits)
    return [sum(mean_log_odds(logits[i][j], logits[j][i]) for j in range(k) if j != i) / k for i in range(k)]


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
