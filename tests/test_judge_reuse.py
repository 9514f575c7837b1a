"""One local judge for every checkpoint of a run: the next checkpoint's judged units reuse the judge already loaded
(and its prefix store, where prompt prefixes shared with earlier checkpoints' prompts are kept), and
its verdicts equal those of a judge loaded afresh for each unit (1e-4 in probability), end to end with real tiny
checkpoints through `sppo-bench eval`."""

from __future__ import annotations

import json
import shutil

from tests.fixtures.checkpoints import noisy_copy

LIMIT = 6


def _preferences(out) -> dict[str, list[float]]:
    return {label: [x["preference"] for x in json.loads(next((out / "samples" / label / "alpaca_eval")
                                                             .glob("*/annotations.json")).read_text())]
            for label in ("A", "B")}


def test_next_checkpoint_reuses_the_judge_with_the_same_verdicts(data_home, tmp_path, cli, monkeypatch):
    from harness.engines import judge_backend
    from harness.models import tiny_model

    a = tiny_model(tmp_path / "a")
    b = noisy_copy(a, tmp_path / "b")
    fresh_home = tmp_path / "home2"
    shutil.copytree(data_home, fresh_home)  # no judge cache shared between the two runs
    monkeypatch.setattr(judge_backend, "_KEPT", {})
    judges: list[object] = []
    kept = judge_backend._kept_judge

    def spy(chosen, settings, backend):
        judges.append(kept(chosen, settings, backend))
        return judges[-1]

    args = ["eval", a, b, "--label", "A", "--label", "B", "--suites", "alpaca_eval,mt_bench", "--limit", LIMIT,
            "--max-new-tokens", "12", "--judge", "local", "--judge-model", a, "--batch-size", "4"]
    monkeypatch.setattr(judge_backend, "_kept_judge", spy)
    monkeypatch.setenv("SPPO_BENCH_HOME", str(data_home))
    code, _, err = cli(*args, "--out", tmp_path / "kept")
    assert code == 0, err
    assert len(judges) == 4 and all(j is judges[0] for j in judges)  # 2 checkpoints x 2 judged suites, one judge

    monkeypatch.setattr(judge_backend, "_kept_judge", lambda chosen, settings, backend: backend)  # afresh per unit
    monkeypatch.setenv("SPPO_BENCH_HOME", str(fresh_home))
    code, _, err = cli(*args, "--out", tmp_path / "fresh")
    assert code == 0, err
    kept_prefs, fresh_prefs = _preferences(tmp_path / "kept"), _preferences(tmp_path / "fresh")
    for label in ("A", "B"):
        assert len(kept_prefs[label]) == LIMIT
        assert all(abs(x - y) < 1e-4 for x, y in zip(kept_prefs[label], fresh_prefs[label], strict=True)), label
    mt = {run: json.loads((tmp_path / run / "records" / "B" / "mt_bench.json").read_text())["metrics"]
          for run in ("kept", "fresh")}
    assert mt["kept"] == mt["fresh"]


def test_another_judge_is_not_reused(tmp_path):
    from harness.backends.base import BackendOptions
    from harness.engines.judge_backend import _KEPT, _kept_judge
    from harness.settings import Settings

    class Judge:
        def __init__(self, fingerprint: str) -> None:
            self.fingerprint = fingerprint

    settings, opts = Settings(home=tmp_path, offline=True), BackendOptions(backend="hf")
    try:
        first = _kept_judge(opts, settings, Judge("hf:x@bfloat16:1"))
        assert _kept_judge(opts, settings, Judge("hf:x@bfloat16:1")) is first
        other = Judge("hf:x@bfloat16:2")  # the same path, other weights
        assert _kept_judge(opts, settings, other) is other
        assert _kept_judge(BackendOptions(backend="hf", dtype="float32"), settings, Judge("hf:x@bfloat16:2")) is not other
    finally:
        _KEPT.clear()
