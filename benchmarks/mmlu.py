"""mmlu — Open LLM Leaderboard v1, through lm-eval's `mmlu` task.

Massive Multitask Language Understanding, 57 subjects, 5-shot. Paper: arXiv:2009.03300.
"""

from harness.specs import DatasetRef, MetricSpec, SuiteSpec, register

SPEC = register(
    SuiteSpec(
        name='mmlu',
        title='mmlu',
        table="open_llm_v1",
        engine="lm-eval",
        lm_eval_task='mmlu',
        dataset=DatasetRef(id='cais/mmlu', config='all', split='test'),
        num_fewshot=5,
        metrics=(MetricSpec(key='acc', label='accuracy', column='mmlu', padded=False),),
        headline='acc',
        normalization='raw acc x100 (lm-eval group mean)',
        description='Massive Multitask Language Understanding, 57 subjects, 5-shot.',
        paper='arXiv:2009.03300',
    )
)
