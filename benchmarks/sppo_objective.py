"""The SPPO objective on held-out prompts: does the preference model SPPO trains against prefer an iteration's greedy
answers to the base model's? (harness/sppo/objective.py computes it inside `train-and-eval`.)

The paper's claim at toy scale: self-play raises the win rate against the starting policy under the preference model.
The prompts are bundled with sppo-bench (harness/sppo/prompts/heldout_prompts.jsonl), written for this project and
disjoint from the training prompts and from every evaluation set. Not a quality measure by an independent judge.
"""

from harness.scoring.items import Column, ItemStatistic, register_item_statistics
from harness.specs import MetricSpec, SuiteSpec, register

SPEC = register(
    SuiteSpec(
        name="sppo_objective",
        title="SPPO objective",
        table="sppo_objective",
        engine="sppo",
        dataset=None,
        num_fewshot=0,
        metrics=(
            MetricSpec(key="win_rate_vs_base", label="win rate vs base (training preference model)",
                       column="Win rate vs base"),
            MetricSpec(key="differing_answers", label="held-out prompts answered differently from the base (%)",
                       column="Answers changed (%)", decimals=1, padded=False, higher_is_better=None),
            MetricSpec(key="empty_answers", label="empty answers", column=None, decimals=0, higher_is_better=False),
            MetricSpec(key="repeated_token_answers", label="repeated-token answers", column=None, decimals=0,
                       higher_is_better=False),
            MetricSpec(key="base_empty_answers", label="the base model's empty answers", column=None, decimals=0,
                       higher_is_better=None),
            MetricSpec(key="base_repeated_token_answers", label="the base model's repeated-token answers", column=None,
                       decimals=0, higher_is_better=None),
        ),
        headline="win_rate_vs_base",
        normalization="100 x mean over held-out prompts of P(iteration > base) under the training preference model",
        description="SPPO objective: win rate of an iteration's greedy answers against the base's, judged by the "
                    "preference model used in training, on bundled held-out prompts.",
        paper="arXiv:2405.00675",
    )
)


def statistics() -> dict[str, ItemStatistic]:
    """From the per-prompt rows objective.py writes: `preference` = 1 + P(iteration > base), `differs` 0/1; so
    iterations compare with each other paired over the same held-out prompts."""
    win = Column("win", lambda row: row.scores["preference"] - 1.0)
    differs = Column("differs", lambda row: row.scores["differs"])
    return {
        "win_rate_vs_base": ItemStatistic("sppo_objective", "win_rate_vs_base", (win,), lambda s: 100.0 * s.mean("win"),
                                          None, proportion=True),
        "differing_answers": ItemStatistic("sppo_objective", "differing_answers", (differs,),
                                           lambda s: 100.0 * s.mean("differs"), None, mcnemar="differs",
                                           proportion=True),
    }


register_item_statistics("sppo_objective", statistics)
