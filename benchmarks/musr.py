"""MuSR (0-shot) — Open LLM Leaderboard v2, through lm-eval's `leaderboard_musr` task.

Multistep soft reasoning: murder mysteries, object placements, team allocation. Paper: arXiv:2310.16049.
"""

from harness.specs import DatasetRef, LeaderboardRule, MetricSpec, ModelIndexSpec, SuiteSpec, register

# Answer choices of each MuSR subset (the leaderboard's per-subtask lo = 1/choices).
SUBTASK_CHOICES = {
    "leaderboard_musr_murder_mysteries": 2,
    "leaderboard_musr_object_placements": 5,
    "leaderboard_musr_team_allocation": 3,
}

SPEC = register(
    SuiteSpec(
        name='musr',
        title='MuSR (0-shot)',
        table="open_llm_v2",
        engine="lm-eval",
        lm_eval_task='leaderboard_musr',
        dataset=DatasetRef(id='TAUR-Lab/MuSR', revision=None, split=None),
        num_fewshot=0,
        metrics=(
            MetricSpec(key='acc_norm', label='acc_norm', column='MuSR (0-shot)'),
            MetricSpec(key='acc_norm_raw', label='lm-eval acc_norm x100 before normalization', column=None),
        ),
        headline='acc_norm',
        normalization='per-subtask norm(acc_norm, 1/num_choices), plain mean over 3 subtasks',
        model_index=ModelIndexSpec(dataset_type='TAUR-Lab/MuSR', metric_type='acc_norm', metric_name='acc_norm'),
        description='Multistep soft reasoning: murder mysteries, object placements, team allocation.',
        paper='arXiv:2310.16049',
        leaderboard=LeaderboardRule(metric="acc_norm", kind="subtasks", subtask_choices=SUBTASK_CHOICES),
    )
)

