"""`sppo-bench eval` end to end on the fake backend: judged suites, best-of-n rows, resume, card."""

from __future__ import annotations

import pytest


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("SPPO_BENCH_HOME", str(tmp_path / "home"))
    return tmp_path


def _have_judged_data(shared_data, cli, home):
    code, _, err = cli("data", "pull", "--suites", "mt_bench", "--data-dir", shared_data)
    assert code == 0, err


def test_eval_fake_backend_best_of_n_and_resume(cli, home, shared_data):
    _have_judged_data(shared_data, cli, home)
    run = home / "run"
    argv = ["eval", "fake-model", "--backend", "fake", "--suites", "mt_bench", "--limit", "2", "--judge", "local",
            "--judge-backend", "fake", "--best-of-n", "2", "--out", run]
    code, out, err = cli(*argv)
    assert code == 0, err
    assert "fake-model/mt_bench: partial" in out and "fake-model/best-of-2/mt_bench: partial" in out
    code, out, _ = cli("results", "table", run, "--format", "csv")
    assert ",best-of-2,,mt_bench,average," in out and "fake-model,,,mt_bench,turn_1," in out
    code, out, _ = cli(*argv)
    assert out.count("done already") == 2
    code, _, err = cli("report", "--run", run, "--out", home / "card.md")
    assert code == 0, err
    card = (home / "card.md").read_text()
    assert "| fake-model (best-of-2) |" in card and "not comparable" in card


@pytest.mark.parametrize("argv, needle", [
    (["--best-of-n", "0"], "--best-of-n 0"),
    (["--shards", "mt_bench=0"], "must be at least 1"),
    (["--shards", "ifeval=2"], "not among the suites"),
    (["--executor", "nope"], "invalid choice"),
    (["--backend-opt", "timeout"], "expected KEY=VALUE"),
])
def test_eval_bad_options(cli, home, argv, needle):
    code, _, err = cli("eval", "m", "--backend", "fake", "--suites", "mt_bench", "--out", home / "run", *argv)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1
    assert not (home / "run").exists()
