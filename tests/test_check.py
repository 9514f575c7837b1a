"""Regression check: verdicts, tolerance rule and where its SE comes from, label/iteration matching, failing closed on
missing headline metrics and partial results, JUnit XML, exit codes 0/1/2."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm

from harness import check
from harness.errors import UserError
from harness.records import Coverage, Metric, Provenance, ResultRecord
from harness.store import RunDir, load_reference

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "results" / "reference" / "Mistral7B-PairRM-SPPO-Iter1.json"


def rec(model: str, suite: str, metrics: dict[str, Metric], **kw) -> ResultRecord:
    return ResultRecord(model=model, suite=suite, metrics=metrics, provenance=Provenance(source="run"), **kw)


def run_from_reference(root: Path, lower: tuple[str, str, float] | None = None) -> Path:
    """A run directory holding the reference's own numbers, with one metric of Iter 2 MT-Bench optionally lowered."""
    run = RunDir(root)
    for r in load_reference(REFERENCE).records:
        if lower and r.suite == lower[0] and r.iteration == 2:
            r.metrics[lower[1]] = r.metrics[lower[1]].model_copy(update={"value": r.metrics[lower[1]].value - lower[2]})
        run.write(r)
    return root


def test_identical_run_passes(cli, tmp_path):
    code, out, err = cli("check", "--reference", REFERENCE, "--results", run_from_reference(tmp_path / "run"))
    assert (code, err) == (0, "")
    assert "OK: 57 metrics: 50 pass, 7 info" in out and "REGRESSION" not in out


def test_one_metric_lowered_below_tolerance_fails(cli, tmp_path):
    run = run_from_reference(tmp_path / "run", lower=("mt_bench", "turn_1", 0.6))
    junit = tmp_path / "reports" / "check.xml"
    code, out, err = cli("check", "--reference", REFERENCE, "--results", run, "--junit", junit)
    assert code == 1 and err == ""
    (bad,) = [line for line in out.splitlines() if "REGRESSION" in line]
    assert bad == "| Mistral7B-PairRM-SPPO Iter 2 | mt_bench | turn_1 | 7.90 | 7.30 | -0.60 | 0.5 | — / — | **REGRESSION** |"
    suite = ET.parse(junit).getroot()
    assert (suite.get("tests"), suite.get("failures")) == ("57", "1")
    (failed,) = [c for c in suite.iter("testcase") if c.find("failure") is not None]
    assert failed.get("name") == "Mistral7B-PairRM-SPPO Iter 2 / mt_bench / turn_1"


def test_drop_within_tolerance_passes_and_wider_tolerance_forgives(cli, tmp_path):
    run = run_from_reference(tmp_path / "run", lower=("mt_bench", "turn_1", 0.4))
    assert cli("check", "--reference", REFERENCE, "--results", run)[0] == 0
    assert cli("check", "--reference", REFERENCE, "--results", run, "--abs-tol", "0.3")[0] == 1
    assert cli("check", "--reference", REFERENCE, "--results", run, "--abs-tol", "0.1", "--sigma", "0")[0] == 1


def test_a_drop_exactly_at_the_tolerance_passes():
    ref = [rec("m", "mt_bench", {"turn_1": Metric(value=7.90)})]
    (c,) = check.compare(ref, [rec("m", "mt_bench", {"turn_1": Metric(value=7.40)})], abs_tol=0.5)
    assert c.verdict == "pass"
    (c,) = check.compare(ref, [rec("m", "mt_bench", {"turn_1": Metric(value=7.39)})], abs_tol=0.5)
    assert c.verdict == "regression"


def test_stderr_widens_the_tolerance():
    ref = [rec("m", "mt_bench", {"average": Metric(value=7.0)})]
    res = [rec("m", "mt_bench", {"average": Metric(value=6.0, stderr=0.6)})]
    (c,) = check.compare(ref, res, abs_tol=0.5, sigma=2.0)
    assert c.verdict == "pass" and c.tolerance == pytest.approx(1.2)
    (c,) = check.compare(ref, res, abs_tol=0.5, sigma=1.0)
    assert c.verdict == "regression"


