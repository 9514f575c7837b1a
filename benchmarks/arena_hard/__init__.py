"""Arena-Hard-Auto v0.1: 500 hard Chatbot Arena prompts, pairwise judged against gpt-4-0314.

Paper: arXiv:2406.11939. Score = Bradley-Terry win rate vs the baseline, with a bootstrap 95% CI.
The suite's judges, file formats, scoring and importer: judging.py, scoring.py, suite.py beside this file.
"""

from benchmarks.arena_hard import statistics as _statistics  # noqa: F401  (registers the item statistics)
from benchmarks.arena_hard.suite import ArenaHard
from harness.engines.judged import register_judged
from harness.specs import DatasetRef, MetricSpec, SuiteSpec, register

SPEC = register(
    SuiteSpec(
        name="arena_hard",
        title="Arena-Hard v0.1",
        table="arena_hard",
        engine="judge",
        dataset=DatasetRef(id="lmarena/arena-hard-auto", revision="0489bf384abd010906014dec7b903f7c438eabba"),
        num_fewshot=0,
        metrics=(
            MetricSpec(key="score", label="win rate vs gpt-4-0314 (Bradley-Terry)", column="Score", decimals=1, padded=False),
            MetricSpec(key="avg_tokens", label="average answer tokens", column="average \\# Tokens", decimals=0,
                       higher_is_better=None),
        ),
        headline="score",
        normalization="Bradley-Terry (logistic regression, Elo scale 400) win rate vs baseline x 100; CI from 100 bootstraps",
        description="Arena-Hard-Auto v0.1 with the gpt-4-1106-preview judge and gpt-4-0314 baseline.",
        paper="arXiv:2406.11939",
    )
)

SUITE = register_judged(ArenaHard())
