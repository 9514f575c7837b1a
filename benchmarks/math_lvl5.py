"""MATH Lvl 5 (4-Shot) — Open LLM Leaderboard v2, through lm-eval's `leaderboard_math_hard` task.

MATH competition problems, level 5 only, 4-shot. Paper: arXiv:2103.03874.
"""

from harness.specs import DatasetRef, MetricSpec, ModelIndexSpec, SuiteSpec, register

SPEC = register(
    SuiteSpec(
        name='math_lvl5',
        title='MATH Lvl 5 (4-Shot)',
        table="open_llm_v2",
        engine="lm-eval",
        lm_eval_task='leaderboard_math_hard',
        dataset=DatasetRef(id='DigitalLearningGmbH/MATH-lighteval', revision=None, split='test'),
        num_fewshot=4,
        metrics=(MetricSpec(key='exact_match', label='exact match', column='MATH Lvl 5 (4-Shot)'),),
        headline='exact_match',
        normalization='norm(exact_match, 0) (generative); cards before 2025 used exact_match_original',
        model_index=ModelIndexSpec(dataset_type='hendrycks/competition_math', metric_type='exact_match', metric_name='exact match'),
        description='MATH competition problems, level 5 only, 4-shot.',
        paper='arXiv:2103.03874',
    )
)
