"""Verdict parsers: pure functions from a judge's raw output to a verdict, or None / -1 when it cannot be read.

Official parsers follow upstream exactly (alpaca_eval's own `logprob_parser`; arena-hard v0.1 `get_score`; FastChat's
rating regexes). Local parsers turn choice log-probabilities into the same verdict scales.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Mapping, Sequence

# FastChat fastchat/llm_judge/common.py (0.2.36): one_score_pattern, one_score_pattern_backup. Copied (importing that
# module costs seconds and pulls the pre-1.0 openai client paths); tests assert they equal FastChat's own.
MT_RATING = re.compile(r"\[\[(\d+\.?\d*)\]\]")
MT_RATING_BACKUP = re.compile(r"\[(\d+\.?\d*)\]")
# arena-hard-auto config/judge_config.yaml v0.1: regex_pattern.
ARENA_VERDICT = re.compile(r"\[\[([AB<>=]+)\]\]")
ARENA_LABELS = ("A>>B", "A>B", "A=B", "B>A", "B>>A")


def alpaca_preference(top_logprobs: Sequence[Mapping[str, float]] | None) -> float | None:
    """AlpacaEval `weighted_alpaca_eval_gpt4_turbo`: 2 - P(m)/(P(m)+P(M)) over the first token's top logprobs, through
    alpaca_eval's own `logprob_parser`. None when neither m nor M is among them (alpaca_eval gives NaN)."""
    from harness.scoring.alpaca_eval import alpaca_eval_module

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


def arena_verdict(judgment: str) -> tuple[str | None, bool]:
    """arena-hard v0.1 `get_score(judgment, pattern, pairwise=True)`: (label, try_again).
    No match -> (None, True): ask again; several different labels -> (None, False): give up."""
    matches = [m for m in ARENA_VERDICT.findall(judgment) if m != ""]
    if len(set(matches)) == 0:
        return None, True
    if len(set(matches)) == 1:
        return matches[0].strip("\n"), False
    return None, False


def arena_local_verdict(logprobs: Mapping[str, float]) -> str | None:
    """Most probable of the five labels (ties broken by label order); None when no label is scored."""
    scored = [(logprobs[label], -i, label) for i, label in enumerate(ARENA_LABELS)
              if label in logprobs and not math.isnan(logprobs[label])]
    return max(scored)[2] if scored else None


def mt_rating(judgment: str) -> float:
    """FastChat single-grade rating: `[[x]]`, else `[x]`, via ast.literal_eval; -1 when unparsable."""
    match = MT_RATING.search(judgment) or MT_RATING_BACKUP.search(judgment)
    if not match:
        return -1
    try:
        value = ast.literal_eval(match.groups()[0])
    except (ValueError, SyntaxError):
        return -1
    return float(value)


def mt_local_rating(logprobs: Mapping[str, float]) -> tuple[float, int] | None:
    """(expected rating, argmax rating) over P(1..10) renormalised; None when no rating is scored."""
    pairs = [(int(k), v) for k, v in logprobs.items() if k.isdigit() and 1 <= int(k) <= 10 and not math.isnan(v)]
    if not pairs:
        return None
    top = max(v for _, v in pairs)
    weights = [(r, math.exp(v - top)) for r, v in pairs]
    total = sum(w for _, w in weights)
    expected = sum(r * w for r, w in weights) / total
    argmax = max(pairs, key=lambda p: (p[1], -p[0]))[0]
    return expected, argmax


def arena_chain_logprobs(first: Mapping[str, float], after_a: Mapping[str, float],
                         after_b: Mapping[str, float]) -> dict[str, float]:
    """The five labels' log-probabilities from three next-token reads (chain rule), so each read has choices with
    distinct first tokens and costs one forward pass: "[[" -> A | B; "[[A" -> >>B | >B | =B; "[[B" -> >A | >>A."""
    return {
        "A>>B": first["A"] + after_a[">>B"], "A>B": first["A"] + after_a[">B"], "A=B": first["A"] + after_a["=B"],
        "B>A": first["B"] + after_b[">A"], "B>>A": first["B"] + after_b[">>A"],
    }


def mt_chain_logprobs(digits: Mapping[str, float], after_one: Mapping[str, float]) -> dict[str, float]:
    """Ratings 1..10 from two reads: "[[" -> 1..9, and "[[1" -> "0]]" (10) | "]]" (1), since "1" and "10" share
    their first token."""
    out = {d: v for d, v in digits.items() if d != "1"}
    out["1"] = digits["1"] + after_one["]]"]
    out["10"] = digits["1"] + after_one["0]]"]
    return out
