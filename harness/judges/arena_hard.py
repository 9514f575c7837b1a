"""Arena-Hard v0.1 judging, as upstream `gen_judgment.py` (v0.1 era): the vendored judge config's system prompt and
template, two games per question (game 1: baseline = A, game 2: swapped), up to `number_of_judgment_attempts` calls per
game with upstream's follow-up message, the v0.1 verdict regex. Output rows are upstream model_judgment JSONL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from functools import cache
from pathlib import Path
from typing import Any

from harness.backends.base import ChatBackend, ChatRequest, ChoiceRequest, ChoiceScorer, Message
from harness.judges import JudgeSpec, prompt_hash
from harness.judges.calls import JudgeCache, Result, run_batched, run_choices
from harness.judges.parsers import arena_chain_logprobs, arena_local_verdict, arena_verdict

CONFIG = Path(__file__).parent / "data" / "arena_hard_v0.1_judge_config.yaml"
FOLLOW_UP = "continue your judgment and finish by outputting a final verdict label"


@cache
def judge_config() -> dict[str, Any]:
    import yaml

    config: dict[str, Any] = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    return config


def spec_prompt_hash(spec: JudgeSpec) -> str:
    c = judge_config()
    return prompt_hash(c["system_prompt"], c["prompt_template"], spec.assistant_prefix, list(spec.choices))


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
        chat: ChatBackend = backend
        attempts = int(judge_config()["number_of_judgment_attempts"])

        def step(chunk: list[tuple[Message, ...]]) -> list[Result]:
            # upstream: append each new judgment, re-parse the concatenation, and when no label was found ask again
            # with FOLLOW_UP, up to `attempts` calls per game.
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
        results = []
        for first, after_a, after_b in zip(*per_read, strict=True):
            labels = arena_chain_logprobs(first, after_a, after_b)
            results.append({"judgment": "", "logprobs": labels, "score": arena_local_verdict(labels)})
    rows = []
    for i, it in enumerate(items):
        row_games = []
        for g in (2 * i, 2 * i + 1):
            res = results[g]
            game = {"user_prompt": games[g][1]["content"], "judgment": res.get("judgment", ""),
                    "score": None if res.get("error") else res.get("score")}
            if res.get("logprobs") is not None:
                game["logprobs"] = res["logprobs"]
            if res.get("error"):
                game["error"] = res["error"]
            row_games.append(game)
        rows.append({"question_id": it["question_id"], "model": model, "judge": spec.model if spec.official
                     else spec.id, "games": row_games})
    return rows
