"""A catalogue of bad inputs across every command: each is exit status 2 with one line on stderr naming the problem and
the fix (no traceback), and every file that existed before is byte-identical afterwards."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "results" / "reference" / "Mistral7B-PairRM-SPPO-Iter1.json"


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    """A workspace with things a user has: a run directory with records, a reference, a card, a config, prompts,
    annotation files, lm-eval results, a folder and a plain file."""
    from harness.records import Metric, Provenance, ResultRecord
    from harness.store import RunDir

    ws = tmp_path_factory.mktemp("ws")
    run = RunDir(ws / "run")
    run.write(ResultRecord(model="m", suite="mt_bench", metrics={"average": Metric(value=5.0, n=10)},
                           provenance=Provenance(source="test")))
    shutil.copy(REFERENCE, ws / "ref.json")
    (ws / "card.md").write_text("# not much of a card\n")
    (ws / "folder").mkdir()
    (ws / "empty").mkdir()
    (ws / "file.txt").write_text("just a file\n")
    (ws / "notjson.json").write_text("{ nope")
    (ws / "prompts.jsonl").write_text('{"prompt": "hi"}\nnot json\n')
    (ws / "cfg_unknown_key.toml").write_text('name = "x"\n[train]\nlearnig_rate = 1e-5\n')
    (ws / "cfg_bad_toml.toml").write_text("name = \n")
    ann = [{"instruction": "i", "output_1": "a", "generator_1": "gpt4_1106_preview", "output_2": "b",
            "generator_2": "m", "preference": "abc"}]
    (ws / "ann_bad_pref.json").write_text(json.dumps(ann))
    (ws / "ann_not_list.json").write_text(json.dumps({"instruction": "i"}))
    (ws / "arena_games_null.jsonl").write_text(json.dumps({"question_id": "q", "model": "m", "games": None}) + "\n")
    (ws / "arena_one_game.jsonl").write_text(json.dumps({"question_id": "q", "model": "m", "games": [{"score": "A>B"}]}) + "\n")
    (ws / "mt_score_high.jsonl").write_text(json.dumps({"question_id": 81, "model": "m", "score": "high", "turn": 1}) + "\n")
    (ws / "mt_turn_7.jsonl").write_text(json.dumps({"question_id": 81, "model": "m", "score": 5, "turn": 7}) + "\n")
    (ws / "mt_no_score.jsonl").write_text(json.dumps({"question_id": 81, "model": "m", "turn": 1}) + "\n")
    (ws / "lm_task_string.json").write_text(json.dumps({"results": {"leaderboard_ifeval": "x"}, "versions": {}}))
    (ws / "lm_no_versions.json").write_text(json.dumps({"results": {}}))
    (ws / "items_bad").mkdir()
    return ws


W = "{ws}"
CASES: list[tuple[str, list[str], str]] = [
    # eval
    ("eval missing checkpoint", ["eval", "/does/not/exist", "--suites", "alpaca_eval", "--limit", "1", "--out", f"{W}/o"], "no such model folder"),
    ("eval empty suites", ["eval", "--suites", "", "--out", f"{W}/o"], "--suites is empty"),
    ("eval unknown suite", ["eval", "--suites", "alpaca_evl", "--out", f"{W}/o"], "did you mean alpaca_eval"),
    ("eval limit 0", ["eval", "--limit", "0", "--out", f"{W}/o"], "--limit 0: must be at least 1"),
    ("eval limit negative", ["eval", "--limit", "-3", "--out", f"{W}/o"], "--limit -3"),
    ("eval best-of-n 0", ["eval", "--best-of-n", "0", "--out", f"{W}/o"], "--best-of-n 0"),
    ("eval max-new-tokens 0", ["eval", "--max-new-tokens", "0", "--out", f"{W}/o"], "--max-new-tokens 0"),
    ("eval shards 0", ["eval", "x", "--backend", "fake", "--suites", "mt_bench", "--shards", "mt_bench=0", "--out", f"{W}/o"], "must be at least 1"),
    ("eval shards not a number", ["eval", "x", "--backend", "fake", "--suites", "mt_bench", "--shards", "mt_bench=two", "--out", f"{W}/o"], "expected a whole number"),
    ("eval shards other suite", ["eval", "x", "--backend", "fake", "--suites", "mt_bench", "--shards", "bbh=2", "--out", f"{W}/o"], "not among the suites"),
    ("eval shards no value", ["eval", "x", "--backend", "fake", "--shards", "mt_bench", "--out", f"{W}/o"], "expected KEY=VALUE"),
    ("eval workers 0", ["eval", "x", "--backend", "fake", "--workers", "0", "--out", f"{W}/o"], "--workers 0"),
    ("eval retries negative", ["eval", "x", "--backend", "fake", "--retries", "-1", "--out", f"{W}/o"], "--retries -1"),
    ("eval batch size 0", ["eval", "x", "--backend", "fake", "--batch-size", "0", "--out", f"{W}/o"], "--batch-size 0"),
    ("eval labels count", ["eval", "a", "--label", "x", "--label", "y", "--backend", "fake", "--out", f"{W}/o"], "2 --label for 1 checkpoints"),
    ("eval backend-opt", ["eval", "x", "--backend", "fake", "--backend-opt", "timeout", "--out", f"{W}/o"], "expected KEY=VALUE"),
    ("eval checkpoint is a file", ["eval", f"{W}/file.txt", "--out", f"{W}/o"], "is a file"),
    ("eval checkpoint folder without config", ["eval", f"{W}/folder", "--out", f"{W}/o"], "no config.json"),
    ("eval chat template missing", ["eval", "x", "--backend", "fake", "--chat-template", f"{W}/nope.jinja", "--out", f"{W}/o"], "no such"),
    ("eval judge timeout", ["eval", "x", "--backend", "fake", "--judge-timeout", "-1", "--out", f"{W}/o"], "--judge-timeout -1"),
    ("eval judge timeout nan", ["eval", "x", "--backend", "fake", "--judge-timeout", "nan", "--out", f"{W}/o"], "--judge-timeout nan"),
    ("eval out is a file", ["eval", "x", "--backend", "fake", "--suites", "mt_bench", "--out", f"{W}/file.txt/run"], "is a file"),
    ("eval executor", ["eval", "x", "--executor", "kubernetes", "--out", f"{W}/o"], "invalid choice"),
    ("eval unknown flag", ["eval", "--frobnicate", "--out", f"{W}/o"], "unrecognized arguments"),
    ("eval average as a suite", ["eval", "x", "--backend", "fake", "--suites", "open_llm_v2", "--out", f"{W}/o"], "is an average"),
    # generate
    ("generate temperature nan", ["generate", "--backend", "fake", "--model", "m", "--prompts", f"{W}/prompts.jsonl", "--out", f"{W}/g.jsonl", "--temperature", "nan"], "finite temperature"),
    ("generate top-p 0", ["generate", "--backend", "fake", "--model", "m", "--prompts", f"{W}/prompts.jsonl", "--out", f"{W}/g.jsonl", "--top-p", "0"], "0 < top-p <= 1"),
    ("generate prompts missing", ["generate", "--backend", "fake", "--model", "m", "--prompts", f"{W}/nope.jsonl", "--out", f"{W}/g.jsonl"], "no such prompts file"),
    ("generate prompts not json", ["generate", "--backend", "fake", "--model", "m", "--prompts", f"{W}/prompts.jsonl", "--out", f"{W}/g.jsonl"], "prompts.jsonl:2: not JSON"),
    ("generate max-new-tokens 0", ["generate", "--backend", "fake", "--model", "m", "--prompts", f"{W}/prompts.jsonl", "--out", f"{W}/g.jsonl", "--max-new-tokens", "0"], "must be at least 1"),
    # report / reference / check / compare / results / view
    ("report run missing", ["report", "--run", f"{W}/nope", "--out", f"{W}/c.md"], "no such"),
    ("report run empty", ["report", "--run", f"{W}/empty", "--out", f"{W}/c.md"], "no result records"),
    ("report reference not json", ["report", "--reference", f"{W}/notjson.json", "--out", f"{W}/c.md"], "not a valid reference file"),
    ("report out is a folder", ["report", "--reference", f"{W}/ref.json", "--out", f"{W}/folder"], "is a folder"),
    ("report unknown model", ["report", "--reference", f"{W}/ref.json", "--model", "nobody", "--out", f"{W}/c.md"], "has no records"),
    ("reference import missing", ["reference", "import", f"{W}/nope.md", "--out", f"{W}/r.json"], "no such"),
    ("reference import out under a file", ["reference", "import", str(REPO.parent / "shared" / "cards" / "Mistral7B-PairRM-SPPO-Iter1.md"), "--out", f"{W}/file.txt/r.json"], "is a file"),
    ("check reference missing", ["check", "--reference", f"{W}/nope.json", "--results", f"{W}/run"], "no such"),
    ("check negative tolerance", ["check", "--reference", f"{W}/ref.json", "--results", f"{W}/ref.json", "--abs-tol", "-1"], "must be >= 0"),
    ("check nothing in common", ["check", "--reference", f"{W}/ref.json", "--results", f"{W}/run"], "no metric appears in both"),
    ("compare source missing", ["compare", f"{W}/nope", f"{W}/run"], "no such"),
    ("compare few resamples", ["compare", f"{W}/run", f"{W}/run", "--resamples", "5"], "at least 100"),
    ("results table missing", ["results", "table", f"{W}/nope.json"], "no such"),
    ("results table not json", ["results", "table", f"{W}/notjson.json"], "not JSON"),
    ("results table empty folder", ["results", "table", f"{W}/empty"], "no result records"),
    ("view source missing", ["view", f"{W}/nope", "--out", f"{W}/site"], "no such"),
    # import
    ("import alpaca not json", ["import", "alpaca-eval", f"{W}/notjson.json", "--model", "m", "--out", f"{W}/i"], "not JSON"),
    ("import alpaca preference abc", ["import", "alpaca-eval", f"{W}/ann_bad_pref.json", "--model", "m", "--out", f"{W}/i"], "preference"),
    ("import alpaca not a list", ["import", "alpaca-eval", f"{W}/ann_not_list.json", "--model", "m", "--out", f"{W}/i"], "expected a JSON list"),
    ("import arena games null", ["import", "arena-hard", f"{W}/arena_games_null.jsonl", "--model", "m", "--out", f"{W}/i"], "games"),
    ("import arena one game", ["import", "arena-hard", f"{W}/arena_one_game.jsonl", "--model", "m", "--out", f"{W}/i"], "1 games"),
    ("import mt score high", ["import", "mt-bench", f"{W}/mt_score_high.jsonl", "--model", "m", "--out", f"{W}/i"], "score"),
    ("import mt turn 7", ["import", "mt-bench", f"{W}/mt_turn_7.jsonl", "--model", "m", "--out", f"{W}/i"], "turn"),
    ("import mt no score", ["import", "mt-bench", f"{W}/mt_no_score.jsonl", "--model", "m", "--out", f"{W}/i"], "needs"),
    ("import lm-eval task is a string", ["import", "lm-eval", f"{W}/lm_task_string.json", "--model", "m", "--out", f"{W}/i"], "should be an object"),
    ("import lm-eval no versions", ["import", "lm-eval", f"{W}/lm_no_versions.json", "--model", "m", "--out", f"{W}/i"], "versions"),
    ("import unknown kind", ["import", "helm", f"{W}/notjson.json", "--model", "m", "--out", f"{W}/i"], "invalid choice"),
    # data / models / train
    ("data pull unknown suite", ["data", "pull", "--suites", "alpacaeval"], "did you mean"),
    ("data pull data-dir missing", ["data", "pull", "--suites", "mt_bench", "--data-dir", f"{W}/nope"], "no such folder"),
    ("train iters 0", ["train", "--iters", "0"], "--iters 0"),
    ("train config missing", ["train", "--config", f"{W}/nope.toml"], "no such config file"),
    ("train config unknown key", ["train", "--config", f"{W}/cfg_unknown_key.toml"], "unknown key 'train.learnig_rate'"),
    ("train config bad toml", ["train", "--config", f"{W}/cfg_bad_toml.toml"], "not valid TOML"),
    ("train-and-eval unknown profile", ["train-and-eval", "--profile", "papr"], "unknown profile"),
    ("no command", [], "usage"),
]


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_the_catalogue_is_big_enough():
    assert len(CASES) >= 40 and len({name for name, _, _ in CASES}) == len(CASES)


@pytest.mark.parametrize(("name", "argv", "expected"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_touches_nothing(ws, cli, monkeypatch, tmp_path, name, argv, expected):
    monkeypatch.setenv("SPPO_BENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    before = _snapshot(ws)
    code, out, err = cli(*[a.replace(W, str(ws)) for a in argv])
    assert code == 2, (name, code, out, err)
    text = err or out
    assert expected in text, (name, text)
    if argv:  # `sppo-bench` alone prints its help on stdout, exit 2
        assert err.count("\n") == 1 and err.startswith("sppo-bench: error: "), (name, err)
        assert "Traceback" not in err
    after = _snapshot(ws)
    assert {k: after.get(k) for k in before} == before, f"{name} changed or removed files that existed before"
