"""A catalogue of bad inputs across every command: each is exit status 2 with one line on stderr naming the problem and
the fix (no traceback), and every file that existed before is byte-identical afterwards."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
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
    _hostile(ws)
    return ws


def _record(**metric: object) -> dict:
    """A valid mt_bench record as JSON, with the average metric's fields replaced by `metric`."""
    return {"schema_version": 1, "model": "m", "suite": "mt_bench", "status": "complete",
            "metrics": {"average": {"value": 5.0, "n": 10, **metric}}, "provenance": {"source": "test"}}


def _hostile(ws: Path) -> None:
    """Files a hostile or careless source hands us (issue 21): impossible numbers, links out of a run folder, FIFOs."""
    bad_records = {
        "rec_nan": '{"schema_version": 1, "model": "m", "suite": "mt_bench", "metrics": {"average": {"value": NaN}}, '
                   '"provenance": {"source": "test"}}',
        "rec_inf": '{"schema_version": 1, "model": "m", "suite": "mt_bench", "metrics": {"average": {"value": 1e309}}, '
                   '"provenance": {"source": "test"}}',
        "rec_250pct": json.dumps({**_record(), "suite": "ifeval", "metrics": {"strict_acc": {"value": 250.0}}}),
        "rec_mt_11": json.dumps(_record(value=11.0)),
        "rec_n_negative": json.dumps(_record(n=-5)),
        "rec_stderr_negative": json.dumps(_record(stderr=-0.1)),
        "rec_ci_inverted": json.dumps(_record(ci_low=6.0, ci_high=4.0)),
        "rec_scored_over_total": json.dumps({**_record(), "coverage": {"total": 10, "scored": 12}}),
        "rec_complete_no_metrics": json.dumps({**_record(), "metrics": {}}),
    }
    for name, text in bad_records.items():
        (ws / f"{name}.json").write_text(text)
    run_nan = ws / "run_nan" / "records" / "m"
    run_nan.mkdir(parents=True)
    (run_nan / "mt_bench.json").write_text(bad_records["rec_nan"])
    ref = json.loads(REFERENCE.read_text())
    ref_nan = json.loads(REFERENCE.read_text())
    ref_nan["records"][0]["metrics"][next(iter(ref_nan["records"][0]["metrics"]))]["value"] = "NaN-placeholder"
    (ws / "ref_nan.json").write_text(json.dumps(ref_nan).replace('"NaN-placeholder"', "NaN"))
    (ws / "ref_dup.json").write_text(json.dumps({**ref, "records": [*ref["records"], ref["records"][0]]}))
    # a run folder copied from someone else: its lock is a link to a file of the user's; its records/ a link elsewhere
    (ws / "victim.txt").write_text("the user's own file\n")
    (ws / "run_lock_link").mkdir()
    os.symlink(ws / "victim.txt", ws / "run_lock_link" / ".sppo-bench.lock")
    (ws / "elsewhere" / "m").mkdir(parents=True)
    shutil.copy(ws / "run" / "records" / "m" / "mt_bench.json", ws / "elsewhere" / "m" / "mt_bench.json")
    (ws / "run_records_link").mkdir()
    os.symlink(ws / "elsewhere", ws / "run_records_link" / "records")
    os.mkfifo(ws / "fifo")
    items = ws / "run_items_nan" / "samples" / "m" / "mt_bench" / "items.jsonl"
    items.parent.mkdir(parents=True)
    items.write_text('{"item": "81", "turn": 1, "scores": {"rating": 7.0}}\n{"item": "82", "turn": 1, "scores": '
                     '{"rating": NaN}}\n')
    shutil.copytree(ws / "run" / "records", ws / "run_items_nan" / "records")
    (ws / "run_logs_link").mkdir()
    (ws / "their_logs").mkdir()
    os.symlink(ws / "their_logs", ws / "run_logs_link" / "logs")
    # importer files with impossible numbers
    ann = {"instruction": "i", "output_1": "a", "generator_1": "gpt4_1106_preview", "output_2": "b", "generator_2": "m"}
    (ws / "ann_pref_inf.json").write_text("[" + json.dumps({**ann, "preference": 1.5})[:-1] + ', "x": 0}, '
                                          + json.dumps(ann)[:-1] + ', "preference": Infinity}]')
    (ws / "ann_pref_1e308.json").write_text(json.dumps([{**ann, "preference": 1e308}]))
    (ws / "ann_all_null.json").write_text(json.dumps([{**ann, "instruction": f"i{k}", "preference": None}
                                                      for k in range(805)]))
    mt = {"question_id": 81, "model": "m", "judge": ["gpt-4", "single-v1"], "turn": 1}
    (ws / "mt_score_11.jsonl").write_text(json.dumps({**mt, "score": 11}) + "\n")
    (ws / "mt_ok.jsonl").write_text(json.dumps({**mt, "score": 7}) + "\n")
    (ws / "mt_score_1e308.jsonl").write_text(json.dumps({**mt, "score": 1e308}) + "\n")
    (ws / "arena_no_verdict.jsonl").write_text(json.dumps({"question_id": "q", "model": "m", "judge": "gpt-4-1106-preview",
                                                           "games": [{"score": "A>B??"}, {"score": None}]}) + "\n")
    for name, value in (("lm_acc_1_7", "1.7"), ("lm_acc_1e308", "1e308"), ("lm_acc_1e309", "1e309")):
        text = '{"results": {"arc_challenge": {"acc_norm,none": VALUE}}, "versions": {"arc_challenge": 1}}'
        (ws / f"{name}.json").write_text(text.replace("VALUE", value))
    card = (REPO.parent / "shared" / "cards" / "Mistral7B-PairRM-SPPO-Iter1.md")
    if card.exists():
        (ws / "card_nan.md").write_text(card.read_text().replace("value: 50.47", "value: .nan", 1))


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
    # generate
    ("generate temperature nan", ["generate", "--backend", "fake", "--model", "m", "--prompts", f"{W}/prompts.jsonl", "--out", f"{W}/g.jsonl", "--temperature", "nan"], "finite temperature"),
    ("generate top-p 0", ["generate", "--backend", "fake", "--model", "m", "--prompts", f"{W}/prompts.jsonl", "--out", f"{W}/g.jsonl", "--top-p", "0"], "0 < top-p <= 1"),
    ("generate prompts missing", ["generate", "--backend", "fake", "--model", "m", "--prompts", f"{W}/nope.jsonl", "--out", f"{W}/g.jsonl"], "no such prompts file"),
    ("generate prompts not json", ["generate", "--backend", "fake", "--model", "m", "--prompts", f"{W}/prompts.jsonl", "--out", f"{W}/g.jsonl"], "prompts.jsonl:2: not JSON"),
    ("generate out over its prompts", ["generate", "--backend", "fake", "--model", "m", "--prompts", f"{W}/prompts.jsonl", "--out", f"{W}/prompts.jsonl"], "a file this command reads"),
    ("generate model empty", ["generate", "--backend", "fake", "--model", "", "--prompts", f"{W}/prompts.jsonl", "--out", f"{W}/g.jsonl"], "--model '': empty"),
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
    ("check negative tolerance", ["check", "--reference", f"{W}/ref.json", "--results", f"{W}/ref.json", "--abs-tol", "-1"], "finite number >= 0"),
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
    # issue 21: impossible numbers in records and references are refused by every reader
    ("record NaN", ["results", "table", f"{W}/rec_nan.json"], "average.value: Input should be a finite number"),
    ("record 1e309", ["results", "table", f"{W}/rec_inf.json"], "finite number"),
    ("record 250 percent", ["results", "table", f"{W}/rec_250pct.json"], "outside ifeval's range 0..100"),
    ("record mt-bench 11", ["results", "table", f"{W}/rec_mt_11.json"], "outside mt_bench's range 1..10"),
    ("record n negative", ["results", "table", f"{W}/rec_n_negative.json"], "average.n"),
    ("record stderr negative", ["results", "table", f"{W}/rec_stderr_negative.json"], "average.stderr"),
    ("record CI inverted", ["results", "table", f"{W}/rec_ci_inverted.json"], "inverted interval"),
    ("record scored over total", ["results", "table", f"{W}/rec_scored_over_total.json"], "more than exist"),
    ("record complete without metrics", ["results", "table", f"{W}/rec_complete_no_metrics.json"], "no metrics"),
    ("run with a NaN record: check", ["check", "--reference", f"{W}/ref.json", "--results", f"{W}/run_nan"], "finite number"),
    ("run with a NaN record: report", ["report", "--run", f"{W}/run_nan", "--out", f"{W}/c.md"], "finite number"),
    ("reference NaN: check", ["check", "--reference", f"{W}/ref_nan.json", "--results", f"{W}/ref.json"], "finite number"),
    ("reference NaN as results", ["check", "--reference", f"{W}/ref.json", "--results", f"{W}/ref_nan.json"], "finite number"),
    ("items with a NaN score: compare", ["compare", f"{W}/run_items_nan", f"{W}/run_items_nan"], "items.jsonl:2:scores.rating: Input should be a finite number"),
    ("reference duplicated row", ["check", "--reference", f"{W}/ref_dup.json", "--results", f"{W}/ref.json"], "keep one record per model and suite"),
    ("reference import card with .nan", ["reference", "import", f"{W}/card_nan.md", "--out", f"{W}/r.json"], "not a finite number"),
    # option values
    ("check abs-tol nan", ["check", "--reference", f"{W}/ref.json", "--results", f"{W}/ref.json", "--abs-tol", "nan"], "--abs-tol nan"),
    ("check abs-tol 1e309", ["check", "--reference", f"{W}/ref.json", "--results", f"{W}/ref.json", "--abs-tol", "1e309"], "--abs-tol inf"),
    ("check sigma inf", ["check", "--reference", f"{W}/ref.json", "--results", f"{W}/ref.json", "--sigma", "inf"], "--sigma inf"),
    ("check sigma nan", ["check", "--reference", f"{W}/ref.json", "--results", f"{W}/ref.json", "--sigma", "nan"], "--sigma nan"),
    ("check sigma nan two-sided", ["check", "--reference", f"{W}/ref.json", "--results", f"{W}/ref.json", "--sigma", "nan", "--two-sided"], "--sigma nan"),
    ("import model empty", ["import", "mt-bench", f"{W}/mt_score_11.jsonl", "--model", "", "--out", f"{W}/i"], "--model '': empty"),
    ("import model not UTF-8", ["import", "mt-bench", f"{W}/mt_score_11.jsonl", "--model", "m\udcff", "--out", f"{W}/i"], "not valid UTF-8"),
    ("eval label empty", ["eval", "x", "--label", "", "--backend", "fake", "--out", f"{W}/o"], "--label '': empty"),
    ("eval label not UTF-8", ["eval", "x", "--label", "\udce9t\udce9", "--backend", "fake", "--out", f"{W}/o"], "not valid UTF-8"),
    ("report model empty", ["report", "--reference", f"{W}/ref.json", "--model", "", "--out", f"{W}/c.md"], "--model '': empty"),
    # importers: impossible numbers, files with nothing to score
    ("import lm-eval accuracy 1.7", ["import", "lm-eval", f"{W}/lm_acc_1_7.json", "--model", "m", "--out", f"{W}/i"], "outside 0..1"),
    ("import lm-eval accuracy 1e308", ["import", "lm-eval", f"{W}/lm_acc_1e308.json", "--model", "m", "--out", f"{W}/i"], "outside 0..1"),
    ("import lm-eval accuracy 1e309", ["import", "lm-eval", f"{W}/lm_acc_1e309.json", "--model", "m", "--out", f"{W}/i"], "not a finite number"),
    ("import mt score 11", ["import", "mt-bench", f"{W}/mt_score_11.jsonl", "--model", "m", "--out", f"{W}/i"], "not a FastChat rating"),
    ("import mt score 1e308", ["import", "mt-bench", f"{W}/mt_score_1e308.jsonl", "--model", "m", "--out", f"{W}/i"], "not a FastChat rating"),
    ("import alpaca preference Infinity", ["import", "alpaca-eval", f"{W}/ann_pref_inf.json", "--model", "m", "--out", f"{W}/i"], "preference encoding"),
    ("import alpaca preference 1e308", ["import", "alpaca-eval", f"{W}/ann_pref_1e308.json", "--model", "m", "--out", f"{W}/i"], "preference encoding"),
    ("import alpaca all null", ["import", "alpaca-eval", f"{W}/ann_all_null.json", "--model", "m", "--out", f"{W}/i"], "every preference is null"),
    ("import arena no verdict", ["import", "arena-hard", f"{W}/arena_no_verdict.jsonl", "--model", "m", "--out", f"{W}/i"], "no game verdict"),
    # a run folder is not trusted as a path
    ("eval through a symlinked lock", ["eval", "x", "--backend", "fake", "--suites", "mt_bench", "--out", f"{W}/run_lock_link"], "is a symbolic link"),
    ("import into a symlinked records/", ["import", "mt-bench", f"{W}/mt_ok.jsonl", "--model", "m", "--out", f"{W}/run_records_link"], "is a symbolic link"),
    ("eval into a symlinked records/", ["eval", "x", "--backend", "fake", "--suites", "mt_bench", "--out", f"{W}/run_records_link"], "is a symbolic link"),
    ("eval into a symlinked logs/", ["eval", "x", "--backend", "fake", "--suites", "mt_bench", "--out", f"{W}/run_logs_link"], "is a symbolic link"),
    ("read a run whose records/ is a link", ["results", "table", f"{W}/run_records_link"], "is a symbolic link"),
    ("report over a record it reads", ["report", "--run", f"{W}/run", "--out", f"{W}/run/records/m/mt_bench.json"], "resolves inside the run folder"),
    ("check junit over a record it reads", ["check", "--reference", f"{W}/ref.json", "--results", f"{W}/run", "--junit", f"{W}/run/records/m/mt_bench.json"], "resolves inside the run folder"),
    ("view site inside the run it reads", ["view", f"{W}/run", "--out", f"{W}/run/site"], "resolves inside the run folder"),
    ("reference import over its card", ["reference", "import", f"{W}/card.md", "--out", f"{W}/card.md"], "a file this command reads"),
    # no hangs: what is not a regular file is refused, what is too big is not read
    ("results table FIFO", ["results", "table", f"{W}/fifo"], "not a regular file"),
    ("import FIFO", ["import", "alpaca-eval", f"{W}/fifo", "--model", "m", "--out", f"{W}/i"], "not a regular file"),
    ("judge calibrate FIFO", ["judge", "calibrate", "--reference-judgments", f"{W}/fifo", "--judge-backend", "fake"], "not a regular file"),
    ("report reference FIFO", ["report", "--reference", f"{W}/fifo", "--out", f"{W}/c.md"], "not a regular file"),
]


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _out_of(argv: list[str], ws: Path) -> str | None:
    """The --out / --junit path a case names (relative to the workspace), where it may write."""
    for flag in ("--out", "--junit"):
        if flag in argv and argv[argv.index(flag) + 1].startswith(W):
            return argv[argv.index(flag) + 1].replace(W + "/", "")
    return None


