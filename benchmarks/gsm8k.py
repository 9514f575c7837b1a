"""gsm8k — Open LLM Leaderboard v1, through lm-eval's `gsm8k` task.

Grade-school math word problems, 5-shot. Paper: arXiv:2110.14168.
"""

from harness.specs import DatasetRef, LeaderboardRule, MetricSpec, SuiteSpec, register

SPEC = register(
    SuiteSpec(
        name='gsm8k',
        title='gsm8k',
        table="open_llm_v1",
        engine="lm-eval",
        lm_eval_task='gsm8k',
        dataset=DatasetRef(id='openai/gsm8k', config='main', split='test'),
        num_fewshot=5,
        metrics=(MetricSpec(key='exact_match', label='strict exact match', column='gsm8k', padded=False),),
        headline='exact_match',
        normalization='raw strict-match exact_match x100',
        description='Grade-school math word problems, 5-shot.',
        paper='arXiv:2110.14168',
        leaderboard=LeaderboardRule(metric="exact_match", filter="strict-match"),
    )
)