def test_ci_bounds_stand_in_for_a_missing_stderr():
    ref = [rec("m", "arena_hard", {"score": Metric(value=23.3, ci_low=21.5, ci_high=25.1)})]
    res = [rec("m", "arena_hard", {"score": Metric(value=21.0)})]
    (c,) = check.compare(ref, res, abs_tol=0.0, sigma=2.0)
    assert c.tolerance == pytest.approx(2 * 3.6 / (2 * norm.ppf(0.975))) and c.verdict == "regression"
    assert c.se_from == "recorded / —"


def test_improvements_fail_only_when_two_sided(cli, tmp_path):
    run = run_from_reference(tmp_path / "run", lower=("alpaca_eval", "lc_win_rate", -3.0))
    code, out, _ = cli("check", "--reference", REFERENCE, "--results", run)
    assert code == 0 and "improvement" in out
    code, out, _ = cli("check", "--reference", REFERENCE, "--results", run, "--two-sided")
    assert code == 1 and "**CHANGED**" in out


def test_one_sided_metrics_are_listed(tmp_path):
    ref = [rec("m", "mt_bench", {"average": Metric(value=7.0), "turn_1": Metric(value=7.5)})]
    res = [rec("m", "mt_bench", {"average": Metric(value=7.0)}), rec("m", "ifeval", {"strict_acc": Metric(value=40)})]
    comps = check.compare(ref, res)
    assert [(c.suite, c.metric, c.verdict) for c in comps] == [
        ("mt_bench", "average", "pass"), ("mt_bench", "turn_1", "only in reference"),
        ("ifeval", "strict_acc", "only in results")]
    text = check.markdown(comps)
    assert "| m | mt_bench | turn_1 | 7.50 | — | — | — | — | only in reference |" in text
    assert "OK: 3 metrics: 1 pass, 1 only in reference, 1 only in results" in text
    assert check.exit_code(comps) == 0


def test_match_by_iteration_pairs_differently_labelled_rows(cli, tmp_path):
    run = RunDir(tmp_path / "run")
    run.write(rec("my-run/iter2", "mt_bench", {"turn_1": Metric(value=7.0)}, iteration=2))
    code, _, err = cli("check", "--reference", REFERENCE, "--results", run.root)
    assert code == 2 and "--match iteration" in err
    code, out, _ = cli("check", "--reference", REFERENCE, "--results", run.root, "--match", "iteration")
    assert code == 1
    assert "| Mistral7B-PairRM-SPPO Iter 2 | mt_bench | turn_1 | 7.90 | 7.00 | -0.90 | 0.5 | — / — | **REGRESSION** |" in out


def test_a_failed_result_record_fails_the_check(cli, tmp_path):
    run = RunDir(tmp_path / "run")
    run.write(ResultRecord(model="Mistral7B-PairRM-SPPO Iter 1", suite="mt_bench", status="failed", error="judge down",
                           provenance=Provenance(source="run")))
    code, out, _ = cli("check", "--reference", REFERENCE, "--results", run.root)
    assert code == 1
    assert "| Mistral7B-PairRM-SPPO Iter 1 | mt_bench | turn_1 | 7.63 | — | — | — | — | **FAILED** |" in out


def test_ambiguous_iteration_match_is_a_user_error():
    ref = [rec("a Iter 1", "mt_bench", {"average": Metric(value=7)}, iteration=1),
           rec("b Iter 1", "mt_bench", {"average": Metric(value=6)}, iteration=1)]
    with pytest.raises(UserError, match="use --match label"):
        check.compare(ref, ref, match="iteration")


def test_card_checked_against_card_on_the_fly(cli, seed_card, tmp_path):
    lowered = seed_card.read_text().replace("| Mistral7B-PairRM-SPPO Iter 3 | 7.84 |", "| Mistral7B-PairRM-SPPO Iter 3 | 6.84 |")
    newer = tmp_path / "newer.md"
    newer.write_text(lowered)
    assert cli("check", "--reference", seed_card, "--results", seed_card)[0] == 0
    code, out, _ = cli("check", "--reference", seed_card, "--results", newer)
    assert code == 1 and out.count("REGRESSION") == 1


@pytest.mark.parametrize("case", ["missing", "wrong_schema", "unknown_suite", "unknown_metric", "junit_inside_file",
                                  "negative_tol"])
