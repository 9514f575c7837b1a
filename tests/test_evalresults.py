"""Hub `.eval_results/*.yaml` beside the card: `report` writes them (by default only numbers that mean what the
benchmark's own numbers mean: complete records, judged by the official judge or scored by lm-eval; `--eval-results all`
adds the rest with their caveat), huggingface_hub's own parser reads them, and `reference import` reads them back to
the same numbers. The records have the shapes real runs write (an IFEval `--limit 100` record: 100 attempted and
scored of the 541 prompts)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml
from huggingface_hub import parse_eval_result_entries

from harness.catalog import get_suite
from harness.records import Coverage, JudgeInfo, Metric, Provenance, ResultRecord
from harness.store import RunDir, load_reference
from tests.viewer_fixtures import JUDGE

SUBJECT = "Tiny-SPPO Iter 2"
FINISHED = dt.datetime(2026, 11, 2, 9, 30, tzinfo=dt.UTC)
LOCAL = JudgeInfo(id="arena-local", model="SmolLM2-135M-Instruct", prompt_hash="ab" * 32, backend="hf", official=False)


def records() -> list[ResultRecord]:
    prov = Provenance(source="run", finished_at=FINISHED)
    alpaca = Coverage(total=805, scored=805, available=805)
    return [
        ResultRecord(model=SUBJECT, iteration=2, suite="alpaca_eval", judge=JUDGE, provenance=prov, coverage=alpaca,
                     metrics={"lc_win_rate": Metric(value=33.3312, n=805, ci_low=30.25, ci_high=36.5),
                              "win_rate": Metric(value=30.0, n=805), "avg_length": Metric(value=1610.4)}),
        ResultRecord(model=SUBJECT, variant="best-of-16", iteration=2, suite="alpaca_eval", judge=JUDGE,
                     provenance=prov, coverage=alpaca, metrics={"lc_win_rate": Metric(value=41.5, n=805)}),
        ResultRecord(model=SUBJECT, iteration=2, suite="arena_hard", judge=LOCAL, provenance=prov,
                     coverage=Coverage(total=500, scored=500, available=500),
                     metrics={"score": Metric(value=18.4, ci_low=16.2, ci_high=20.5, n=500)}),
        # as `eval --suites ifeval --limit 100` records it (lm-eval's n-samples: 100 effective of 541 original)
        ResultRecord(model=SUBJECT, iteration=2, suite="ifeval", status="partial", limit=100, provenance=prov,
                     coverage=Coverage(total=100, scored=100, failed=0, available=541),
                     metrics={"strict_acc": Metric(value=19.496932515337424, n=100),
                              "prompt_level_strict_acc": Metric(value=12.0, stderr=3.265986323710906, n=100)}),
        ResultRecord(model=SUBJECT, iteration=2, suite="gpqa", provenance=prov,
                     coverage=Coverage(total=1192, scored=1192, available=1192),
                     metrics={"acc_norm": Metric(value=1.2, n=1192), "acc_norm_raw": Metric(value=25.9, n=1192)}),
        ResultRecord(model=SUBJECT, iteration=2, suite="gsm8k", status="failed", error="boom", provenance=prov),
        ResultRecord(model="Tiny-SPPO Iter 1", iteration=1, suite="alpaca_eval", judge=JUDGE, provenance=prov,
                     metrics={"lc_win_rate": Metric(value=21.5)}),
    ]


def _report(cli, tmp_path: Path, *options: str) -> tuple[Path, str]:
    run = RunDir(tmp_path / "run")
    for r in records():
        run.write(r)
    code, out, err = cli("report", "--run", run.root, "--out", tmp_path / "repo" / "README.md", "--no-plots",
                         "--model", SUBJECT, *options)
    assert code == 0, err
    return tmp_path / "repo" / ".eval_results", out


@pytest.fixture
def reported(cli, tmp_path) -> Path:
    """Every record's file (`--eval-results all`)."""
    folder, out = _report(cli, tmp_path, "--eval-results", "all")
    assert f"5 .eval_results files for {SUBJECT}" in out
    return folder


def test_by_default_only_complete_records_of_the_official_judge_or_lm_eval(cli, tmp_path):
    folder, out = _report(cli, tmp_path)
    assert f"3 .eval_results files for {SUBJECT}" in out  # not the local judge's Arena-Hard, not the partial IFEval
    assert sorted(p.name for p in folder.iterdir()) == ["alpaca_eval.yaml", "alpaca_eval_best-of-16.yaml", "gpqa.yaml"]
    for path in folder.iterdir():
        for e in parse_eval_result_entries(yaml.safe_load(path.read_text())):
            assert "partial" not in e.notes and "not the official judge" not in e.notes


def test_all_writes_the_rest_with_their_caveat_and_the_coverage_of_the_whole_suite(reported):
    (arena,) = parse_eval_result_entries(yaml.safe_load((reported / "arena_hard.yaml").read_text()))
    assert "judge: arena-local (SmolLM2-135M-Instruct via hf), not the official judge" in arena.notes
    ifeval = parse_eval_result_entries(yaml.safe_load((reported / "ifeval.yaml").read_text()))
    assert all("partial: 100 of 541 prompts scored, --limit 100" in e.notes for e in ifeval)


def test_one_file_per_suite_and_variant_of_the_cards_model_only(reported):
    assert sorted(p.name for p in reported.iterdir()) == [
        "alpaca_eval.yaml", "alpaca_eval_best-of-16.yaml", "arena_hard.yaml", "gpqa.yaml", "ifeval.yaml"]  # gsm8k
    # failed: no file


