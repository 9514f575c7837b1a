"""Open LLM Leaderboard v2 average: the plain mean of the six normalized v2 scores."""

from harness.specs import MetricSpec, SuiteSpec, register

SPEC = register(
    SuiteSpec(
        name="open_llm_v2",
        title="Avg.",
        table="open_llm_v2",
        engine="aggregate",
        dataset=None,
        num_fewshot=None,
        metrics=(MetricSpec(key="average", label="average", column="Avg."),),
        headline="average",
        normalization="plain mean of the six normalized scores",
        description="Average of IFEval, BBH, MATH Lvl 5, GPQA, MuSR and MMLU-PRO (normalized).",
        aggregate_of=("ifeval", "bbh", "math_lvl5", "gpqa", "musr", "mmlu_pro"),
    )
)
