"""BBH (3-Shot) — Open LLM Leaderboard v2, through lm-eval's `leaderboard_bbh` task.

BIG-Bench Hard: 24 challenging BIG-Bench tasks, 3-shot. Paper: arXiv:2210.09261.
"""

from harness.specs import DatasetRef, LeaderboardRule, MetricSpec, ModelIndexSpec, SuiteSpec, register

# Answer choices of each lm-eval `leaderboard_bbh_*` task (the lengths of their `doc_to_choice`); the leaderboard
# normalizes every subtask with lo = 1/choices before averaging.
SUBTASK_CHOICES = {
    "leaderboard_bbh_boolean_expressions": 2,
    "leaderboard_bbh_causal_judgement": 2,
    "leaderboard_bbh_date_understanding": 6,
    "leaderboard_bbh_disambiguation_qa": 3,
    "leaderboard_bbh_formal_fallacies": 2,
    "leaderboard_bbh_geometric_shapes": 11,
    "leaderboard_bbh_hyperbaton": 2,
    "leaderboard_bbh_logical_deduction_five_objects": 5,
    "leaderboard_bbh_logical_deduction_seven_objects": 7,
    "leaderboard_bbh_logical_deduction_three_objects": 3,
    "leaderboard_bbh_movie_recommendation": 6,
    "leaderboard_bbh_navigate": 2,
    "leaderboard_bbh_object_counting": 19,
    "leaderboard_bbh_penguins_in_a_table": 5,
    "leaderboard_bbh_reasoning_about_colored_objects": 18,
    "leaderboard_bbh_ruin_names": 6,
    "leaderboard_bbh_salient_translation_error_detection": 6,
    "leaderboard_bbh_snarks": 2,
    "leaderboard_bbh_sports_understanding": 2,
    "leaderboard_bbh_temporal_sequences": 4,
    "leaderboard_bbh_tracking_shuffled_objects_five_objects": 5,
    "leaderboard_bbh_tracking_shuffled_objects_seven_objects": 7,
    "leaderboard_bbh_tracking_shuffled_objects_three_objects": 3,
    "leaderboard_bbh_web_of_lies": 2,
}

SPEC = register(
    SuiteSpec(
        name='bbh',
        title='BBH (3-Shot)',
        table="open_llm_v2",
        engine="lm-eval",
        lm_eval_task='leaderboard_bbh',
        dataset=DatasetRef(id='SaylorTwift/bbh', revision=None, split='test'),
        num_fewshot=3,
        metrics=(
            MetricSpec(key='acc_norm', label='normalized accuracy', column='BBH (3-Shot)'),
            MetricSpec(key='acc_norm_raw', label='lm-eval acc_norm x100 before normalization', column=None),
        ),
        headline='acc_norm',
        normalization='per-subtask norm(acc_norm, 1/num_choices), plain mean over 24 subtasks',
        model_index=ModelIndexSpec(dataset_type='BBH', metric_type='acc_norm', metric_name='normalized accuracy'),
        description='BIG-Bench Hard: 24 challenging BIG-Bench tasks, 3-shot.',
        paper='arXiv:2210.09261',
        leaderboard=LeaderboardRule(metric="acc_norm", kind="subtasks", subtask_choices=SUBTASK_CHOICES),
    )
)

