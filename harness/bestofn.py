"""Best-of-n decoding (the seed card's "best-of-16" rows): sample n responses per prompt, keep the one a preference
model ranks first, and evaluate the kept answers as their own row (record.variant = "best-of-N").

The preference model is the SPPO module's (`harness.sppo.rank`): by default its `LocalJudge`, a ChoiceScorer asked
"A or B?" in both orders with PairRM's reduction `s_i = mean_j (L[i][j] - L[j][i])`; PairRM / reward models plug in
through the same `PreferenceModel` protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from harness.backends.base import ChatBackend, ChatRequest, Completion, Message, SamplingParams

if TYPE_CHECKING:
    from harness.sppo.rank import PreferenceModel

SAMPLING = SamplingParams(temperature=0.7, top_p=0.9)
"""SPPO's sampling (DESIGN: temperature 0.7, top_p 0.9); each of the n samples gets its own seed."""


def variant_name(n: int) -> str:
    return f"best-of-{n}"


def n_from_variant(variant: str | None) -> int | None:
    """The N of a "best-of-N" variant label, else None."""
    import re

    m = re.fullmatch(r"best-of-(\d+)", variant or "")
    return int(m.group(1)) if m else None


@dataclass(frozen=True)
class BestOfN:
    completion: Completion
    index: int
    scores: list[float]
    candidates: list[str]


def best_of_n(backend: ChatBackend, conversations: Sequence[tuple[Message, ...]], n: int, ranker: PreferenceModel,
              params: SamplingParams = SAMPLING, seed: int = 0) -> list[BestOfN]:
    """For each conversation, n samples (seeds seed*n .. seed*n+n-1), ranked by `ranker` (a PreferenceModel from
    harness.sppo.rank); the top-ranked sample is kept (first on ties). Failed samples are never chosen."""
    from harness.sppo.sample import SampledPrompt

    if n < 1:
        raise ValueError("best-of-n needs n >= 1")
    requests = [ChatRequest(conv, replace(params, seed=seed * n + k)) for conv in conversations for k in range(n)]
    completions = backend.generate(requests)
    out: list[BestOfN] = []
    for c_i, conv in enumerate(conversations):
        group = completions[c_i * n : (c_i + 1) * n]
        ok = [k for k, c in enumerate(group) if not c.error]
        if not ok:
            out.append(BestOfN(group[0], 0, [], [c.text for c in group]))
            continue
        if len(ok) == 1:
            out.append(BestOfN(group[ok[0]], ok[0], [0.0], [c.text for c in group]))
            continue
        prompt = "\n\n".join(m["content"] for m in conv if m["role"] == "user")
        row = SampledPrompt(prompt_id=str(c_i), prompt=prompt, responses=[group[k].text for k in ok],
                            seeds=[requests[c_i * n + k].params.seed for k in ok],
                            finish_reasons=[group[k].finish_reason for k in ok])
        scores = list(ranker.rank([row])[0].scores)
        best = max(range(len(ok)), key=lambda i: (scores[i], -i))
        out.append(BestOfN(group[ok[best]], ok[best], scores, [c.text for c in group]))
    return out
