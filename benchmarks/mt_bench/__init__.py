"""MT-Bench: 80 two-turn questions in 8 categories, single-grade judged 1-10 (FastChat llm_judge).

Paper: arXiv:2306.05685.
The suite's judges, file formats, scoring and importer: judging.py, scoring.py, suite.py beside this file.
"""

from benchmarks.mt_bench import statistics as _statistics  # noqa: F401  (registers the item statistics)
from benchmarks.mt_bench.suite import MTBench
from harness.engines.judged import register_judged
from harness.specs import DatasetRef, MetricSpec, SuiteSpec, register

SPEC = register(
    SuiteSpec(
        name="mt_bench",
        title="MT-Bench",
        table="mt_bench",
        engine="judge",
        dataset=DatasetRef(id="lm-sys/FastChat", revision="0e6d3e4beaab66f4d3f93db72541a4abab8af28d"),
        num_fewshot=0,
        metrics=(
            MetricSpec(key="turn_1", label="first-turn score", column="1st Turn"),
            MetricSpec(key="turn_2", label="second-turn score", column="2nd Turn"),
            MetricSpec(key="average", label="average score", column="Average"),
        ),
        headline="average",
        normalization="mean judge rating (1-10) per turn; average over all valid (question, turn) ratings",
        description="MT-Bench with FastChat's single-grade judge prompts; reference-guided for math, reasoning, coding.",
        paper="arXiv:2306.05685",
    )
)

SUITE = register_judged(MTBench())