def test_check_bad_input_exits_2_and_writes_nothing(cli, tmp_path, case):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    results = tmp_path / "results.json"
    args = ["--reference", REFERENCE, "--results", results]
    good = rec("Mistral7B-PairRM-SPPO Iter 1", "mt_bench", {"turn_1": Metric(value=7.6)})
    results.write_text(good.model_dump_json())
    if case == "missing":
        args[3] = tmp_path / "nope"
    elif case == "wrong_schema":
        results.write_text('{"suite": "mt_bench", "metrics": {"turn_1": 7.6}}')
    elif case == "unknown_suite":
        results.write_text(good.model_copy(update={"suite": "mt_bnech"}).model_dump_json())
    elif case == "unknown_metric":
        results.write_text(good.model_copy(update={"metrics": {"turn1": Metric(value=1)}}).model_dump_json())
    elif case == "junit_inside_file":
        args += ["--junit", blocker / "check.xml"]
    elif case == "negative_tol":
        args += ["--abs-tol", "-1"]
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out, err = cli("check", *args)
    assert code == 2 and out == "" and err.count("\n") == 1 and err.startswith("sppo-bench: error: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == before and blocker.read_text() == "x"


def test_output_lengths_are_informational_never_regressions(tmp_path, cli):
    from harness.records import Metric, Provenance, ResultRecord
    from harness.store import RunDir

    def rec(root, length):
        RunDir(root).write(ResultRecord(model="m", suite="alpaca_eval", provenance=Provenance(source="test"),
                                        metrics={"win_rate": Metric(value=20.0), "avg_length": Metric(value=length)}))

    rec(tmp_path / "ref", 2000.0)
    rec(tmp_path / "res", 900.0)
    code, out, _ = cli("check", "--reference", tmp_path / "ref", "--results", tmp_path / "res")
    assert code == 0 and "| avg_length |" in out and "info" in out


# ------------------------------------------------------------------------------------ fail-closed: missing, partial

LC_NOTE = ("LC win rate unavailable: alpaca_eval's GLM needs df_gamed.csv from the hub dataset tatsu-lab/alpaca_eval, "
           "not found; run `sppo-bench data pull --suites alpaca_eval` where the hub is reachable (raw win rate is "
           "unaffected)")


def alpaca(root: Path, metrics: dict[str, Metric], **kw) -> Path:
    RunDir(root).write(rec("m", "alpaca_eval", metrics, **kw))
    return root


@pytest.fixture
def lc_case(tmp_path: Path) -> tuple[Path, Path]:
    """A complete reference with LC, and results whose record lacks LC and says why."""
    ref = alpaca(tmp_path / "ref", {"lc_win_rate": Metric(value=24.79), "win_rate": Metric(value=23.51)})
    res = alpaca(tmp_path / "res", {"win_rate": Metric(value=23.4, stderr=1.4, n=805)}, notes=[LC_NOTE],
                 coverage=Coverage(total=805, scored=805, available=805))
    return ref, res


def test_missing_headline_lc_fails_with_a_one_line_reason(cli, lc_case, tmp_path):
    ref, res = lc_case
    junit = tmp_path / "check.xml"
    code, out, err = cli("check", "--reference", ref, "--results", res, "--junit", junit)
    assert (code, err) == (1, "")
    assert "| m | alpaca_eval | lc_win_rate | 24.79 | — | — | — | — | **MISSING** |" in out
    (reason,) = [line for line in out.splitlines() if line.startswith("- MISSING")]
    assert reason == (f"- MISSING: m / alpaca_eval / lc_win_rate: the result record has no lc_win_rate: {LC_NOTE}; "
                      "pass --allow-missing alpaca_eval:lc_win_rate to accept")
    assert out.rstrip().endswith("FAIL: 2 metrics: 1 missing, 1 pass")
    (failed,) = [c for c in ET.parse(junit).getroot().iter("testcase") if c.find("failure") is not None]
    assert "df_gamed.csv" in failed.find("failure").get("message")  # type: ignore[union-attr]


@pytest.mark.parametrize("allow", ["alpaca_eval:lc_win_rate", "alpaca_eval"])
def test_allow_missing_opts_out_explicitly(cli, lc_case, allow):
    ref, res = lc_case
    code, out, _ = cli("check", "--reference", ref, "--results", res, "--allow-missing", allow)
    assert code == 0 and "| missing (allowed) |" in out and "(allowed by --allow-missing)" in out
    code, _, err = cli("check", "--reference", ref, "--results", res, "--allow-missing", "alpaca_eval:lc")
    assert code == 2 and "lc_win_rate" in err and err.count("\n") == 1


def test_missing_suite_and_average_name_why_but_absent_models_do_not_fail(tmp_path):
    ref = [rec("m", "mt_bench", {"average": Metric(value=7.0)}), rec("m", "ifeval", {"strict_acc": Metric(value=50)}),
           rec("m", "open_llm_v2", {"average": Metric(value=17.0)}),
           rec("other", "mt_bench", {"average": Metric(value=6.0)})]
    res = [rec("m", "ifeval", {"strict_acc": Metric(value=50)})]
    by = {(c.model, c.suite): c for c in check.compare(ref, res)}
    assert by[("m", "mt_bench")].verdict == "missing"
    assert by[("m", "mt_bench")].reason.startswith("the results hold no mt_bench record for this model (suite not run)")
    assert by[("m", "open_llm_v2")].reason.startswith(
        "the open_llm_v2 average needs all of ifeval, bbh, math_lvl5, gpqa, musr, mmlu_pro; the results lack bbh, "
        "math_lvl5, gpqa, musr, mmlu_pro")
    assert by[("other", "mt_bench")].verdict == "only in reference"  # a model the results do not hold at all


def test_partial_results_fail_against_a_complete_reference_unless_allowed(cli, tmp_path):
    ref = alpaca(tmp_path / "ref", {"win_rate": Metric(value=23.51)})
    res = alpaca(tmp_path / "res", {"win_rate": Metric(value=24.0, n=2)}, status="partial", limit=2,
                 coverage=Coverage(total=2, scored=2, available=805))
    code, out, _ = cli("check", "--reference", ref, "--results", res)
    assert code == 1 and "**PARTIAL**" in out
    assert ("- PARTIAL: m / alpaca_eval / win_rate: partial result (2 of 805 items scored, --limit 2) against a "
            "complete reference") in out
    code, out, _ = cli("check", "--reference", ref, "--results", res, "--allow-partial")
    assert code == 0 and "| pass |" in out
    both = alpaca(tmp_path / "ref2", {"win_rate": Metric(value=23.51)}, status="partial", limit=2)
    assert cli("check", "--reference", both, "--results", res)[0] == 0  # partial against partial: compared


def test_se_source_column_stderr_bootstrap_binomial(cli, tmp_path):
    """stderr when recorded; else a bootstrap over the run's items (checked against the textbook SE of a mean); else
    binomial from n and the value (written out here)."""
    from harness.records import ItemRow
    from harness.store import write_items

    rng = np.random.default_rng(3)
    wins = (rng.random(400) < 0.3).astype(float)
    items = [ItemRow(item=str(i), scores={"preference": 1.0 + w, "length": 100.0}) for i, w in enumerate(wins)]
    ref = alpaca(tmp_path / "ref", {"win_rate": Metric(value=40.0)})
    res = alpaca(tmp_path / "res", {"win_rate": Metric(value=100 * wins.mean(), n=400)})
    write_items(RunDir(res).items_path("m", None, "alpaca_eval"), items)
    (c,) = check.compare(check_records(ref), check_records(res), abs_tol=0.0, results_run=RunDir(res))
    textbook = 100 * wins.std(ddof=1) / math.sqrt(len(wins))
    assert c.se_from == "— / bootstrap" and c.tolerance == pytest.approx(2 * textbook, rel=0.05)
    (c,) = check.compare(check_records(ref), check_records(res), abs_tol=0.0)  # no run directory: binomial
    p = wins.mean()
    assert c.se_from == "— / binomial" and c.tolerance == pytest.approx(2 * 100 * math.sqrt(p * (1 - p) / 400))
    code, out, _ = cli("check", "--reference", ref, "--results", res, "--abs-tol", "0")
    assert "| — / bootstrap |" in out  # the CLI passes the run directory
    res_se = [rec("m", "alpaca_eval", {"win_rate": Metric(value=30.0, stderr=1.6)})]
    (c,) = check.compare(res_se, res_se)
    assert c.se_from == "stderr / stderr"


def check_records(root: Path) -> list[ResultRecord]:
    return RunDir(root).records()
