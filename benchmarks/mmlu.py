"""mmlu — Open LLM Leaderboard v1, through lm-eval's `mmlu` task.

Massive Multitask Language Understanding, 57 subjects, 5-shot. Paper: arXiv:2009.03300.
"""

from harness.specs import DatasetRef, LeaderboardRule, MetricSpec, SuiteSpec, register

SPEC = register(
    SuiteSpec(
        name='mmlu',
        title='mmlu',
        table="open_llm_v1",
        engine="lm-eval",
        lm_eval_task='mmlu',
        dataset=DatasetRef(id='cais/mmlu', config='all', split='test'),
        num_fewshot=5,
        metrics=(
            MetricSpec(key='acc', label='accuracy', column='mmlu', padded=False),
            MetricSpec(key='acc_unweighted', label='plain mean of the 57 subject accuracies (v1 leaderboard)', column=None, padded=False),
        ),
        headline='acc',
        normalization='raw acc x100 (lm-eval group, weighted by subject size)',
        description='Massive Multitask Language Understanding, 57 subjects, 5-shot.',
        paper='arXiv:2009.03300',
        leaderboard=LeaderboardRule(metric="acc", unweighted_too=True),
    )
)

# The seed card's v1 table came from lm-eval 0.4.1, whose `mmlu` group weights subjects by size (the card value);
# the v1 leaderboard itself averaged the 57 subjects with equal weight (recorded as `acc_unweighted`).
