"""MMLU-PRO (5-shot) — Open LLM Leaderboard v2, through lm-eval's `leaderboard_mmlu_pro` task.

MMLU-Pro: 10-choice professional-level multiple choice, 5-shot. Paper: arXiv:2406.01574.
"""

from harness.specs import DatasetRef, LeaderboardRule, MetricSpec, ModelIndexSpec, SuiteSpec, register

SPEC = register(
    SuiteSpec(
        name='mmlu_pro',
        title='MMLU-PRO (5-shot)',
        table="open_llm_v2",
        engine="lm-eval",
        lm_eval_task='leaderboard_mmlu_pro',
        dataset=DatasetRef(id='TIGER-Lab/MMLU-Pro', revision=None, split='test'),
        num_fewshot=5,
        metrics=(
            MetricSpec(key='acc', label='accuracy', column='MMLU-PRO (5-shot)'),
            MetricSpec(key='acc_raw', label='lm-eval acc x100 before normalization', column=None),
        ),
        headline='acc',
        normalization='norm(acc, 1/10)',
        model_index=ModelIndexSpec(dataset_type='TIGER-Lab/MMLU-Pro', metric_type='acc', metric_name='accuracy', dataset_config='main', dataset_split='test'),
        description='MMLU-Pro: 10-choice professional-level multiple choice, 5-shot.',
        paper='arXiv:2406.01574',
        leaderboard=LeaderboardRule(metric="acc", kind="group", lower_bound=0.1),
    )
)
