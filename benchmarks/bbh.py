"""BBH (3-Shot) — Open LLM Leaderboard v2, through lm-eval's `leaderboard_bbh` task.

BIG-Bench Hard: 24 challenging BIG-Bench tasks, 3-shot. Paper: arXiv:2210.09261.
"""

from harness.specs import DatasetRef, MetricSpec, ModelIndexSpec, SuiteSpec, register

SPEC = register(
    SuiteSpec(
        name='bbh',
        title='BBH (3-Shot)',
        table="open_llm_v2",
        engine="lm-eval",
        lm_eval_task='leaderboard_bbh',
        dataset=DatasetRef(id='SaylorTwift/bbh', revision=None, split='test'),
        num_fewshot=3,
        metrics=(MetricSpec(key='acc_norm', label='normalized accuracy', column='BBH (3-Shot)'),),
        headline='acc_norm',
        normalization='per-subtask norm(acc_norm, 1/num_choices), plain mean over 24 subtasks',
        model_index=ModelIndexSpec(dataset_type='BBH', metric_type='acc_norm', metric_name='normalized accuracy'),
        description='BIG-Bench Hard: 24 challenging BIG-Bench tasks, 3-shot.',
        paper='arXiv:2210.09261',
    )
)