def _hang_guard(signum, frame):
    raise TimeoutError("the command hung (a reader blocked on a FIFO or read without end)")


def test_the_catalogue_is_big_enough():
    assert len(CASES) >= 40 and len({name for name, _, _ in CASES}) == len(CASES)


@pytest.mark.parametrize(("name", "argv", "expected"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_touches_nothing(ws, cli, monkeypatch, tmp_path, name, argv, expected):
    monkeypatch.setenv("SPPO_BENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    before = _snapshot(ws)
    previous = signal.signal(signal.SIGALRM, _hang_guard)
    signal.alarm(120)  # a regression fails instead of hanging the suite
    try:
        code, out, err = cli(*[a.replace(W, str(ws)) for a in argv])
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert code == 2, (name, code, out, err)
    text = err or out
    assert expected in text, (name, text)
    if argv:  # `sppo-bench` alone prints its help on stdout, exit 2
        assert err.count("\n") == 1 and err.startswith("sppo-bench: error: "), (name, err)
        assert "Traceback" not in err
    after = _snapshot(ws)
    assert {k: after.get(k) for k in before} == before, f"{name} changed or removed files that existed before"
    out_path = _out_of(argv, ws)
    new = [k for k in after if k not in before and not (out_path and (k == out_path or k.startswith(out_path + "/")))]
    assert new == [], f"{name} wrote outside its --out: {new}"


@pytest.mark.parametrize("argv", [["results", "table", "/dev/zero"], ["report", "--reference", "/dev/zero", "--out", "c.md"]])
def test_an_endless_file_is_refused_not_read(tmp_path, argv):
    """/dev/zero never ends: a reader that does not bound what it reads eats all memory. Run in a child process with a
    memory cap and a timeout, so a regression fails this test instead of taking the test run down."""
    import resource
    import subprocess
    import sys

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))

    proc = subprocess.run([sys.executable, "-c", "from harness.cli import run; run()", *argv], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, preexec_fn=cap,
                          env={**os.environ, "PYTHONPATH": str(REPO), "SPPO_BENCH_HOME": str(tmp_path / "home")})
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.count("\n") == 1 and "not a regular file" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "c.md").exists()
