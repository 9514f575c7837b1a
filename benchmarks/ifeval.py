"""IFEval (0-Shot) — Open LLM Leaderboard v2, through lm-eval's `leaderboard_ifeval` task.

Instruction-Following Evaluation: 541 prompts with verifiable constraints. Paper: arXiv:2311.07911.
"""

from harness.specs import DatasetRef, LeaderboardRule, MetricSpec, ModelIndexSpec, SuiteSpec, register

SPEC = register(
    SuiteSpec(
        name='ifeval',
        title='IFEval (0-Shot)',
        table="open_llm_v2",
        engine="lm-eval",
        lm_eval_task='leaderboard_ifeval',
        dataset=DatasetRef(id='wis-k/instruction-following-eval', revision=None, split='train'),
        num_fewshot=0,
        metrics=(
            MetricSpec(key='strict_acc', label='strict accuracy', column='IFEval (0-Shot)'),
            MetricSpec(key='prompt_level_strict_acc', label='prompt-level strict accuracy', column=None),
            MetricSpec(key='inst_level_strict_acc', label='instruction-level strict accuracy', column=None),
            MetricSpec(key='prompt_level_loose_acc', label='prompt-level loose accuracy', column=None),
            MetricSpec(key='inst_level_loose_acc', label='instruction-level loose accuracy', column=None),
        ),
        headline='strict_acc',
        normalization='mean of inst_level_strict_acc and prompt_level_strict_acc, x100',
        model_index=ModelIndexSpec(dataset_type='HuggingFaceH4/ifeval', metric_type='inst_level_strict_acc and prompt_level_strict_acc', metric_name='strict accuracy'),
        description='Instruction-Following Evaluation: 541 prompts with verifiable constraints.',
        paper='arXiv:2311.07911',
        leaderboard=LeaderboardRule(metric="prompt_level_strict_acc", kind="ifeval", also=("inst_level_strict_acc", "prompt_level_loose_acc", "inst_level_loose_acc")),
    )
)
