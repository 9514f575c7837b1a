"""`sppo-bench import lm-eval`: hand-written lm-eval 0.4 results files (tests/fixtures/lmeval/results/) into records.

leaderboard_v2_seed.json holds whole-item counts on the leaderboard's split sizes that give the seed card's v2 row
(see test_leaderboard_scoring.py for the counts); open_llm_v1_seed.json gives its v1 row (ARC 762/1172, Winogrande
986/1267, GSM8K strict-match 578/1319, HellaSwag 8547/10042, MMLU 8262/14042 weighted by subject size, mc2 0.694).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from harness.catalog import suites
from harness.engines.lmeval.results import import_file as _import_file
from harness.errors import UserError
from harness.scoring.leaderboard import average
from harness.store import RunDir

RESULTS = Path(__file__).parent / "fixtures" / "lmeval" / "results"
V2 = RESULTS / "leaderboard_v2_seed.json"
V1 = RESULTS / "open_llm_v1_seed.json"
SEED_V2 = {"ifeval": "50.47", "bbh": "22.93", "math_lvl5": "2.19", "gpqa": "4.47", "musr": "8.30", "mmlu_pro": "18.84"}
SEED_V1 = {"arc_challenge": "65.02", "truthfulqa_mc2": "69.40", "winogrande": "77.82", "gsm8k": "43.82",
           "hellaswag": "85.11", "mmlu": "58.84"}


def import_file(path, model: str, **kw):
    return _import_file(path, model, list(suites()), iteration=kw.get("iteration"), variant=kw.get("variant"))


def _headline(record) -> float:
    from harness.catalog import get_suite

    return record.metrics[get_suite(record.suite).headline].value


def test_v2_seed_row_from_counts() -> None:
    records = {r.suite: r for r in import_file(V2, "Mistral7B-PairRM-SPPO Iter 1", iteration=1)}
    assert {s: f"{_headline(r):.2f}" for s, r in records.items()} == SEED_V2
    assert f"{average(_headline(r) for r in records.values()):.2f}" == "17.87"
    assert all(r.status == "complete" and r.iteration == 1 for r in records.values())
    assert records["bbh"].metrics["acc_norm"].n == 5761
    assert len(records["bbh"].subtasks) == 24 and len(records["musr"].subtasks) == 3
    assert set(records["gpqa"].subtasks) == {"leaderboard_gpqa_diamond", "leaderboard_gpqa_extended", "leaderboard_gpqa_main"}
    # per-subtask normalization: navigate (2 choices) 154/250 -> (0.616 - 0.5) / 0.5 = 23.2
    assert records["bbh"].subtasks["leaderboard_bbh_navigate"]["acc_norm"].value == pytest.approx(23.2)
    assert records["bbh"].subtasks["leaderboard_bbh_navigate"]["acc_norm_raw"].value == pytest.approx(61.6)


def test_math_records_both_checks_and_says_which_is_the_card_value() -> None:
    math = next(r for r in import_file(V2, "m") if r.suite == "math_lvl5")
    assert f"{math.metrics['exact_match_original'].value:.2f}" == "2.19"  # 29 / 1324
    assert math.metrics["exact_match"].value == pytest.approx(33 / 1324 * 100)  # math-verify
    assert math.provenance.generation["card_metric"] == "exact_match_original"
    assert len(math.subtasks) == 7
    assert math.subtasks["leaderboard_math_algebra_hard"]["exact_match_original"].value == pytest.approx(10 / 307 * 100)


def test_pre_math_verify_results_use_their_exact_match_as_the_original(tmp_path: Path) -> None:
    data = json.loads(V2.read_text())
    for task, entry in data["results"].items():
        if task.startswith("leaderboard_math"):
            entry.pop("exact_match_original,none")
            entry.pop("exact_match_original_stderr,none")
            entry["exact_match,none"] = 0.0
    data["groups"]["leaderboard_math_hard"]["exact_match,none"] = 0.0
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    math = next(r for r in import_file(path, "m") if r.suite == "math_lvl5")
    assert math.metrics["exact_match_original"].value == 0.0 and "exact_match" not in math.metrics
    assert any("predate" in n for n in math.notes)


def test_provenance_carries_versions() -> None:
    bbh = next(r for r in import_file(V2, "m") if r.suite == "bbh")
    assert bbh.provenance.source == "import:lm-eval"
    assert bbh.provenance.packages["lm_eval"] == "0.4.13"
    assert bbh.provenance.generation["task_versions"]["leaderboard_bbh_navigate"] == 1.0
    assert bbh.provenance.generation["n_shot"]["leaderboard_bbh_navigate"] == 3
    assert bbh.provenance.dataset and bbh.provenance.dataset.id == "SaylorTwift/bbh"
    ifeval = next(r for r in import_file(V2, "m") if r.suite == "ifeval")
    assert ifeval.provenance.generation["generation_kwargs"]["max_gen_toks"] == 1280
    assert ifeval.provenance.generation["apply_chat_template"] is True


def test_v1_seed_row() -> None:
    records = {r.suite: r for r in import_file(V1, "m")}
    assert {s: f"{_headline(r):.2f}" for s, r in records.items()} == SEED_V1
    assert f"{average(_headline(r) for r in records.values()):.2f}" == "66.67"
    # the v1 leaderboard's own MMLU average weighs the 57 subjects equally: a different number, kept beside it
    assert records["mmlu"].metrics["acc_unweighted"].value != pytest.approx(records["mmlu"].metrics["acc"].value)


def test_cli_import_writes_records(cli, tmp_path: Path) -> None:
    code, out, _ = cli("import", "lm-eval", V2, "--model", "SPPO Iter 1", "--out", tmp_path / "run", "--iteration", "1")
    assert code == 0, out
    records = RunDir(tmp_path / "run").records()
    assert sorted(r.suite for r in records) == sorted(SEED_V2)


def test_partial_file_is_marked_partial(tmp_path: Path) -> None:
    data = json.loads(V2.read_text())
    data["n-samples"]["leaderboard_mmlu_pro"]["effective"] = 10
    data["config"]["limit"] = 10
    path = tmp_path / "limited.json"
    path.write_text(json.dumps(data))
    pro = next(r for r in import_file(path, "m") if r.suite == "mmlu_pro")
    assert pro.status == "partial" and pro.limit == 10


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("results"), "missing field `results`"),
        (lambda d: d.pop("versions"), "missing field `versions`"),
        (lambda d: d["results"]["leaderboard_bbh_navigate"].pop("acc_norm,none"),
         "results.leaderboard_bbh_navigate.acc_norm,none"),
        (lambda d: d["results"].pop("leaderboard_musr_team_allocation"), "leaderboard_musr_team_allocation"),
        (lambda d: d["results"]["leaderboard_ifeval"].update({"inst_level_strict_acc,none": "high"}),
         "should be a number"),
    ],
)
def test_bad_files_name_the_problem(tmp_path: Path, mutate, message: str) -> None:
    data = copy.deepcopy(json.loads(V2.read_text()))
    mutate(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(UserError, match=message.replace("`", ".").replace("(", r"\(")):
        import_file(path, "m")


def test_not_an_lm_eval_file(tmp_path: Path) -> None:
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"results": {"lambada_openai": {"acc,none": 0.5}}, "versions": {}}))
    with pytest.raises(UserError, match="no Open LLM Leaderboard task"):
        import_file(path, "m")
    path.write_text("[1, 2]")
    with pytest.raises(UserError, match="JSON object"):
        import_file(path, "m")
    path.write_text("{not json")
    with pytest.raises(UserError, match="not JSON"):
        import_file(path, "m")
