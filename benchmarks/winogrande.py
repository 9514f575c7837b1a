"""winogrande — Open LLM Leaderboard v1, through lm-eval's `winogrande` task.

WinoGrande (xl), 5-shot. Paper: arXiv:1907.10641.
"""

from harness.specs import DatasetRef, LeaderboardRule, MetricSpec, SuiteSpec, register

SPEC = register(
    SuiteSpec(
        name='winogrande',
        title='winogrande',
        table="open_llm_v1",
        engine="lm-eval",
        lm_eval_task='winogrande',
        dataset=DatasetRef(id='allenai/winogrande', config='winogrande_xl', split='validation'),
        num_fewshot=5,
        metrics=(MetricSpec(key='acc', label='accuracy', column='winogrande', padded=False),),
        headline='acc',
        normalization='raw acc x100',
        description='WinoGrande (xl), 5-shot.',
        paper='arXiv:1907.10641',
        leaderboard=LeaderboardRule(metric="acc"),
    )
)
