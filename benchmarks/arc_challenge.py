"""arc_challenge — Open LLM Leaderboard v1, through lm-eval's `arc_challenge` task.

AI2 Reasoning Challenge, challenge set, 25-shot. Paper: arXiv:1803.05457.
"""

from harness.specs import DatasetRef, LeaderboardRule, MetricSpec, SuiteSpec, register

SPEC = register(
    SuiteSpec(
        name='arc_challenge',
        title='arc_challenge',
        table="open_llm_v1",
        engine="lm-eval",
        lm_eval_task='arc_challenge',
        dataset=DatasetRef(id='allenai/ai2_arc', config='ARC-Challenge', split='test'),
        num_fewshot=25,
        metrics=(MetricSpec(key='acc_norm', label='normalized accuracy', column='arc_challenge', padded=False),),
        headline='acc_norm',
        normalization='raw acc_norm x100',
        description='AI2 Reasoning Challenge, challenge set, 25-shot.',
        paper='arXiv:1803.05457',
        leaderboard=LeaderboardRule(metric="acc_norm"),
    )
)
