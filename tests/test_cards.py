"""Model cards: golden render of the seed reference, run-directory cards (judges, partial, failed, averages), plots."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from huggingface_hub import ModelCard

from harness import cards, tables
from harness.cardparse import parse_card
from harness.catalog import get_suite
from harness.records import Coverage, JudgeInfo, Metric, Provenance, ResultRecord
from harness.store import RunDir, load_reference

REPO = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "golden"
COMMITTED = REPO / "results" / "reference" / "Mistral7B-PairRM-SPPO-Iter1.json"
V2_MEMBERS = ("ifeval", "bbh", "math_lvl5", "gpqa", "musr", "mmlu_pro")


def record(model: str, suite: str, value: float, packages: dict[str, str] | None = None, **kw) -> ResultRecord:
    key = get_suite(suite).headline
    return ResultRecord(model=model, suite=suite, metrics={key: Metric(value=value)},
                        provenance=Provenance(source="run", packages=packages or {}), **kw)


def local_judge(official: bool = False) -> JudgeInfo:
    return JudgeInfo(id="mt_bench/single-v1@Qwen2.5-0.5B", model="Qwen/Qwen2.5-0.5B-Instruct", prompt_hash="ab" * 32,
                     backend="hf", official=official)


def test_seed_reference_renders_the_golden_card(cli, tmp_path):
    out = tmp_path / "card.md"
    code, stdout, err = cli("report", "--reference", COMMITTED, "--out", out)
    assert code == 0, err
    text = out.read_text()
    golden = GOLDEN / "Mistral7B-PairRM-SPPO-Iter1.card.md"
    assert text == golden.read_text(), f"card changed; if intended, copy {out} to {golden}"
    for suite in ("alpaca_eval", "mt_bench", "open_llm_v1"):
        assert (tmp_path / "card-plots" / f"{suite}.png").read_bytes().startswith(b"\x89PNG")
        assert f"](card-plots/{suite}.png)" in text
    assert not (tmp_path / "card-plots" / "ifeval.png").exists()  # one iteration only: nothing to plot across


def test_rendered_card_imports_back_to_identical_rows(tmp_path):
    ref = load_reference(COMMITTED)
    text = cards.render_card(ref.records, subject=ref.card_model, source=str(COMMITTED))
    again = parse_card(text, source="rendered.md")
    assert tables.rows(again.records) == tables.rows(ref.records)
    assert again.card_model == ref.card_model


def test_front_matter_is_a_model_index_huggingface_hub_reads():
    ref = load_reference(COMMITTED)
    card = ModelCard(cards.render_card(ref.records, subject=ref.card_model, source="x.json"))
    assert card.data.model_name == "Mistral7B-PairRM-SPPO-Iter1"
    by_name = {r.dataset_name: r for r in card.data.eval_results}
    assert set(by_name) == {get_suite(s).title for s in V2_MEMBERS}
    assert by_name["IFEval (0-Shot)"].metric_value == 50.47
    assert by_name["MMLU-PRO (5-shot)"].dataset_config == "main"
    assert by_name["BBH (3-Shot)"].source_url.endswith("query=UCLA-AGI/Mistral7B-PairRM-SPPO-Iter1")


def test_only_tables_with_data_and_escaped_cells():
    weird = "evil | name\nwith newline"
    text = cards.render_card([record(weird, "mt_bench", 7.5)], subject=None, source="run")
    assert "MT-Bench Evaluation Results" in text and "AlpacaEval" not in text and "Arena-Hard" not in text
    (row,) = [line for line in text.splitlines() if line.startswith("| evil")]
    assert row == "| evil \\| name with newline | — | — | 7.50 |"
    assert yaml.safe_load(text.split("---")[1]) == {"pipeline_tag": "text-generation"}


def test_run_card_names_judges_partial_failed_and_coverage(tmp_path):
    recs = [
        record("SmolLM Iter 1", "mt_bench", 5.125, judge=local_judge(), iteration=1),
        record("SmolLM Iter 2", "mt_bench", 5.5, judge=local_judge(), iteration=2, status="partial", limit=8,
               coverage=Coverage(total=16, scored=15, failed=1)),
        ResultRecord(model="SmolLM Iter 2", suite="alpaca_eval", status="failed", error="judge backend missing",
                     provenance=Provenance(source="run"), iteration=2),
        record("SmolLM Iter 1", "alpaca_eval", 12.0, judge=local_judge(official=True), iteration=1,
               coverage=Coverage(total=805, scored=800, failed=5)),
    ]
    text = cards.render_card(recs, subject=None, source="run")
    assert "| SmolLM Iter 1 | — | — | 5.12 |" in text
    assert "| SmolLM Iter 2 | — | — | 5.50† n=15 |" in text  # no stderr or items: n alone, the items scored
    assert "| SmolLM Iter 2 | failed | failed | failed |" in text
    assert "Judge: `mt_bench/single-v1@Qwen2.5-0.5B` (Qwen/Qwen2.5-0.5B-Instruct via hf" in text
    assert "not comparable with officially judged ones" in text
    assert text.count("**Local judge:**") == 1  # the official alpaca judge gets no warning
    assert "† Partial: SmolLM Iter 2, MT-Bench: 15 of 16 items scored, 1 failed, --limit 8." in text
    assert "Not run / failed: SmolLM Iter 2, AlpacaEval 2: judge backend missing." in text
    assert "Coverage: SmolLM Iter 1, AlpacaEval 2: 800 of 805 items scored, 5 failed." in text
    again = parse_card(text, source="card.md")
    assert {(r.model, r.suite, r.status) for r in again.records} == {
        ("SmolLM Iter 1", "mt_bench", "complete"), ("SmolLM Iter 2", "mt_bench", "partial"),
        ("SmolLM Iter 1", "alpaca_eval", "complete")}


def test_run_directory_averages_are_computed_from_the_six_members(cli, tmp_path):
    run = RunDir(tmp_path / "run")
    values = dict(zip(V2_MEMBERS, (50.0, 20.0, 2.0, 4.0, 8.0, 18.0), strict=True))
    for suite, v in values.items():
        run.write(record("Base", suite, v, iteration=0, packages={"lm_eval": "0.4.13"}))
        if suite != "bbh":
            run.write(record("Iter 1", suite, v + 1, iteration=1))
    out = tmp_path / "card.md"
    code, stdout, err = cli("report", "--run", run.root, "--out", out, "--no-plots", "--model", "Base")
    assert code == 0, err
    text = out.read_text()
    assert "| Avg. | 17.00 | — |" in text  # Iter 1 lacks BBH: no average
    assert "| BBH (3-Shot) | 20.00 | — |" in text
    assert "lm-evaluation-harness) v0.4.13" in text
    assert "- name: Base" in text and not (tmp_path / "card-plots").exists()
    assert not list(run.root.glob("records/*/open_llm_v2.json"))  # computed for the card, not written back


def test_stored_average_is_not_recomputed():
    recs = [record("m", s, 10.0) for s in V2_MEMBERS] + [record("m", "open_llm_v2", 99.0)]
    assert cards.with_averages(recs) == recs


def test_unknown_subject_is_a_user_error(cli, tmp_path):
    code, _, err = cli("report", "--reference", COMMITTED, "--out", tmp_path / "c.md", "--model", "Mistral7B-PairRM")
    assert code == 2 and "did you mean" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("case", ["missing", "wrong_schema", "not_json", "inside_file", "empty_run"])
def test_report_bad_input_exits_2_and_writes_nothing(cli, tmp_path, case):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    bad = tmp_path / "bad.json"
    out = tmp_path / "out" / "card.md"
    source = ["--reference", tmp_path / "missing.json"]
    if case == "wrong_schema":
        bad.write_text('{"records": [{"model": "m"}], "name": "x", "source": "y"}')
        source = ["--reference", bad]
    elif case == "not_json":
        bad.write_text("{nope")
        source = ["--reference", bad]
    elif case == "inside_file":
        source, out = ["--reference", COMMITTED], blocker / "card.md"
    elif case == "empty_run":
        (tmp_path / "run").mkdir()
        source = ["--run", tmp_path / "run"]
    before = sorted(p.name for p in tmp_path.iterdir())
    code, stdout, err = cli("report", *source, "--out", out)
    assert code == 2 and stdout == "" and err.count("\n") == 1 and err.startswith("sppo-bench: error: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == before and blocker.read_text() == "x"
