"""The hf backend's prefix-reuse choice scoring gives the plain path's probabilities (to 1e-4) on real tiny checkpoints,
for judge prompts in both orders, across calls (one call per judged checkpoint), with single- and multi-token choices."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from harness.backends.base import BackendOptions, ChoiceRequest
from harness.backends.hf import HFBackend
from harness.errors import UserError
from harness.models import tiny_model

FIXED = ("You are a helpful assistant that compares two answers to an instruction and says which one is better. "
         "Judge helpfulness, accuracy and clarity; ignore the order in which the answers appear and their length.")
INSTRUCTIONS = ["Write a short poem about the sea.", "What is 2 + 2?", "Explain the difference between a list and a "
                "tuple in Python.", "Translate 'good morning' into French."]
REFERENCE = ["The sea is wide, the sea is deep; its waves are blue and never sleep.", "2 + 2 = 4.",
             "A list can change after it is made; a tuple cannot, so a tuple can be a dictionary key.",
             "Bonjour."]
ANSWERS = {  # what two checkpoints answered
    "base": ["The sea.", "The answer is 4.", "A list is a list.", "bonjour"],
    "iter1": ["Blue waves over the quick brown fox.", "4", "Lists change; tuples do not.", "Good morning: bonjour!"],
}


@pytest.fixture(scope="module", params=[0, 1], ids=["tiny-seed0", "tiny-seed1"])
def tiny(request, tmp_path_factory) -> Path:
    return tiny_model(tmp_path_factory.mktemp(f"tiny{request.param}") / "model", seed=request.param)


def _judge_requests(answers: list[str], choices: tuple[str, ...]) -> list[ChoiceRequest]:
    out = []
    for instruction, reference, answer in zip(INSTRUCTIONS, REFERENCE, answers, strict=True):
        for first, second in ((reference, answer), (answer, reference)):  # both orders
            prompt = f"{FIXED}\n\n# Instruction\n{instruction}\n\n# Answer (a)\n{first}\n\n# Answer (b)\n{second}\n\nBetter:"
            out.append(ChoiceRequest(({"role": "user", "content": prompt},), choices, assistant_prefix="Answer ("))
    return out


def _probabilities(scores: list[dict[str, float]]) -> list[dict[str, float]]:
    return [{c: math.exp(v) for c, v in s.items()} for s in scores]


@pytest.mark.parametrize("choices", [("a", "b"), ("1", "10", "2")], ids=["first-token", "multi-token"])
def test_prefix_reuse_gives_the_plain_probabilities(tiny, choices):
    plain = HFBackend.load(BackendOptions(model=str(tiny), device="cpu", batch_size=3,
                                          extra={"prefix_cache": "off"}))
    reuse = HFBackend.load(BackendOptions(model=str(tiny), device="cpu", batch_size=3))
    assert reuse.fingerprint == plain.fingerprint  # the same numbers, so the same judge cache
    for checkpoint in ("base", "iter1", "base"):  # one call per judged checkpoint, on the same backend
        requests = _judge_requests(ANSWERS[checkpoint], choices)
        want, got = _probabilities(plain.choice_logprobs(requests)), _probabilities(reuse.choice_logprobs(requests))
        for w, g in zip(want, got, strict=True):
            assert set(w) == set(g) == set(choices)
            assert all(abs(w[c] - g[c]) < 1e-4 for c in choices), (w, g)
    stats = reuse._prefix.stats  # type: ignore[union-attr]
    assert stats["computed_tokens"] < 0.7 * stats["prompt_tokens"], stats  # the shared parts ran once


def test_a_lone_request_and_a_bad_option(tiny):
    reuse = HFBackend.load(BackendOptions(model=str(tiny), device="cpu"))
    plain = HFBackend.load(BackendOptions(model=str(tiny), device="cpu", extra={"prefix_cache": "off"}))
    request = _judge_requests(ANSWERS["base"], ("a", "b"))[:1]
    want, got = _probabilities(plain.choice_logprobs(request))[0], _probabilities(reuse.choice_logprobs(request))[0]
    assert all(abs(want[c] - got[c]) < 1e-4 for c in ("a", "b"))
    with pytest.raises(UserError, match="prefix_cache=maybe: give on or off"):
        HFBackend.load(BackendOptions(model=str(tiny), device="cpu", extra={"prefix_cache": "maybe"}))
