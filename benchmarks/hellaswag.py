"""hellaswag — Open LLM Leaderboard v1, through lm-eval's `hellaswag` task.

HellaSwag commonsense completion, 10-shot. Paper: arXiv:1905.07830.
"""

from harness.specs import DatasetRef, LeaderboardRule, MetricSpec, SuiteSpec, register

SPEC = register(
    SuiteSpec(
        name='hellaswag',
        title='hellaswag',
        table="open_llm_v1",
        engine="lm-eval",
        lm_eval_task='hellaswag',
        dataset=DatasetRef(id='Rowan/hellaswag', config=None, split='validation'),
        num_fewshot=10,
        metrics=(MetricSpec(key='acc_norm', label='normalized accuracy', column='hellaswag', padded=False),),
        headline='acc_norm',
        normalization='raw acc_norm x100',
        description='HellaSwag commonsense completion, 10-shot.',
        paper='arXiv:1905.07830',
        leaderboard=LeaderboardRule(metric="acc_norm"),
    )
)
