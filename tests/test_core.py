"""Registry, records, run store and the CLI's bad-input contract."""

from __future__ import annotations

import json

import pytest

from harness.catalog import get_suite, suites
from harness.errors import UserError
from harness.io import slug
from harness.records import Metric, Provenance, ResultRecord
from harness.registry import Registry
from harness.results import load_records as load_any
from harness.specs import CARD_TABLES, suites_for_table
from harness.store import RunDir


def make_record(model: str = "m", suite: str = "ifeval", value: float = 50.47) -> ResultRecord:
    return ResultRecord(model=model, suite=suite, metrics={"strict_acc": Metric(value=value, stderr=1.2, n=541)},
                        provenance=Provenance(source="test"))


def test_registry_has_every_suite_of_the_design():
    names = set(suites().names())
    assert {"ifeval", "bbh", "math_lvl5", "gpqa", "musr", "mmlu_pro", "arc_challenge", "truthfulqa_mc2", "winogrande",
            "gsm8k", "hellaswag", "mmlu", "alpaca_eval", "arena_hard", "mt_bench"} <= names
    for table in CARD_TABLES:
        assert suites_for_table(table), table


def test_registry_rejects_duplicates_and_suggests_close_names():
    reg: Registry[int] = Registry("thing")
    reg.add("alpha", 1)
    with pytest.raises(ValueError, match="duplicate thing 'alpha'"):
        reg.add("alpha", 2)
    with pytest.raises(UserError, match="did you mean alpha"):
        reg.get("alpah")


def test_specs_carry_card_metadata():
    spec = get_suite("mmlu_pro")
    assert spec.title == "MMLU-PRO (5-shot)" and spec.num_fewshot == 5 and spec.table == "open_llm_v2"
    assert spec.model_index and spec.model_index.dataset_type == "TIGER-Lab/MMLU-Pro"
    assert get_suite("truthfulqa_mc2").headline_metric.format(69.40) == "69.4"
    assert get_suite("mt_bench").metric("turn_1").format(7.9) == "7.90"
    assert get_suite("alpaca_eval").metric("avg_length").format(1855.4) == "1855"
    with pytest.raises(UserError, match="did you mean"):
        get_suite("mt_bench").metric("turn1")


def test_run_dir_round_trip_and_atomic_layout(tmp_path):
    run = RunDir(tmp_path / "run")
    path = run.write(make_record("Mistral | Iter\n1"))
    assert path.parent.parent == tmp_path / "run" / "records"
    assert [r.model for r in run.records()] == ["Mistral | Iter\n1"]
    assert not list(path.parent.glob("*.tmp"))
    assert run.find("Mistral | Iter\n1", None, "ifeval") == make_record("Mistral | Iter\n1")


def test_slug_keeps_distinct_labels_distinct():
    assert slug("a|b") != slug("a_b")
    assert slug("plain-name_1.0") == "plain-name_1.0"


def test_broken_record_names_the_file(tmp_path):
    run = RunDir(tmp_path)
    path = run.write(make_record())
    path.write_text(json.dumps({"model": "m", "suite": "ifeval"}))
    with pytest.raises(UserError, match=str(path)):
        run.records()


def test_unknown_schema_version_is_refused(tmp_path):
    data = json.loads(make_record().model_dump_json())
    data["schema_version"] = 99
    f = tmp_path / "r.json"
    f.write_text(json.dumps(data))
    with pytest.raises(UserError, match="schema_version"):
        load_any(f)


def test_results_table_formats(cli, tmp_path):
    RunDir(tmp_path).write(make_record())
    code, out, _ = cli("results", "table", tmp_path, "--format", "csv")
    assert code == 0
    assert out.splitlines()[0].startswith("model,variant,iteration,suite,metric,value")
    assert "m,,,ifeval,strict_acc,50.47" in out
    code, out, _ = cli("results", "table", tmp_path, "--format", "json")
    assert json.loads(out)[0]["value"] == 50.47


def test_suites_command_lists_registry(cli):
    code, out, _ = cli("suites")
    assert code == 0 and "MMLU-PRO (5-shot)" in out
    code, out, _ = cli("suites", "--json")
    assert {s["name"] for s in json.loads(out)} >= {"ifeval", "mt_bench"}


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["results", "table", "/nonexistent/run"], "no such"),
        (["eval", "x", "--suites", "bhh", "--out", "{tmp}/r"], "did you mean bbh"),
        (["eval", "x", "--suites", "open_llm_v1", "--out", "{tmp}/r"], "no such model folder"),  # an average runs its members (17a8c94)
        (["eval", "x", "--limit", "0", "--out", "{tmp}/r"], "--limit 0"),
        (["nonsense-command"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_exit_2(cli, tmp_path, argv, needle):
    code, out, err = cli(*[a.replace("{tmp}", str(tmp_path)) for a in argv])
    assert code == 2
    assert needle in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_output_path_inside_a_file_is_refused(tmp_path):
    from harness.io import atomic_write_text

    (tmp_path / "f").write_text("x")
    with pytest.raises(UserError, match="is a file"):
        atomic_write_text(tmp_path / "f" / "out.json", "{}")
    assert (tmp_path / "f").read_text() == "x"
