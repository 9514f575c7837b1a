"""GPQA (0-shot) — Open LLM Leaderboard v2, through lm-eval's `leaderboard_gpqa` task.

Graduate-level Google-proof Q&A (main, diamond, extended), 0-shot. Paper: arXiv:2311.12022.
"""

from harness.specs import DatasetRef, LeaderboardRule, MetricSpec, ModelIndexSpec, SuiteSpec, register

SPEC = register(
    SuiteSpec(
        name='gpqa',
        title='GPQA (0-shot)',
        table="open_llm_v2",
        engine="lm-eval",
        lm_eval_task='leaderboard_gpqa',
        dataset=DatasetRef(id='Idavidrein/gpqa', revision=None, split='train'),
        num_fewshot=0,
        metrics=(
            MetricSpec(key='acc_norm', label='acc_norm', column='GPQA (0-shot)'),
            MetricSpec(key='acc_norm_raw', label='lm-eval acc_norm x100 before normalization', column=None),
        ),
        headline='acc_norm',
        normalization='norm(acc_norm, 1/4) on the group',
        model_index=ModelIndexSpec(dataset_type='Idavidrein/gpqa', metric_type='acc_norm', metric_name='acc_norm'),
        description='Graduate-level Google-proof Q&A (main, diamond, extended), 0-shot.',
        paper='arXiv:2311.12022',
        leaderboard=LeaderboardRule(metric="acc_norm", kind="group", lower_bound=0.25),
    )
)