def test_huggingface_hubs_parser_accepts_every_file(reported):
    for path in reported.iterdir():
        data = yaml.safe_load(path.read_text())
        assert isinstance(data, list)
        for item in data:  # the shape the Hub documents for .eval_results/*.yaml
            assert set(item) <= {"dataset", "value", "verifyToken", "date", "source", "notes"}
            assert set(item["dataset"]) <= {"id", "task_id", "revision"}
        entries = parse_eval_result_entries(data)
        suite = path.stem.split("_best-of")[0]
        spec = get_suite(suite)
        assert {e.dataset_id for e in entries} == {spec.dataset.id}
        assert {e.dataset_revision for e in entries} == {spec.dataset.revision}
        assert {e.date for e in entries} == {"2026-11-02T09:30:00+00:00"}
        assert entries[0].task_id == suite  # the headline metric first, under the suite's own task id
    alpaca = parse_eval_result_entries(yaml.safe_load((reported / "alpaca_eval.yaml").read_text()))
    assert [(e.task_id, e.value) for e in alpaca] == [
        ("alpaca_eval", 33.3312), ("alpaca_eval/win_rate", 30.0), ("alpaca_eval/avg_length", 1610.4)]
    assert "judge: weighted_alpaca_eval_gpt4_turbo (gpt-4-1106-preview via openai), the official judge" in alpaca[0].notes
    (arena,) = parse_eval_result_entries(yaml.safe_load((reported / "arena_hard.yaml").read_text()))
    assert "not the official judge" in arena.notes and "95% CI: 16.2 to 20.5" in arena.notes
    (best,) = parse_eval_result_entries(yaml.safe_load((reported / "alpaca_eval_best-of-16.yaml").read_text()))
    assert "variant: best-of-16" in best.notes and "not comparable with single-sample decoding" in best.notes
    ifeval = parse_eval_result_entries(yaml.safe_load((reported / "ifeval.yaml").read_text()))
    assert "judge: none (lm-eval scoring)" in ifeval[0].notes


def test_reference_import_reads_the_files_back(cli, reported, tmp_path):
    out = tmp_path / "ref.json"
    code, stdout, err = cli("reference", "import", reported, "--model", SUBJECT, "--out", out)
    assert code == 0, err
    back = {(r.suite, r.variant): r for r in load_reference(out).records}
    wrote = {(r.suite, r.variant): r for r in records() if r.model == SUBJECT and r.status != "failed"}
    assert set(back) == set(wrote)
    for key, original in wrote.items():
        assert back[key].model == SUBJECT and back[key].iteration == 2
        assert back[key].status == original.status
        for name, metric in original.metrics.items():
            got = back[key].metrics[name]
            assert (got.value, got.n, got.ci_low, got.ci_high) == (metric.value, metric.n, metric.ci_low, metric.ci_high)
    # the files themselves, one by one, give the same records
    code, _, err = cli("reference", "import", *sorted(reported.iterdir()), "--model", SUBJECT, "--out", out)
    assert code == 0, err
    assert {(r.suite, r.variant) for r in load_reference(out).records} == set(wrote)


def test_the_model_name_comes_from_the_readme_beside(cli, tmp_path):
    reference = Path(__file__).resolve().parents[1] / "results" / "reference" / "Mistral7B-PairRM-SPPO-Iter1.json"
    code, _, err = cli("report", "--reference", reference, "--out", tmp_path / "repo" / "README.md", "--no-plots")
    assert code == 0, err
    code, stdout, err = cli("reference", "import", tmp_path / "repo", "--out", tmp_path / "ref.json")
    assert code == 0, err
    ref = load_reference(tmp_path / "ref.json")
    published = [r for r in load_reference(reference).records  # averages have no dataset of their own: no file
                 if r.model == ref.card_model and get_suite(r.suite).dataset is not None]
    assert ref.card_model == "Mistral7B-PairRM-SPPO-Iter1" and published
    assert {(r.suite, r.metrics[get_suite(r.suite).headline].value) for r in ref.records} == \
        {(r.suite, r.metrics[get_suite(r.suite).headline].value) for r in published}


def test_bad_input_is_one_line(cli, reported, tmp_path):
    loose = tmp_path / "loose"
    loose.mkdir()
    (loose / "a.yaml").write_text((reported / "alpaca_eval.yaml").read_text())
    hub_example = tmp_path / "gpqa.yaml"
    hub_example.write_text("- dataset:\n    id: Idavidrein/gpqa\n    task_id: gpqa_diamond\n  value: 0.412\n")
    broken = tmp_path / "broken.yaml"
    broken.write_text("- value: 3\n")
    cases = [((loose,), "pass --model NAME"),
             ((hub_example, "--model", "m"), "no entry for a known suite"),
             ((broken, "--model", "m"), "lacks a required field"),
             ((tmp_path / "empty_dir_missing.yaml", "--model", "m"), "no such .eval_results file")]
    for args, message in cases:
        code, out, err = cli("reference", "import", *args, "--out", tmp_path / "r.json")
        assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "r.json").exists()


def test_no_eval_results_flag_writes_none(cli, tmp_path):
    run = RunDir(tmp_path / "run")
    for r in records():
        run.write(r)
    code, _, err = cli("report", "--run", run.root, "--out", tmp_path / "card.md", "--no-plots", "--no-eval-results")
    assert code == 0, err
    assert not (tmp_path / ".eval_results").exists()
