"""Golden cases for the Open LLM Leaderboard normalization (harness.scoring.leaderboard).

The seed card's v2 numbers are reproduced from whole-item counts on the leaderboard's real split sizes:
GPQA 338 of 1192 (diamond 198 + extended 546 + main 448) -> 4.47; MMLU-Pro 3243 of 12032 -> 18.84;
MATH Lvl 5 29 of 1324 (exact_match_original) -> 2.19; IFEval 249/541 prompts and 458/834 instructions -> 50.47.
"""

from __future__ import annotations

import pytest

from benchmarks.bbh import SUBTASK_CHOICES as BBH_CHOICES
from benchmarks.musr import SUBTASK_CHOICES as MUSR_CHOICES
from harness.scoring import leaderboard as lb

SEED_V2 = {"ifeval": 50.47, "bbh": 22.93, "math_lvl5": 2.19, "gpqa": 4.47, "musr": 8.30, "mmlu_pro": 18.84}


@pytest.mark.parametrize(
    ("correct", "total", "lower_bound", "expected"),
    [
        (338, 1192, 0.25, "4.47"),  # GPQA, group acc_norm
        (3243, 12032, 0.1, "18.84"),  # MMLU-Pro, acc
        (3244, 12032, 0.1, "18.85"),  # one more item moves the second decimal: the counts above are exact
        (29, 1324, 0.0, "2.19"),  # MATH Lvl 5, exact_match_original
        (297, 1192, 0.25, "0.00"),  # below chance clips to 0
    ],
)
def test_seed_values_from_counts(correct: int, total: int, lower_bound: float, expected: str) -> None:
    assert f"{lb.norm(correct / total, lower_bound):.2f}" == expected


def test_ifeval_is_mean_of_instruction_and_prompt_strict() -> None:
    assert f"{lb.ifeval_score(458 / 834, 249 / 541):.2f}" == "50.47"
    assert lb.ifeval_score(0.5, 0.25) == pytest.approx(37.5)


def test_norm_edges() -> None:
    assert lb.norm(0.25, 0.25) == 0.0
    assert lb.norm(1.0, 0.25) == pytest.approx(100.0)
    assert lb.norm(0.5, 0.0) == pytest.approx(50.0)
    with pytest.raises(ValueError):
        lb.norm(0.5, 1.0)


def test_bbh_subtasks_normalized_separately_then_averaged() -> None:
    # navigate (2 choices) 0.6 -> 20; date_understanding (6) 0.5 -> (0.5-1/6)/(5/6) = 40; object_counting (19)
    # 0.04 < 1/19 -> 0. Plain mean = 20.0, not the normalized pooled accuracy.
    values = {"leaderboard_bbh_navigate": 0.6, "leaderboard_bbh_date_understanding": 0.5,
              "leaderboard_bbh_object_counting": 0.04}
    per = lb.normalize_subtasks(values, BBH_CHOICES)
    assert per == pytest.approx({"leaderboard_bbh_navigate": 20.0, "leaderboard_bbh_date_understanding": 40.0,
                                 "leaderboard_bbh_object_counting": 0.0})
    assert lb.subtask_mean(values, BBH_CHOICES) == pytest.approx(20.0)


def test_musr_subtasks() -> None:
    # murder_mysteries (2) 128/250 -> 2.4; object_placements (5) 78/256 -> 13.0859375; team_allocation (3) 99/250 -> 9.4
    values = {"leaderboard_musr_murder_mysteries": 128 / 250, "leaderboard_musr_object_placements": 78 / 256,
              "leaderboard_musr_team_allocation": 99 / 250}
    assert lb.normalize_subtasks(values, MUSR_CHOICES) == pytest.approx(
        {"leaderboard_musr_murder_mysteries": 2.4, "leaderboard_musr_object_placements": 13.0859375,
         "leaderboard_musr_team_allocation": 9.4})
    assert f"{lb.subtask_mean(values, MUSR_CHOICES):.2f}" == "8.30"


def test_unknown_subtask_is_named() -> None:
    with pytest.raises(KeyError, match="leaderboard_bbh_nope"):
        lb.subtask_mean({"leaderboard_bbh_nope": 0.5}, BBH_CHOICES)


def test_average_of_the_six_is_the_seed_avg() -> None:
    assert f"{lb.average(SEED_V2.values()):.2f}" == "17.87"


def test_choice_counts_match_design_and_lm_eval_yaml() -> None:
    """The BBH counts equal the lengths of `doc_to_choice` in lm-eval's shipped leaderboard YAMLs."""
    from lm_eval.tasks._index import TaskIndex
    from lm_eval.tasks._yaml_loader import load_yaml

    from harness.engines.lmeval.tasks import lm_eval_tasks_dir

    index = TaskIndex.build([lm_eval_tasks_dir() / "leaderboard" / "bbh_mc"])
    for task, choices in BBH_CHOICES.items():
        cfg = load_yaml(index[task].yaml_path, resolve_func=False)
        assert len(cfg["doc_to_choice"]) == choices, task
    assert len(BBH_CHOICES) == 24
    assert MUSR_CHOICES == {"leaderboard_musr_murder_mysteries": 2, "leaderboard_musr_object_placements": 5,
                            "leaderboard_musr_team_allocation": 3}


def test_subtask_stderr_propagates_linearly() -> None:
    se = lb.subtask_mean_stderr({"leaderboard_musr_murder_mysteries": 0.03, "leaderboard_musr_team_allocation": 0.03},
                                MUSR_CHOICES)
    expected = ((0.03 / 0.5 * 100) ** 2 + (0.03 / (2 / 3) * 100) ** 2) ** 0.5 / 2
    assert se == pytest.approx(expected)
