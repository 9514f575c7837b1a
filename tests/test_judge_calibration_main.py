"""The main job's judge calibration (harness.calibration.main_job): the local AlpacaEval judge named by the records is
calibrated once per judge fingerprint on published pairs (both orders), stored under the cache home, reused by later
runs without a judge call, extended from the judge cache when more pairs are asked for, never stored for a judge other
than the records', and cited by the card."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.alpaca_eval import judging
from harness.backends.fake import FakeBackend
from harness.calibration.main_job import ensure_calibrated, local_judges
from harness.engines.context import Injected
from harness.records import JudgeInfo, Metric, Provenance, ResultRecord
from harness.settings import Settings

MODELS = ("OpenHermes-2.5-Mistral-7B", "gpt-3.5-turbo-1106")


@pytest.fixture
def home(tmp_path, monkeypatch, shared_data) -> Path:
    from harness.data import fetch, pull

    monkeypatch.setattr(fetch, "fetch_url", _unreachable)
    home = tmp_path / "home"
    for outcome in pull(Settings(home=home, offline=True), ["judge_calibration"], data_dir=shared_data):
        assert outcome.status == "pulled", outcome.message
    return home


def _unreachable(url_file):
    from harness.data import fetch

    raise fetch.Unavailable(f"{url_file.url}: network disabled in tests")


def _record(fingerprint: str, suite: str = "alpaca_eval", official: bool = False, label: str = "m") -> ResultRecord:
    judge = JudgeInfo(id=judging.LOCAL.id if suite == "alpaca_eval" else f"{suite}/local-choice", model="fake",
                      prompt_hash=judging.spec_prompt_hash(judging.LOCAL), backend="fake", official=official,
                      fingerprint=fingerprint)
    metric = "win_rate" if suite == "alpaca_eval" else "average"
    return ResultRecord(model=label, suite=suite, status="partial", metrics={metric: Metric(value=5.0, n=2)},
                        judge=judge, provenance=Provenance(source="run"))


def test_calibrated_once_per_fingerprint_then_reused_and_extended_from_the_cache(home, shared_data):
    settings = Settings(home=home, offline=True)
    judge = FakeBackend("fake")
    records = [_record(judge.fingerprint, label="base"), _record(judge.fingerprint, label="iter 1"),
               _record(judge.fingerprint, suite="mt_bench"), _record("other", official=True)]
    assert [j.fingerprint for j in local_judges(records)] == [judge.fingerprint]  # one judge, AlpacaEval's only
    lines: list[str] = []

    [first] = ensure_calibrated(settings, records, pairs=6, log=lines.append, injected=Injected(judge=judge))
    assert first.status == "calibrated" and judge.choice_calls == 12  # 6 pairs x 2 orders, each asked once
    stored = json.loads(next((home / "calibration").glob("*.json")).read_text())
    assert stored["summary"]["n"] == 6 and stored["judge"]["fingerprint"] == judge.fingerprint
    # 3 pairs of each leaderboard model, in file order
    expected = []
    for model in MODELS:
        path = shared_data / "alpaca_eval/results" / model / "weighted_alpaca_eval_gpt4_turbo/annotations.json"
        expected += [(r["instruction"], model) for r in json.loads(path.read_text())[:3]]
    assert sorted((p["instruction"], p["generator"]) for p in stored["pairs"]) == sorted(expected)
    assert stored["single_order"]["reads"] == 12 and stored["combination"] == judging.COMBINATION
    assert "6 published pairs (both orders)" in lines[0] and "s per pair" in lines[0]

    [again] = ensure_calibrated(settings, records, pairs=6, log=lines.append, injected=Injected(judge=judge))
    assert again.status == "reused" and judge.choice_calls == 12  # no judge call

    [more] = ensure_calibrated(settings, records, pairs=8, log=lines.append, injected=Injected(judge=judge))
    assert more.status == "calibrated" and judge.choice_calls == 12 + 4  # only the 2 new pairs, both orders
    assert json.loads(next((home / "calibration").glob("*.json")).read_text())["summary"]["n"] == 8

    from harness.reporting import with_stored_calibrations

    cited = with_stored_calibrations(records[:1], settings)[0]
    assert cited.judge is not None and cited.judge.calibration is not None and cited.judge.calibration.n == 8


def test_a_judge_other_than_the_records_is_not_stored(home):
    settings = Settings(home=home, offline=True)
    [outcome] = ensure_calibrated(settings, [_record("fake:another-model")], pairs=2, log=lambda line: None,
                                  injected=Injected(judge=FakeBackend("fake")))
    assert outcome.status == "skipped" and "is not the records'" in outcome.line
    assert not (home / "calibration").exists() or not list((home / "calibration").glob("*.json"))


def test_train_and_eval_refuses_a_negative_pair_count(cli, tmp_path):
    code, out, err = cli("train-and-eval", "--iters", "1", "--calibration-pairs", "-1", "--out", tmp_path / "o")
    assert code == 2 and out == "" and err.count("\n") == 1 and "--calibration-pairs -1" in err
