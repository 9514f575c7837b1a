"""AlpacaEval scoring: leaderboard reproduction from published annotations, LC through alpaca_eval's own GLM on a
generated df_gamed fixture, and the refusal when df_gamed.csv is absent."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks.alpaca_eval.scoring import avg_length, df_gamed_problem, length_controlled, win_rate

MODELS = ["OpenHermes-2.5-Mistral-7B", "gpt-3.5-turbo-1106"]


def _leaderboard(shared: Path) -> dict[str, dict[str, str]]:
    path = shared / "alpaca_eval/leaderboards/data_AlpacaEval_2/weighted_alpaca_eval_gpt4_turbo_leaderboard.csv"
    with path.open() as f:
        return {row[""]: row for row in csv.DictReader(f)}


@pytest.mark.parametrize("name", MODELS)
def test_raw_win_rate_reproduces_leaderboard(shared_data, name):
    ann = json.loads((shared_data / f"alpaca_eval/results/{name}/weighted_alpaca_eval_gpt4_turbo/annotations.json")
                     .read_text())
    row = _leaderboard(shared_data)[name]
    wr = win_rate([a["preference"] for a in ann])
    assert wr.win_rate == pytest.approx(float(row["win_rate"]), abs=1e-6)
    assert wr.standard_error == pytest.approx(float(row["standard_error"]), abs=1e-6)
    assert wr.n_wins == int(row["n_wins"])
    assert wr.n_draws == int(row["n_draws"])
    assert wr.n_wins_base == int(row["n_wins_base"])
    assert wr.n_total == int(row["n_total"])
    assert avg_length([a["output_2"] for a in ann]) == int(row["avg_length"])


def test_win_rate_golden_ties_and_nan_guard():
    # 2 = model wins, 1 = baseline wins, 1.5 = draw; None / NaN (failed judgments) are dropped, not scored as losses
    wr = win_rate([2.0, 1.0, 1.5, None, float("nan"), 1.75])
    assert wr.n_total == 4
    assert wr.n_wins == 2 and wr.n_wins_base == 1 and wr.n_draws == 1
    assert wr.win_rate == pytest.approx((1 + 0 + 0.5 + 0.75) / 4 * 100)
    assert wr.standard_error == pytest.approx(pd.Series([1, 0, 0.5, 0.75]).sem() * 100)
    with pytest.raises(ValueError):
        win_rate([None, float("nan")])


def make_lc_fixture(tmp: Path, n: int = 60, seed: int = 0) -> tuple[Path, pd.DataFrame]:
    """A df_gamed.csv (two gamed baselines + difficulties) and annotations where the longer output tends to win."""
    rng = np.random.RandomState(seed)
    difficulty = rng.normal(0, 1, n)
    gamed = []
    for model, sign in (("gamed_verbose", 1.0), ("gamed_concise", -1.0)):
        delta = rng.normal(0, 1, n) * sign
        pref = 1 / (1 + np.exp(-(0.8 * np.tanh(-delta) + 0.5 * difficulty)))
        for i in range(n):
            gamed.append({"model": model, "index": i, "preference": pref[i], "std_delta_len": delta[i],
                          "instruction_difficulty": difficulty[i], "not_gamed_baseline": False})
    path = tmp / "df_gamed.csv"
    pd.DataFrame(gamed).to_csv(path, index=False)
    base_len = rng.randint(200, 800, n)
    model_len = base_len + rng.randint(0, 1500, n)
    p_model = 1 / (1 + np.exp(-((model_len - base_len) / 400 - 1.0)))
    pref = 1 + np.clip(p_model + rng.normal(0, 0.1, n), 0.001, 0.999)
    ann = pd.DataFrame({"instruction": [f"instruction {i}" for i in range(n)],
                        "output_1": ["b" * k for k in base_len], "generator_1": "base",
                        "output_2": ["m" * k for k in model_len], "generator_2": "model",
                        "annotator": "weighted_alpaca_eval_gpt4_turbo", "preference": pref})
    return path, ann


def test_lc_through_alpaca_eval_own_function(tmp_path):
    from unittest import mock

    import alpaca_eval
    from alpaca_eval.metrics import get_length_controlled_winrate

    path, ann = make_lc_fixture(tmp_path)
    weights_dir = Path(alpaca_eval.__file__).parent / "metrics" / "weights"
    before = sorted(p.name for p in weights_dir.rglob("*"))
    lc = length_controlled(ann, path)
    assert sorted(p.name for p in weights_dir.rglob("*")) == before  # nothing written into site-packages
    assert lc.value is not None and lc.reason is None
    # the same numbers as alpaca_eval's own function called directly on the same inputs
    with mock.patch("alpaca_eval.metrics.glm_winrate.hf_hub_download", lambda **kw: str(path)):
        direct = get_length_controlled_winrate(ann.copy(), save_weights_dir=None)
    assert lc.value == pytest.approx(direct["length_controlled_winrate"], abs=1e-9)
    assert lc.stderr == pytest.approx(direct["lc_standard_error"], abs=1e-9)
    # longer outputs win here, so controlling for length lowers the win rate
    raw = win_rate(ann["preference"].tolist()).win_rate
    assert lc.value < raw - 1


def test_lc_uses_canonical_positions_and_skips_failed(tmp_path):
    path, ann = make_lc_fixture(tmp_path)
    ann.loc[3, "preference"] = None  # an unparsable judgment is dropped, not scored
    lc = length_controlled(ann, path)
    assert lc.value is not None and math.isfinite(lc.value)
    shifted = ann.set_axis([i + 1000 for i in range(len(ann))])
    refused = length_controlled(shifted, path)
    assert refused.value is None and "have no difficulty" in str(refused.reason)


def test_lc_refused_without_df_gamed(tmp_path):
    _, ann = make_lc_fixture(tmp_path)
    missing = tmp_path / "nowhere" / "df_gamed.csv"
    lc = length_controlled(ann, missing)
    assert lc.value is None and lc.stderr is None
    assert "df_gamed.csv" in str(lc.reason) and "tatsu-lab/alpaca_eval" in str(lc.reason)
    assert "data pull" in str(lc.reason)


def test_lc_refused_on_malformed_df_gamed(tmp_path):
    bad = tmp_path / "df_gamed.csv"
    bad.write_text("model,index\nx,0\n")
    assert "lacks columns" in str(df_gamed_problem(bad, pd.Index([0])))
