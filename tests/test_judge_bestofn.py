"""Best-of-n: n seeded samples per prompt, the preference model's top one kept, failed samples never chosen."""

from __future__ import annotations

from harness.backends.base import Completion
from harness.engines.generation import SAMPLING, best_of_n, variant_name
from harness.sppo.rank import LocalJudge, Ranked
from tests.fixtures.judged.doubles import CountingScorer, RecordingGenerator


class LongestWins:
    fingerprint = "longest"

    def rank(self, rows, progress=None):
        return [Ranked(r.prompt_id, [float(len(x)) for x in r.responses]) for r in rows]


class SeedText(RecordingGenerator):
    def generate(self, requests):
        super().generate(requests)
        out = []
        for r in requests:
            seed = r.params.seed
            if seed == 2:
                out.append(Completion("", 1, 0, finish_reason="error", error="boom"))
            else:
                out.append(Completion("x" * (seed + 1), 1, seed + 1))
        return out


def test_best_of_n_keeps_top_ranked_and_skips_failures():
    gen = SeedText()
    convs = [({"role": "user", "content": "hi"},), ({"role": "user", "content": "yo"},)]
    picked = best_of_n(gen, convs, n=3, ranker=LongestWins(), seed=0)
    # seeds 0, 1, 2 per prompt: seed 2 (the longest) failed, so seed 1 wins
    assert [p.completion.text for p in picked] == ["xx", "xx"] and [p.index for p in picked] == [1, 1]
    assert {r.params.temperature for r in gen.requests} == {SAMPLING.temperature}
    assert sorted(r.params.seed for r in gen.requests[:3]) == [0, 1, 2]
    assert variant_name(16) == "best-of-16"


def test_best_of_n_with_the_sppo_local_judge():
    scorer = CountingScorer()
    picked = best_of_n(RecordingGenerator(), [({"role": "user", "content": "hi"},)], n=3, ranker=LocalJudge(scorer))
    assert scorer.calls == 6  # all ordered pairs of 3 samples, both positions
    assert len(picked[0].scores) == 3 and picked[0].index == max(range(3), key=lambda i: (picked[0].scores[i], -i))
