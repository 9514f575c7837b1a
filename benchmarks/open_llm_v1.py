"""Open LLM Leaderboard v1 average: the plain mean of the six raw v1 scores."""

from harness.specs import MetricSpec, SuiteSpec, register

SPEC = register(
    SuiteSpec(
        name="open_llm_v1",
        title="average",
        table="open_llm_v1",
        engine="aggregate",
        dataset=None,
        num_fewshot=None,
        metrics=(MetricSpec(key="average", label="average", column="average", padded=False),),
        headline="average",
        normalization="plain mean of the six raw scores",
        description="Average of ARC, TruthfulQA, Winogrande, GSM8K, HellaSwag and MMLU.",
        aggregate_of=("arc_challenge", "truthfulqa_mc2", "winogrande", "gsm8k", "hellaswag", "mmlu"),
    )
)
