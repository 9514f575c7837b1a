"""Arena-Hard v0.1 judging, as upstream `gen_judgment.py` (v0.1 era): the official and local judge specs, the
vendored judge config's system prompt and template (SOURCES.md), two games per question (game 1: baseline = A, game 2:
swapped), up to `number_of_judgment_attempts` calls per game with upstream's follow-up message, the v0.1 verdict regex.
Output rows are upstream model_judgment JSONL."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from functools import cache
from pathlib import Path
from typing import Any

from harness.backends.base import ChatBackend, ChatRequest, ChoiceRequest, ChoiceScorer, Message, SamplingParams
from harness.judges import JudgeSpec, prompt_hash
from harness.judges.calls import JudgeCache, Result, run_batched, run_choices
from harness.judges.pairwise import COMBINATION

CONFIG = Path(__file__).parent / "judge_config_v0.1.yaml"
FOLLOW_UP = "continue your judgment and finish by outputting a final verdict label"
# arena-hard-auto config/judge_config.yaml v0.1: regex_pattern.
ARENA_VERDICT = re.compile(r"\[\[([AB<>=]+)\]\]")
ARENA_LABELS = ("A>>B", "A>B", "A=B", "B>A", "B>>A")

OFFICIAL = JudgeSpec(
    id="arena_hard/v0.1-gpt-4-1106-preview", suite="arena_hard", official=True, model="gpt-4-1106-preview",
    version="v0.1", prompt="vendored arena-hard-auto@0489bf3 config/judge_config.yaml",
    parser=r"regex \[\[([AB<>=]+)\]\], 2 attempts", sampling=SamplingParams(temperature=0.0, max_new_tokens=4096),
    baseline="gpt-4-0314", description="Arena-Hard v0.1 official: two games with swapped positions, 5-way verdicts",
    extra={"number_of_judgment_attempts": 2},
)
LOCAL = JudgeSpec(
    id="arena_hard/local-choice", suite="arena_hard", official=False, model="local", version="2",
    prompt=OFFICIAL.prompt, parser="argmax over the five verdict labels (chain: A|B, then >>B|>B|=B or >A|>>A), both "
    f"games combined ({COMBINATION} of each label and its mirror; a tie between a label and its mirror = A=B)",
    sampling=SamplingParams(), baseline="gpt-4-0314", choices=("A", "B"),
    assistant_prefix="My final verdict is: [[",
    description="Arena-Hard v0.1 prompt on a local model, both games combined; verdict = most probable label "
                "(not comparable)",
)
MIRROR = {"A>>B": "B>>A", "A>B": "B>A", "A=B": "A=B", "B>A": "A>B", "B>>A": "A>>B"}
"""A verdict label seen from the other game (the two answers' positions swapped)."""


@cache
def judge_config() -> dict[str, Any]:
    import yaml

    config: dict[str, Any] = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    return config


def spec_prompt_hash(spec: JudgeSpec) -> str:
    c = judge_config()
    if spec.official:
        return prompt_hash(c["system_prompt"], c["prompt_template"], spec.assistant_prefix, list(spec.choices))
    # the local judge's verdict also depends on how its two games are combined
    return prompt_hash(c["system_prompt"], c["prompt_template"], spec.assistant_prefix, list(spec.choices),
                       COMBINATION)


def game_messages(question: str, answer_a: str, answer_b: str) -> tuple[Message, ...]:
    c = judge_config()
    conv: list[Message] = [{"role": "system", "content": c["system_prompt"]}]
    for template in c["prompt_template"]:
        conv.append({"role": "user", "content": template.format(question_1=question, answer_1=answer_a,
                                                               answer_2=answer_b)})
    return tuple(conv)


def judge(spec: JudgeSpec, items: Sequence[dict[str, Any]], model: str, backend: ChatBackend | ChoiceScorer,
          cache: JudgeCache, concurrency: int = 8, endpoint: str = "") -> list[dict[str, Any]]:
    """items: {question_id, question, answer (model), baseline_answer}. Returns upstream judgment rows
    {question_id, model, judge, games: [{user_prompt, judgment, score}, ...]} (score None = no verdict)."""
    games = []
    for it in items:
        games.append(game_messages(it["question"], it["baseline_answer"], it["answer"]))  # game 1: baseline is A
        games.append(game_messages(it["question"], it["answer"], it["baseline_answer"]))  # game 2: swapped
    if spec.official:
        assert isinstance(backend, ChatBackend)
        step = _official_step(spec, backend)
        results = run_batched(games, inputs=lambda g: [list(g), asdict(spec.sampling)], step=step, cache=cache,
                              concurrency=concurrency, endpoint=endpoint)
    else:
        assert isinstance(backend, ChoiceScorer)
        pre = spec.assistant_prefix
        reads = [(spec.choices, pre), ((">>B", ">B", "=B"), pre + "A"), ((">A", ">>A"), pre + "B")]
        per_read = []
        for choices, prefix in reads:
            requests = [ChoiceRequest(g, choices, prefix) for g in games]
            per_read.append(run_choices(backend, requests, [[list(g), list(choices), prefix] for g in games], cache))
        labels = [arena_chain_logprobs(*reads) for reads in zip(*per_read, strict=True)]
        results = []
        for i in range(len(items)):
            game_1, game_2 = labels[2 * i], labels[2 * i + 1]
            combined, verdict = arena_both_games(game_1, game_2)
            for own, frame, label in ((game_1, combined, verdict), (game_2, mirrored(combined),
                                                                     MIRROR[verdict] if verdict else None)):
                results.append({"judgment": f"local judge, {COMBINATION} of both games: {label}", "logprobs": own,
                                "combined_logprobs": frame, "score": label})
    rows = []
    for i, it in enumerate(items):
        row_games = []
        for g in (2 * i, 2 * i + 1):
            res = results[g]
            game = {"user_prompt": games[g][1]["content"], "judgment": res.get("judgment", ""),
                    "score": None if res.get("error") else res.get("score")}
            for key in ("logprobs", "combined_logprobs"):
                if res.get(key) is not None:
                    game[key] = res[key]
            if res.get("error"):
                game["error"] = res["error"]
            row_games.append(game)
        rows.append({"question_id": it["question_id"], "model": model, "judge": spec.model if spec.official
                     else spec.id, "games": row_games})
    return rows


def _official_step(spec: JudgeSpec, chat: ChatBackend) -> Any:
    """One batch of games for the official judge, as upstream asks: append each new judgment, re-parse the
    concatenation, and when no label was found ask again with FOLLOW_UP, up to `number_of_judgment_attempts` calls."""
    attempts = int(judge_config()["number_of_judgment_attempts"])

    def step(chunk: list[tuple[Message, ...]]) -> list[Result]:
        convs = [list(g) for g in chunk]
        res: list[Result] = [{"judgment": "", "score": None} for _ in chunk]
        active = list(range(len(chunk)))
        for attempt in range(attempts):
            done = chat.generate([ChatRequest(tuple(convs[i]), spec.sampling) for i in active])
            again = []
            for i, c in zip(active, done, strict=True):
                if c.error:
                    res[i]["error"] = c.error
                    continue
                res[i]["judgment"] += "\n" + c.text
                res[i]["score"], try_again = arena_verdict(res[i]["judgment"])
                convs[i].append({"role": "assistant", "content": c.text})
                if try_again and attempt + 1 < attempts:
                    convs[i].append({"role": "user", "content": FOLLOW_UP})
                    again.append(i)
            active = again
            if not active:
                break
        return res

    return step


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


def arena_both_games(game_1: Mapping[str, float], game_2: Mapping[str, float]) -> tuple[dict[str, float], str | None]:
    """The two games of a local judge combined in game 1's frame (baseline = A): each label's log-probability is the
    mean of game 1's and game 2's for its mirror (for A/B alone: the mean of the two orders' log-odds). Verdict: the
    most probable label; ties are broken the same way in both frames, so that swapping the two answers mirrors the
    verdict exactly: labels for both sides tied (a judge that follows only the position ties A>>B with B>>A) give
    A=B, labels for one side tied give the weaker one (A>B before A>>B)."""
    combined = {label: (game_1[label] + game_2[MIRROR[label]]) / 2 for label in ARENA_LABELS
                if label in game_1 and MIRROR[label] in game_2}
    scored = {k: v for k, v in combined.items() if not math.isnan(v)}
    if not scored:
        return combined, None
    best = max(scored.values())
    top = [k for k in ARENA_LABELS if scored.get(k) == best]
    if "A=B" in top or {k[0] for k in top} == {"A", "B"}:
        return combined, "A=B"
    return combined, min(top, key=len)  # the weaker of A>B / A>>B (or B>A / B>>A)


def mirrored(labels: Mapping[str, float]) -> dict[str, float]:
    """Label log-probabilities seen from the other game."""
    return {MIRROR[k]: v for k, v in labels.items()}


def arena_chain_logprobs(first: Mapping[str, float], after_a: Mapping[str, float],
                         after_b: Mapping[str, float]) -> dict[str, float]:
    """The five labels' log-probabilities from three next-token reads (chain rule), so each read has choices with
    distinct first tokens and costs one forward pass: "[[" -> A | B; "[[A" -> >>B | >B | =B; "[[B" -> >A | >>A."""
    return {
        "A>>B": first["A"] + after_a[">>B"], "A>B": first["A"] + after_a[">B"], "A=B": first["A"] + after_a["=B"],
        "B>A": first["B"] + after_b[">A"], "B>>A": first["B"] + after_b[">>A"],
    }
