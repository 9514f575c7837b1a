"""AlpacaEval 2: 805 instructions judged against GPT-4-turbo outputs; length-controlled win rate.

Paper: arXiv:2404.04475 (length-controlled AlpacaEval). Scoring through alpaca_eval's own metrics.
The suite's judges, file formats, scoring and importer: judging.py, scoring.py, suite.py beside this file.
"""

from benchmarks.alpaca_eval import statistics as _statistics  # noqa: F401  (registers the item statistics)
from benchmarks.alpaca_eval.suite import AlpacaEval
from harness.engines.judged import register_judged
from harness.specs import DatasetRef, MetricSpec, SuiteSpec, register

SPEC = register(
    SuiteSpec(
        name="alpaca_eval",
        title="AlpacaEval 2",
        table="alpaca_eval",
        engine="judge",
        dataset=DatasetRef(id="tatsu-lab/alpaca_eval", config="alpaca_eval_gpt4_baseline", split="eval"),
        num_fewshot=0,
        metrics=(
            MetricSpec(key="lc_win_rate", label="length-controlled win rate", column="LC. Win Rate"),
            MetricSpec(key="win_rate", label="win rate", column="Win Rate"),
            MetricSpec(key="avg_length", label="average output length (characters)", column="Avg. Length", decimals=0,
                       higher_is_better=None),
        ),
        headline="lc_win_rate",
        normalization="win rate = mean(preference - 1) x 100; LC from alpaca_eval's length-controlled GLM",
        description="AlpacaEval 2 with the weighted_alpaca_eval_gpt4_turbo judge and gpt4_1106_preview baseline.",
        paper="arXiv:2404.04475",
    )
)

SUITE = register_judged(AlpacaEval())
