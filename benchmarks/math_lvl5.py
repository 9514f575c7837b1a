"""MATH Lvl 5 (4-Shot) — Open LLM Leaderboard v2, through lm-eval's `leaderboard_math_hard` task.

MATH competition problems, level 5 only, 4-shot. Paper: arXiv:2103.03874.
"""

from harness.specs import DatasetRef, LeaderboardRule, MetricSpec, ModelIndexSpec, SuiteSpec, register

SPEC = register(
    SuiteSpec(
        name='math_lvl5',
        title='MATH Lvl 5 (4-Shot)',
        table="open_llm_v2",
        engine="lm-eval",
        lm_eval_task='leaderboard_math_hard',
        dataset=DatasetRef(id='DigitalLearningGmbH/MATH-lighteval', revision=None, split='test'),
        num_fewshot=4,
        metrics=(
            MetricSpec(key='exact_match_original', label='exact match (original answer check)', column='MATH Lvl 5 (4-Shot)'),
            MetricSpec(key='exact_match', label='exact match (math-verify)', column=None),
        ),
        # Cards before 2025 (the seed included) report the original answer check; lm-eval's `exact_match` now uses
        # math-verify and gives other numbers. Both are recorded; the card column shows the original one.
        headline='exact_match_original',
        normalization='norm(exact_match_original, 0) (generative, weighted over the 7 subjects); exact_match (math-verify) recorded beside it',
        model_index=ModelIndexSpec(dataset_type='hendrycks/competition_math', metric_type='exact_match', metric_name='exact match'),
        description='MATH competition problems, level 5 only, 4-shot.',
        paper='arXiv:2103.03874',
        leaderboard=LeaderboardRule(metric="exact_match_original", kind="group", lower_bound=0.0, also=("exact_match",)),
    )
)
