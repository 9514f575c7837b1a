"""`sppo-bench judge calibrate`: the arithmetic against textbook computations written here, judges with known behaviour
(copying, inverting, position-biased) through the suite's own prompt builder, the stored calibration carried by a
judged record, the published reference pulled by `data pull`, the OpenAI-compatible path, and one-line errors."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from harness.backends.base import BackendOptions, ChatRequest, ChoiceRequest, Completion
from harness.calibration import SUITES_WITH_REFERENCE, calibrate, reference_files, store, summarize
from harness.engines.context import Injected, ModelRef, RunContext, RunOptions
from harness.errors import UserError
from harness.settings import Settings
from tests.openai_server import judge_replies, openai_server

BALANCED = [1.9, 1.1, 1.8, 1.2, 1.95, 1.05, 1.7, 1.3]
"""Official preferences of the test pairs: model preferred on pairs 0, 2, 4, 6."""


def _annotations(prefs: list[float], generator: str = "test-model") -> list[dict]:
    return [{"instruction": f"Instruction {i}: say something about topic {i}.", "output_1": f"Baseline reply {i:03d}.",
             "generator_1": "gpt4_1106_preview", "dataset": "test", "output_2": f"Model reply {i:03d} by {generator}.",
             "generator_2": generator, "annotator": "weighted_alpaca_eval_gpt4_turbo", "preference": p}
            for i, p in enumerate(prefs)]


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


class VerdictJudge:
    """Judge double (official ChatBackend and local ChoiceScorer at once): finds the pair in the prompt and which of its
    outputs is shown first, then answers `decide(pair index, model shown second) -> model wins` with P = 0.9."""

    name = "verdict-double"

    def __init__(self, rows: list[dict], decide, tag: str) -> None:
        self.rows, self.decide, self.tag = rows, decide, tag
        self.seen: list[tuple[int, bool]] = []

    @property
    def fingerprint(self) -> str:
        return f"verdict-double:{self.tag}"

    def _second_wins(self, messages) -> bool:
        text = "\n".join(m["content"] for m in messages)
        for i, row in enumerate(self.rows):
            if row["output_1"] in text and row["output_2"] in text:
                model_second = text.index(row["output_2"]) > text.index(row["output_1"])
                self.seen.append((i, model_second))
                return self.decide(i, model_second) == model_second
        return True  # a prompt about some other pair (a judged run's own items): any verdict

    def generate(self, requests: list[ChatRequest]) -> list[Completion]:
        out = []
        for r in requests:
            second = self._second_wins(r.messages)
            top = {"M": math.log(0.9 if second else 0.1), "m": math.log(0.1 if second else 0.9)}
            out.append(Completion("M" if second else "m", 10, 1, top_logprobs=[top]))
        return out

    def choice_logprobs(self, requests: list[ChoiceRequest]) -> list[dict[str, float]]:
        return [{"M": math.log(0.9 if s else 0.1), "m": math.log(0.1 if s else 0.9)}
                for s in (self._second_wins(r.messages) for r in requests)]


def _calibrate(tmp_path: Path, decide, tag: str, prefs: list[float] = BALANCED, judge: str = "official"):
    rows = _annotations(prefs)
    double = VerdictJudge(rows, decide, tag)
    settings = Settings(home=tmp_path / "home", offline=True)
    tmp_path.mkdir(parents=True, exist_ok=True)
    result = calibrate(settings, reference_files([_write(tmp_path / "ann.json", rows)]), judge,
                       injected=Injected(judge=double))
    return result, double, settings


# --- arithmetic ------------------------------------------------------------------------------------------------------


def test_summary_against_a_hand_built_confusion_matrix():
    # judge x official: 20 both "model", 5 judge only, 10 official only, 15 both "baseline"; preference 1.9 / 1.1
    cells = [(True, True)] * 20 + [(True, False)] * 5 + [(False, True)] * 10 + [(False, False)] * 15
    judge = np.array([1.9 if j else 1.1 for j, _ in cells])
    official = np.array([1.9 if o else 1.1 for _, o in cells])
    swapped = [1.9 if j else 1.1 for j, _ in cells[:40]] + [1.1 if j else 1.9 for j, _ in cells[40:]]
    s = summarize(official, judge, swapped, "hand-built", "fp")

    n = 50
    p_o = (20 + 15) / n
    p_judge, p_official = (20 + 5) / n, (20 + 10) / n
    p_e = p_judge * p_official + (1 - p_judge) * (1 - p_official)
    assert s.n == n and s.agreement == pytest.approx(p_o)
    assert s.kappa == pytest.approx((p_o - p_e) / (1 - p_e)) and s.kappa == pytest.approx(0.4)
    assert s.majority_baseline == pytest.approx(30 / 50)
    # win rates: judge (25 x 0.9 + 25 x 0.1) / 50 = 50 points, official (30 x 0.9 + 20 x 0.1) / 50 = 58 points
    assert s.bias == pytest.approx(50.0 - 58.0)
    # the textbook paired bootstrap: resample pairs, mean of per-pair differences, 2.5 / 97.5 percentiles
    d = 100 * (judge - official)
    draws = d[np.random.default_rng(12345).integers(0, n, (20_000, n))].mean(axis=1)
    low, high = np.percentile(draws, [2.5, 97.5])
    assert s.bias_ci_low == pytest.approx(low, abs=0.75) and s.bias_ci_high == pytest.approx(high, abs=0.75)
    assert s.position_consistency == pytest.approx(40 / 50)  # the last 10 pairs flip with the order
    assert s.reference == "hand-built" and s.judge_fingerprint == "fp"


def test_constant_verdicts_leave_kappa_undefined_and_nothing_stored(tmp_path):
    result, _, settings = _calibrate(tmp_path, lambda i, second: False, "baseline-always", prefs=[1.1, 1.2, 1.3])
    assert result.summary.agreement == 1.0 and math.isnan(result.summary.kappa)
    stored = store(settings, result)
    assert stored.stored is None and "kappa is undefined" in str(stored.not_stored)
    assert not (settings.home / "calibration").exists()


# --- judges with known behaviour ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("judge", ["official", "local"])
def test_a_judge_copying_the_official_verdicts_agrees_fully(tmp_path, judge):
    result, double, _ = _calibrate(tmp_path, lambda i, second: BALANCED[i] > 1.5, "copy", judge=judge)
    s = result.summary
    assert s.n == 8 and s.agreement == 1.0 and s.kappa == pytest.approx(1.0) and s.majority_baseline == 0.5
    assert s.position_consistency == 1.0
    # each pair was shown once in each order, through alpaca_eval's prompt builder
    assert sorted(double.seen) == sorted((i, o) for i in range(8) for o in (False, True))
    assert result.judge.official == (judge == "official") and s.judge_fingerprint == "verdict-double:copy"


def test_a_judge_inverting_the_official_verdicts_agrees_never(tmp_path):
    result, _, _ = _calibrate(tmp_path, lambda i, second: BALANCED[i] <= 1.5, "invert")
    s = result.summary
    assert s.agreement == 0.0
    assert s.kappa == pytest.approx((0 - 0.5) / (1 - 0.5))  # p_o = 0, p_e = 0.5 x 0.5 + 0.5 x 0.5
    # the judge's win rate is 0.9/0.1 mirrored: 4 x 0.9 + 4 x 0.1 over 8 = 50 points, the official 50 points as well
    assert result.judge_win_rate == pytest.approx(50.0) and result.official_win_rate == pytest.approx(50.0)


def test_position_consistency_of_a_position_biased_judge(tmp_path):
    # on even pairs the judge always prefers the output shown second; on odd pairs it copies the official verdict
    result, _, _ = _calibrate(tmp_path, lambda i, second: second if i % 2 == 0 else BALANCED[i] > 1.5, "biased")
    assert result.summary.position_consistency == pytest.approx(4 / 8)
    always_second, _, _ = _calibrate(tmp_path / "b", lambda i, second: second, "second")
    assert always_second.summary.position_consistency == 0.0


def test_unreadable_verdicts_are_left_out_and_counted(tmp_path):
    prefs = [*BALANCED, float("nan"), None]  # no official verdict on the last two pairs
    result, double, _ = _calibrate(tmp_path, lambda i, second: BALANCED[i] > 1.5, "copy", prefs=prefs)
    assert result.summary.n == 8 and result.left_out == 2
    assert {i for i, _ in double.seen} == set(range(8))  # pairs without an official verdict are not judged


# --- stored and attached -------------------------------------------------------------------------------------------


def test_the_stored_calibration_is_attached_to_the_judged_record(tmp_path, calibration_home):
    from harness.catalog import get_suite
    from harness.engines.judged import run_suite
    from harness.records import ResultRecord
    from harness.store import RunDir
    from tests.fixtures.judged.doubles import RecordingGenerator

    rows = _annotations(BALANCED)
    double = VerdictJudge(rows, lambda i, second: BALANCED[i] > 1.5 if i < 6 else not BALANCED[i] > 1.5, "attach")
    settings = Settings(home=calibration_home, offline=True)

    def judged(run: str) -> ResultRecord:
        ctx = RunContext(settings=settings, run=RunDir(tmp_path / run), backend=BackendOptions(backend="fake"),
                         options=RunOptions(limit=2, judge="official", max_new_tokens=8),
                         injected=Injected(generator=RecordingGenerator(), judge=double))
        return run_suite(get_suite("alpaca_eval"), ModelRef("ckpt", "m1"), ctx)

    before = judged("run1")
    assert before.judge is not None and before.judge.calibration is None  # not calibrated yet: the card says so
    result = store(settings, calibrate(settings, reference_files([_write(tmp_path / "a.json", rows)]), "official",
                                       injected=Injected(judge=double)))
    assert result.stored is not None and result.stored.parent == calibration_home / "calibration"
    after = judged("run2")
    assert after.judge is not None and after.judge.calibration == result.summary
    assert after.judge.calibration.agreement == pytest.approx(6 / 8)
    assert after.judge.fingerprint == result.summary.judge_fingerprint
    reloaded = ResultRecord.model_validate_json(after.model_dump_json())
    assert reloaded.judge is not None and reloaded.judge.calibration == result.summary
    result.stored.write_text("{truncated")
    with pytest.raises(UserError, match="unreadable judge calibration.*judge calibrate"):
        judged("run3")


@pytest.fixture
def calibration_home(tmp_path, monkeypatch, shared_data) -> Path:
    """A fresh cache home holding the AlpacaEval eval set, pulled from ../shared/data."""
    from harness.data import fetch, pull

    home = tmp_path / "home"
    monkeypatch.setattr(fetch, "fetch_url", _unreachable)
    monkeypatch.setattr(fetch, "wheel_file", _no_pypi)
    [outcome] = pull(Settings(home=home, offline=True), ["alpaca_eval"], data_dir=shared_data)
    assert outcome.status == "pulled", outcome.message
    return home


def _unreachable(url_file):
    from harness.data import fetch

    raise fetch.Unavailable(f"{url_file.url}: network disabled in tests")


def _no_pypi(settings, wheel, mirrors=()):
    from harness.data import fetch

    raise fetch.Unavailable("PyPI disabled in this test")


# --- the command line --------------------------------------------------------------------------------------------------


def test_cli_markdown_and_json_on_given_files(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("SPPO_BENCH_HOME", str(tmp_path / "home"))
    a = _write(tmp_path / "a.json", _annotations(BALANCED, "model-a"))
    b = _write(tmp_path / "b.json", _annotations([1.4, 1.5, 1.2, 1.9], "model-b"))
    args = ["judge", "calibrate", "--suite", "alpaca_eval", "--judge", "local", "--judge-backend", "fake",
            "--reference-judgments", a, "--reference-judgments", b, "--limit", "3"]
    code, out, err = cli(*args, "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    pairs = data["pairs"]
    assert [p["generator"] for p in pairs] == ["model-a"] * 3 + ["model-b"] * 3
    assert [p["official"] for p in pairs] == [*BALANCED[:3], 1.4, 1.5, 1.2]
    verdicts = [(p["judge"] > 1.5, p["official"] > 1.5) for p in pairs]
    summary = data["summary"]
    assert summary["n"] == 6 and summary["agreement"] == pytest.approx(np.mean([j == o for j, o in verdicts]))
    assert summary["majority_baseline"] == pytest.approx(4 / 6)  # model preferred on 2 of 6 (1.5 is a draw)
    assert summary["judge_fingerprint"] == data["judge"]["fingerprint"] == "fake:fake"
    assert summary["reference"] == f"{a}[:3], {b}[:3]"
    stored = json.loads(Path(data["stored"]).read_text())
    assert stored["summary"] == summary and stored["pairs"] == pairs

    code, md, err = cli(*args)
    assert code == 0, err
    assert "| pairs judged (n) | 6 |" in md and f"| {100 * summary['agreement']:.1f}% |" in md
    assert f"stored: {data['stored']}" in md


def test_cli_on_the_published_pairs_pulled_from_a_mirror(cli, tmp_path, monkeypatch, shared_data):
    from harness.data import fetch

    monkeypatch.setattr(fetch, "fetch_url", _unreachable)
    monkeypatch.setenv("SPPO_BENCH_HOME", str(tmp_path / "home"))
    args = ("judge", "calibrate", "--judge", "local", "--judge-backend", "fake", "--limit", "2", "--format", "json")
    code, _, err = cli(*args)
    assert code == 2 and err.count("\n") == 1 and "data pull --suites judge_calibration" in err

    code, out, err = cli("data", "pull", "--suites", "judge_calibration", "--data-dir", shared_data)
    assert code == 0 and re.search(r"^judge_calibration +pulled", out, re.M), err
    code, out, err = cli(*args)
    assert code == 0, err
    pairs = json.loads(out)["pairs"]
    expected = []
    for model in sorted(["OpenHermes-2.5-Mistral-7B", "gpt-3.5-turbo-1106"]):
        path = shared_data / "alpaca_eval" / "results" / model / "weighted_alpaca_eval_gpt4_turbo" / "annotations.json"
        expected += [(r["instruction"], model, float(r["preference"])) for r in json.loads(path.read_text())[:2]]
    assert [(p["instruction"], p["generator"], p["official"]) for p in pairs] == expected


def test_a_tampered_mirror_copy_is_refused(cli, tmp_path, monkeypatch, shared_data):
    from harness.data import fetch

    monkeypatch.setattr(fetch, "fetch_url", _unreachable)
    monkeypatch.setenv("SPPO_BENCH_HOME", str(tmp_path / "home"))
    mirror = tmp_path / "mirror"
    for model in ("OpenHermes-2.5-Mistral-7B", "gpt-3.5-turbo-1106"):
        rel = Path("alpaca_eval/results") / model / "weighted_alpaca_eval_gpt4_turbo" / "annotations.json"
        rows = json.loads((shared_data / rel).read_text())
        rows[0]["preference"] = 2.0 if model == "gpt-3.5-turbo-1106" else rows[0]["preference"]
        (mirror / rel).parent.mkdir(parents=True)
        (mirror / rel).write_text(json.dumps(rows) if model == "gpt-3.5-turbo-1106" else (shared_data / rel).read_text())
    code, _, err = cli("data", "pull", "--suites", "judge_calibration", "--data-dir", mirror)
    assert code == 2 and err.count("\n") == 1 and "does not match the pinned" in err


def test_an_openai_compatible_judge_is_asked_through_the_official_prompt(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("SPPO_BENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CAL_TEST_KEY", "sk-calibration-test")
    rows = _annotations(BALANCED[:2])
    ann = _write(tmp_path / "ann.json", rows)
    # the fake server answers like the official judge's logprobs, always preferring the output shown second ("M")
    with openai_server(judge_replies) as server:
        code, out, err = cli("judge", "calibrate", "--judge", "official", "--judge-base-url", server.url,
                             "--judge-api-key-env", "CAL_TEST_KEY", "--judge-model", "llama-3-70b-instruct",
                             "--reference-judgments", ann, "--format", "json")
    assert code == 0, err
    assert len(server.bodies) == 4 and {b["model"] for b in server.bodies} == {"llama-3-70b-instruct"}
    assert all(b["logprobs"] and b["top_logprobs"] == 5 for b in server.bodies)
    for row in rows:  # each pair asked once in each order
        prompts = [m["content"] for b in server.bodies for m in b["messages"] if row["instruction"] in m["content"]]
        orders = {p.index(row["output_1"]) < p.index(row["output_2"]) for p in prompts}
        assert len(prompts) == 2 and orders == {True, False}
    result = json.loads(out)
    assert result["summary"]["n"] == 2 and result["summary"]["position_consistency"] == 0.0  # pure position bias
    assert "sk-calibration-test" not in out + err


@pytest.mark.parametrize("args, message", [
    (["--suite", "mt_bench"], "--suite mt_bench: published official verdicts"),
    (["--limit", "0"], "--limit 0: must be at least 1"),
    (["--reference-judgments", "MISSING"], "MISSING"),
    (["--reference-judgments", "NOTJSON"], "not JSON"),
    (["--reference-judgments", "NOTANNOTATIONS"], "annotation #0"),
    (["--format", "csv"], "invalid choice"),
])
def test_bad_input_is_one_line_exit_2(cli, tmp_path, monkeypatch, args, message):
    monkeypatch.setenv("SPPO_BENCH_HOME", str(tmp_path / "home"))
    files = {"MISSING": tmp_path / "missing.json", "NOTJSON": tmp_path / "bad.json",
             "NOTANNOTATIONS": tmp_path / "other.json"}
    files["NOTJSON"].write_text("{not json")
    files["NOTANNOTATIONS"].write_text(json.dumps([{"question_id": 1}]))
    args = [str(files[a]) if a in files else a for a in args]
    message = str(files[message]) if message in files else message
    code, out, err = cli("judge", "calibrate", "--judge", "local", "--judge-backend", "fake", *args)
    assert code == 2 and out == "" and err.count("\n") == 1 and err.startswith("sppo-bench: error:")
    assert message in err


def test_a_card_cites_a_calibration_made_after_the_run(cli, tmp_path, monkeypatch, shared_data):
    """Records made before `judge calibrate` get the stored calibration at report time (their unit key does not
    cover it, so they are not rerun). The calibration sits where `judge calibrate` stores one: under the AlpacaEval
    local judge's own id and prompt hash (the only suite with published verdicts to calibrate against)."""
    from harness.data import pull
    from harness.engines.judge_backend import calibration_path
    from harness.records import CalibrationSummary
    from harness.settings import Settings

    home = tmp_path / "home"
    monkeypatch.setenv("SPPO_BENCH_HOME", str(home))
    pull(Settings(home=home, offline=True), ["alpaca_eval"], data_dir=shared_data)
    run = tmp_path / "run"
    code, _, err = cli("eval", "m", "--backend", "fake", "--judge", "local", "--judge-backend", "fake", "--suites",
                       "alpaca_eval", "--limit", "2", "--out", run)
    assert code == 0, err
    record = json.loads(next((run / "records").glob("*/alpaca_eval.json")).read_text())
    judge = record["judge"]
    assert judge["calibration"] is None and judge["id"] == "alpaca_eval/local-choice"
    assert record["suite"] in SUITES_WITH_REFERENCE  # a judge `judge calibrate` can calibrate
    summary = CalibrationSummary(n=60, agreement=0.517, kappa=0.03, majority_baseline=0.983, bias=53.0,
                                 bias_ci_low=46.8, bias_ci_high=58.9, position_consistency=0.0,
                                 reference="test", judge_fingerprint=judge["fingerprint"])
    path = calibration_path(Settings(home=home, offline=True), judge["id"], judge["prompt_hash"], judge["fingerprint"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"summary": summary.model_dump()}))
    code, _, err = cli("report", "--run", run, "--out", tmp_path / "card.md", "--no-plots")
    assert code == 0, err
    card = (tmp_path / "card.md").read_text()
    assert "agrees with the official judge on 52% of 60 published pairs" in card and "plumbing check" in card
