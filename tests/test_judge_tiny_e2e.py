"""The local AlpacaEval judge's verdicts follow the answers, end to end with real checkpoints (no injected backend).

Two real tiny checkpoints (the tiny test model and a copy with seeded noise on every weight) answer the same AlpacaEval
instructions differently; judged by a real local model (the tiny model itself) through `sppo-bench eval`, their
per-item verdicts differ, and the binarized verdicts do not follow the slot. A judge read in one order only
(alpaca_eval's seeded switch) gave every checkpoint the binarized verdict of the instruction's hash: which output was
shown first, not what it said (issue 18).
"""

from __future__ import annotations

import json

import pytest

from tests.fixtures.checkpoints import noisy_copy

LIMIT = 12


@pytest.mark.slow
def test_two_real_checkpoints_get_different_local_alpaca_eval_verdicts(data_home, tmp_path, cli, monkeypatch):
    from harness.models import tiny_model

    a = tiny_model(tmp_path / "a")
    b = noisy_copy(a, tmp_path / "b")
    monkeypatch.setenv("SPPO_BENCH_HOME", str(data_home))
    out = tmp_path / "run"
    code, _, err = cli("eval", a, b, "--label", "A", "--label", "B", "--suites", "alpaca_eval", "--limit", LIMIT,
                       "--max-new-tokens", "12", "--judge", "local", "--judge-model", a, "--batch-size", "4",
                       "--out", out)
    assert code == 0, err
    ann = {label: json.loads(next((out / "samples" / label / "alpaca_eval").glob("*/annotations.json")).read_text())
           for label in ("A", "B")}
    assert [x["instruction"] for x in ann["A"]] == [x["instruction"] for x in ann["B"]]
    differ = [i for i in range(LIMIT) if ann["A"][i]["output_2"] != ann["B"][i]["output_2"]]
    assert len(differ) >= LIMIT // 2, "the two checkpoints should answer differently"
    pref = {label: [x["preference"] for x in rows] for label, rows in ann.items()}
    assert all(p is not None for p in pref["A"] + pref["B"])
    # where the answers differ, so do the verdicts: the continuous preference on every such item ...
    assert all(pref["A"][i] != pref["B"][i] for i in differ)
    # ... and the binarized verdict (model preferred over the baseline or not) is not the slot's: it does not follow
    # alpaca_eval's seeded order (which output is shown first), as a judge read in one order does
    from benchmarks.alpaca_eval.judging import is_switched

    switched = [is_switched(x["instruction"]) for x in ann["A"]]
    assert 0 < sum(switched) < LIMIT  # both orders occur among these instructions
    for label in ("A", "B"):
        verdicts = [p > 1.5 for p in pref[label]]
        assert verdicts != switched and verdicts != [not s for s in switched], label
    # both orders were asked of every pair, and the record says how they were combined
    assert all(set(x["single_order"]) == {"output_1_first", "output_2_first"} for x in ann["A"])
    record = json.loads((out / "records" / "A" / "alpaca_eval.json").read_text())
    assert any("both orders, mean log-odds" in n for n in record["notes"])
