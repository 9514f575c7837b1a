"""`sppo-bench compare`: the paired comparison of two imported AlpacaEval annotation files against a normal
approximation written here, McNemar on 0/1 items against scipy, the fallbacks (a card without items, a metric without
an item statistic), the sources it reads, the three output formats and one-line errors."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from harness.compare import BOOTSTRAP, MCNEMAR, NONE, UNPAIRED, Side, compare
from harness.errors import UserError
from harness.sides import load_side
from harness.store import ITEMS_FILE, RunDir

MODELS = ("gpt-3.5-turbo-1106", "OpenHermes-2.5-Mistral-7B")


def _annotations(shared: Path, model: str) -> Path:
    return shared / "alpaca_eval" / "results" / model / "weighted_alpaca_eval_gpt4_turbo" / "annotations.json"


@pytest.fixture(scope="module")
def alpaca_runs(tmp_path_factory) -> dict[str, Path]:
    """One run directory per published annotation file, written by `sppo-bench import alpaca-eval` (record and
    items.jsonl)."""
    from harness.cli import main
    from tests.conftest import SHARED, require_shared

    require_shared()
    root = tmp_path_factory.mktemp("alpaca")
    runs = {}
    env = os.environ.get("SPPO_BENCH_HOME")
    os.environ["SPPO_BENCH_HOME"] = str(root / "home")  # no pulled eval set: file order = instruction position
    try:
        for model in MODELS:
            assert main(["import", "alpaca-eval", str(_annotations(SHARED / "data", model)), "--model", model,
                         "--out", str(root / model)]) == 0
            assert (RunDir(root / model).items_path(model, None, "alpaca_eval")).is_file()
            runs[model] = root / model
    finally:
        if env is None:
            os.environ.pop("SPPO_BENCH_HOME")
        else:
            os.environ["SPPO_BENCH_HOME"] = env
    return runs


def test_paired_alpaca_comparison_agrees_with_the_normal_approximation(alpaca_runs, shared_data: Path) -> None:
    a, b = (json.loads(_annotations(shared_data, m).read_text()) for m in MODELS)
    pref_b = {x["instruction"]: x["preference"] for x in b}
    d = np.array([100 * (pref_b[x["instruction"]] - x["preference"]) for x in a])  # per-instruction difference
    half = 1.96 * d.std(ddof=1) / math.sqrt(len(d))
    rows = compare(load_side(alpaca_runs[MODELS[0]]), load_side(alpaca_runs[MODELS[1]]))
    win = next(r for r in rows if r.metric == "win_rate")
    assert win.n_paired == 805 and win.method == BOOTSTRAP and win.note == ""
    assert win.delta == pytest.approx(d.mean(), abs=1e-9)
    assert win.ci_low == pytest.approx(d.mean() - half, abs=0.5)
    assert win.ci_high == pytest.approx(d.mean() + half, abs=0.5)
    z = abs(d.mean()) / (d.std(ddof=1) / math.sqrt(len(d)))
    assert win.p_value == pytest.approx(math.erfc(z / math.sqrt(2)), abs=0.03)
    assert [r.metric for r in rows] == ["win_rate", "avg_length"]  # LC needs df_gamed.csv: absent on both sides


def test_cli_formats(alpaca_runs, cli) -> None:
    a, b = alpaca_runs[MODELS[0]], alpaca_runs[MODELS[1]]
    code, out, _ = cli("compare", a, b, "--resamples", "2000")
    assert code == 0 and f"A: {MODELS[0]}" in out
    assert "| alpaca_eval | win_rate | 9.18 | 10.34 | +1.16 |" in out and "Bootstrap: 2000 resamples, seed 0" in out
    code, out, _ = cli("compare", a, b, "--resamples", "2000", "--format", "csv")
    table = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and list(table[0])[:11] == ["suite", "metric", "a", "b", "delta", "ci_low", "ci_high", "p_value",
                                                 "p_holm", "n_paired", "method"]
    assert table[0]["metric"] == "win_rate" and float(table[0]["delta"]) == pytest.approx(1.1624511, abs=1e-6)
    assert float(table[1]["p_holm"]) >= float(table[1]["p_value"])
    code, out, _ = cli("compare", a, b, "--resamples", "2000", "--format", "json", "--seed", "3")
    doc = json.loads(out)
    assert code == 0 and doc["seed"] == 3 and doc["b"]["label"] == MODELS[1]
    assert doc["rows"][0]["n_paired"] == 805 and doc["rows"][0]["ci_low"] < doc["rows"][0]["delta"]


def test_a_card_without_items_falls_back_to_an_unpaired_test(alpaca_runs, seed_card: Path, cli, tmp_path: Path,
                                                             shared_data: Path) -> None:
    code, _, err = cli("compare", seed_card, alpaca_runs[MODELS[0]])
    assert code == 2 and "holds" in err and "Mistral7B-PairRM-SPPO Iter 1" in err and "--model-a" in err
    card = load_side(seed_card, "Mistral7B-PairRM-SPPO Iter 1", "--model-a")
    rows = {r.metric: r for r in compare(card, load_side(alpaca_runs[MODELS[0]]), resamples=1000)}
    win = rows["win_rate"]
    assert win.method == UNPAIRED and win.n_paired is None and "A has no items" in win.note
    se_card = 100 * math.sqrt(0.2351 * 0.7649 / 805)  # binomial, n from the other side's record
    # B has items: the shared rule bootstraps them (before the record's stderr); the textbook SE of a mean over 805
    # resampled instructions is sd / sqrt(n)
    prefs = np.array([x["preference"] for x in json.loads(_annotations(shared_data, MODELS[0]).read_text())], float)
    se_items = 100 * np.nanstd(prefs - 1) / math.sqrt(np.isfinite(prefs).sum())
    assert "binomial (n=805)" in win.note and "B bootstrap over its 805 units" in win.note
    assert win.ci_high - win.ci_low == pytest.approx(2 * 1.959964 * math.hypot(se_card, se_items), rel=0.02)
    assert rows["avg_length"].method == NONE and "SE unknown" in rows["avg_length"].note
    reference = tmp_path / "reference.json"  # the same card imported as a reference JSON reads the same
    code, _, _ = cli("reference", "import", seed_card, "--out", reference)
    from_json = compare(load_side(reference, "Mistral7B-PairRM-SPPO Iter 1"), load_side(alpaca_runs[MODELS[0]]),
                        resamples=1000)
    assert code == 0 and from_json == list(rows.values())


def test_mcnemar_for_zero_one_accuracy_and_averages_through_members(tmp_path: Path) -> None:
    from scipy.stats import binomtest

    from tests.fixtures.synthetic_runs import write_pair

    suites = ("ifeval", "bbh", "math_lvl5", "gpqa", "musr", "mmlu_pro", "winogrande")
    run_a, run_b = write_pair(tmp_path / "A", tmp_path / "B", suites, seed=4, scale=0.2)
    rows = compare(load_side(run_a.root), load_side(run_b.root), resamples=1000)
    by = {(r.suite, r.metric): r for r in rows}
    wino = by[("winogrande", "acc")]
    side_a, side_b = (load_side(r.root).items["winogrande"] for r in (run_a, run_b))
    x = np.array([r.scores["acc"] for r in side_a])
    y = np.array([r.scores["acc"] for r in side_b])
    b, c = int(np.sum((x == 1) & (y == 0))), int(np.sum((x == 0) & (y == 1)))
    assert wino.method == MCNEMAR and wino.p_value == pytest.approx(binomtest(min(b, c), b + c).pvalue)
    assert by[("bbh", "acc_norm")].method == BOOTSTRAP  # normalized per subtask: not monotone in pooled accuracy
    avg = by[("open_llm_v2", "average")]
    assert avg.method == BOOTSTRAP and avg.ci_low is not None and avg.ci_low <= avg.delta + 1e-9 <= avg.ci_high + 1e-9
    assert avg.a == pytest.approx(np.mean([by[(s, "acc_norm" if s in ("bbh", "gpqa", "musr") else
                                               {"ifeval": "strict_acc", "math_lvl5": "exact_match_original",
                                                "mmlu_pro": "acc"}[s])].a for s in suites[:6]]))
    assert all(r.p_holm is not None and r.p_holm >= r.p_value for r in rows)


def test_partial_overlap_is_said_per_row(alpaca_runs) -> None:
    a = load_side(alpaca_runs[MODELS[0]])
    b = load_side(alpaca_runs[MODELS[1]])
    fewer = Side(b.label, b.source, b.records, {"alpaca_eval": list(b.items["alpaca_eval"])[:400]})
    win = next(r for r in compare(a, fewer, resamples=500) if r.metric == "win_rate")
    assert win.n_paired == 400 and "the 400 items both sides scored give" in win.note


def test_sources_and_model_choice(tmp_path: Path, cli) -> None:
    from tests.fixtures.synthetic_runs import write_pair

    run_a, _ = write_pair(tmp_path / "out" / "eval", tmp_path / "other", ("mt_bench",), scale=0.3, labels=("base", "it1"))
    write_pair(tmp_path / "out" / "eval", tmp_path / "other2", ("mt_bench",), seed=2, scale=0.3, labels=("it1", "x"))
    code, _, err = cli("compare", tmp_path / "out", tmp_path / "out")
    assert code == 2 and "holds 2 models (base; it1)" in err and "--model-a" in err
    code, out, _ = cli("compare", tmp_path / "out", tmp_path / "out", "--model-a", "base", "--model-b", "it1",
                       "--format", "json", "--resamples", "500")
    rows = json.loads(out)["rows"]
    assert code == 0 and [r["metric"] for r in rows] == ["turn_1", "turn_2", "average"]
    assert all(r["n_paired"] == 24 for r in rows)  # 24 questions (both turns resampled together), OUT/eval
    code, _, err = cli("compare", tmp_path / "out", tmp_path / "other", "--model-a", "nobody")
    assert code == 2 and "no model 'nobody'" in err


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, cli) -> None:
    (tmp_path / "empty").mkdir()
    for args, message in [((tmp_path / "missing.json", tmp_path / "empty"), "no such results file"),
                          ((tmp_path / "empty", tmp_path / "empty"), "no result records"),
                          ((tmp_path, tmp_path, "--resamples", "5"), "use at least 100")]:
        code, out, err = cli("compare", *args)
        assert code == 2 and message in err and err.count("\n") == 1 and not out
    with pytest.raises(UserError, match="items.jsonl:1:"):
        run = RunDir(tmp_path / "bad")
        from tests.fixtures.synthetic_runs import write_pair

        write_pair(run.root, tmp_path / "bad_b", ("mt_bench",), scale=0.1)
        (run.samples_dir("A", None, "mt_bench") / ITEMS_FILE).write_text('{"item": 1}\n')
        load_side(run.root)
