"""Open LLM Leaderboard normalization, as pure functions on lm-eval's raw scores (fractions in 0..1).

The leaderboard (v2) rescales every score so that random guessing is 0 and a perfect score is 100:
`norm(x, lo) = 0 if x < lo else (x - lo) / (1 - lo) * 100`, with `lo = 1 / num_choices` (0 for generative tasks).
BBH and MuSR normalize each subtask with its own `lo` and average the normalized subtasks; GPQA and MMLU-Pro
normalize the group score once; IFEval averages instruction- and prompt-level strict accuracy. v1 scores are raw ×100.
No maintained library exposes these formulas (the leaderboard's own parser lives in its Space), hence this module.
Which rule a suite follows is declared on its spec (`harness.specs.LeaderboardRule`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping


def norm(value: float, lower_bound: float) -> float:
    """The leaderboard's normalization of a fraction `value` (0..1) to 0..100 above the random baseline."""
    if not 0.0 <= lower_bound < 1.0:
        raise ValueError(f"lower bound {lower_bound} must be in [0, 1)")
    if value < lower_bound:
        return 0.0
    return (value - lower_bound) / (1.0 - lower_bound) * 100.0


def norm_stderr(stderr: float, lower_bound: float) -> float:
    """Standard error carried through the linear part of `norm` (the clip at the baseline is ignored)."""
    return stderr / (1.0 - lower_bound) * 100.0


def normalize_subtasks(values: Mapping[str, float], choices: Mapping[str, int]) -> dict[str, float]:
    """Each subtask normalized with lo = 1/num_choices; raises KeyError naming a subtask without a choice count."""
    unknown = sorted(set(values) - set(choices))
    if unknown:
        raise KeyError(f"no choice count for subtasks {unknown}")
    return {name: norm(v, 1.0 / choices[name]) for name, v in values.items()}


def subtask_mean(values: Mapping[str, float], choices: Mapping[str, int]) -> float:
    """BBH / MuSR: the plain (unweighted) mean of the per-subtask normalized scores."""
    normalized = normalize_subtasks(values, choices)
    if not normalized:
        raise ValueError("no subtask scores to average")
    return sum(normalized.values()) / len(normalized)


def subtask_mean_stderr(stderrs: Mapping[str, float], choices: Mapping[str, int]) -> float:
    """Stderr of the plain mean of independent normalized subtasks (linear part of `norm`, clips ignored)."""
    parts = [norm_stderr(se, 1.0 / choices[name]) ** 2 for name, se in stderrs.items()]
    return math.sqrt(sum(parts)) / len(parts)


def ifeval_score(inst_level_strict_acc: float, prompt_level_strict_acc: float) -> float:
    """IFEval on the leaderboard: the mean of instruction- and prompt-level strict accuracy, ×100."""
    return (inst_level_strict_acc + prompt_level_strict_acc) / 2.0 * 100.0


def raw(value: float) -> float:
    """v1 leaderboard and generative v2 scores: the fraction ×100 (same as norm(value, 0))."""
    return value * 100.0


def average(values: Iterable[float]) -> float:
    """The leaderboard's Avg.: a plain mean of the suites' card values."""
    vals = list(values)
    if not vals:
        raise ValueError("no scores to average")
    return sum(vals) / len(vals)
