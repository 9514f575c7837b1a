"""The suite registry's one explicit import list. Import order is the order `sppo-bench suites` prints."""

from benchmarks import (  # noqa: F401  (imported to register their specs)
    alpaca_eval,
    arc_challenge,
    arena_hard,
    bbh,
    gpqa,
    gsm8k,
    hellaswag,
    ifeval,
    math_lvl5,
    mmlu,
    mmlu_pro,
    mt_bench,
    musr,
    open_llm_v1,
    open_llm_v2,
    sppo_objective,
    truthfulqa_mc2,
    winogrande,
)
