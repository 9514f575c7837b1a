"""truthfulqa_mc2 — Open LLM Leaderboard v1, through lm-eval's `truthfulqa_mc2` task.

TruthfulQA multiple choice (mc2), 0-shot. Paper: arXiv:2109.07958.
"""

from harness.specs import DatasetRef, LeaderboardRule, MetricSpec, SuiteSpec, register

SPEC = register(
    SuiteSpec(
        name='truthfulqa_mc2',
        title='truthfulqa_mc2',
        table="open_llm_v1",
        engine="lm-eval",
        lm_eval_task='truthfulqa_mc2',
        dataset=DatasetRef(id='truthfulqa/truthful_qa', config='multiple_choice', split='validation'),
        num_fewshot=0,
        metrics=(MetricSpec(key='mc2', label='mc2', column='truthfulqa_mc2', padded=False),),
        headline='mc2',
        normalization='raw mc2 x100',
        description='TruthfulQA multiple choice (mc2), 0-shot.',
        paper='arXiv:2109.07958',
        leaderboard=LeaderboardRule(metric="acc"),
    )
)

# lm-eval 0.4 reports mc2 under the name `acc`.
