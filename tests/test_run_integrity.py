"""A run directory is data, never code, and only what its records name ends up in them: hostile labels stay inside
--out, one writer per run, stale temporaries swept, no pickle ever loaded, unit keys that change with the judge,
errors that retrying cannot fix stop the run, dead workers are retried, judged suites shard for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.io import slug

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def judged_home(data_home) -> Path:
    return data_home


def fake_eval(cli, out: Path, *extra: str) -> tuple[int, str, str]:
    return cli("eval", "fake-model", "--backend", "fake", "--judge-backend", "fake", "--suites", "mt_bench",
               "--limit", "1", "--max-new-tokens", "8", "--out", out, *extra)


# ----------------------------------------------------------------------------------------------- file names


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=0, max_size=400))
def test_slug_is_one_safe_path_component(text):
    s = slug(text)
    assert s and "/" not in s and "\\" not in s and "\x00" not in s and s not in (".", "..")
    assert all(c.isascii() and (c.isalnum() or c in "._-") for c in s) and len(s) <= 89
    assert not s.startswith(".")


@given(st.text(max_size=120), st.text(max_size=120))
def test_distinct_labels_get_distinct_slugs(a, b):
    if a != b:
        assert slug(a) != slug(b)


@pytest.mark.parametrize("label", ["../../escape", "/etc/passwd", "a\nb", "x" * 300, "né ∑ 模型", "..", ".hidden",
                                   "a/b/c", "con", "\x01\x02"])
def test_hostile_labels_write_inside_the_run_only(cli, tmp_path, judged_home, monkeypatch, label):
    monkeypatch.setenv("SPPO_BENCH_HOME", str(judged_home))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    out = work / "run"
    code, _, err = cli("eval", "ckpts/mymodel", "--label", label, "--backend", "fake", "--judge-backend", "fake",
                       "--suites", "mt_bench,alpaca_eval", "--limit", "1", "--max-new-tokens", "4", "--out", out)
    assert code == 0, err
    outside = [p for p in tmp_path.rglob("*") if out not in p.parents and p != out and p != work]
    assert outside == []
    records = list((out / "records").glob("*/*.json"))
    assert len(records) == 2 and {json.loads(p.read_text())["model"] for p in records} == {label}


# ---------------------------------------------------------------------------------------------- one writer

HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    sys.path.insert(0, {repo!r})
    from harness.runlock import run_lock
    with run_lock(Path({run!r})):
        Path({flag!r}).write_text("held")
        time.sleep(float(sys.argv[1]))
""")


def _hold(tmp_path: Path, run: Path, seconds: float) -> subprocess.Popen:
    flag = tmp_path / "held.flag"
    script = tmp_path / "holder.py"
    script.write_text(HOLDER.format(repo=str(REPO), run=str(run), flag=str(flag)))
    proc = subprocess.Popen([sys.executable, str(script), str(seconds)])
    deadline = time.monotonic() + 30
    while not flag.exists():
        assert time.monotonic() < deadline, "the lock holder did not start"
        time.sleep(0.05)
    return proc


def test_a_second_writer_stops_naming_the_holder_or_waits(cli, tmp_path, judged_home, monkeypatch):
    monkeypatch.setenv("SPPO_BENCH_HOME", str(judged_home))
    out = tmp_path / "run"
    holder = _hold(tmp_path, out, 3.0)
    try:
        code, stdout, err = fake_eval(cli, out)
        assert code == 2 and f"pid {holder.pid}" in err and "--wait" in err and err.count("\n") == 1
        assert not (out / "records").exists()
        code, _, err = fake_eval(cli, out, "--wait")
        assert code == 0, err
    finally:
        holder.wait(timeout=30)


def test_stale_temporaries_are_swept_and_the_users_own_are_kept(cli, tmp_path, judged_home, monkeypatch):
    from harness.io import temporary_prefix

    monkeypatch.setenv("SPPO_BENCH_HOME", str(judged_home))
    out = tmp_path / "run"
    stale = out / "records" / "x" / f"{temporary_prefix('mt_bench.json')}k3j2abcd.tmp"
    stale.parent.mkdir(parents=True)
    stale.write_text("half a record")
    mine = [out / ".notes.tmp", out / "records" / ".draft.json.tmp"]  # the user's own files in an existing --out
    for path in mine:
        path.write_text("the user's")
    code, _, err = fake_eval(cli, out)
    assert code == 0, err
    assert not stale.exists()
    assert [p.read_text() for p in mine] == ["the user's"] * 2


def test_import_holds_the_run_lock(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("SPPO_BENCH_HOME", str(tmp_path / "home"))
    judgments = tmp_path / "gpt-4_single.jsonl"
    judgments.write_text(json.dumps({"question_id": 81, "model": "m", "judge": ["gpt-4", "single-v1"], "turn": 1,
                                     "score": 7}) + "\n")
    out = tmp_path / "run"
    holder = _hold(tmp_path, out, 3.0)
    try:
        code, _, err = cli("import", "mt-bench", judgments, "--model", "m", "--out", out)
        assert code == 2 and f"pid {holder.pid}" in err and err.count("\n") == 1
        assert not (out / "records").exists()
        code, _, err = cli("import", "mt-bench", judgments, "--model", "m", "--out", out, "--wait")
        assert code == 0, err
    finally:
        holder.wait(timeout=30)
    assert json.loads((out / "records" / "m" / "mt_bench.json").read_text())["metrics"]["average"]["value"] == 7


def test_a_legal_253_byte_output_name_is_written(cli, tmp_path):
    reference = REPO / "results" / "reference" / "Mistral7B-PairRM-SPPO-Iter1.json"
    out = tmp_path / ("c" * 250 + ".md")
    assert len(out.name.encode()) == 253
    code, _, err = cli("report", "--reference", reference, "--out", out, "--no-eval-results")
    assert code == 0, err
    assert out.read_text().startswith("---")
    (plots,) = [p for p in tmp_path.iterdir() if p.is_dir()]  # the plot folder's name is cut to fit, and linked
    assert len(plots.name.encode()) <= 255 and list(plots.glob("*.png")) and f"]({plots.name}/" in out.read_text()


def test_a_full_disk_is_named_as_the_disk(tmp_path, monkeypatch):
    import errno

    from harness.errors import UserError
    from harness.io import atomic_write_text, mount_point

    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(UserError) as info:
        atomic_write_text(tmp_path / "card.md", "x")
    message = str(info.value)
    assert f"the disk holding {mount_point(tmp_path)} is full" in message and "\n" not in message
    assert list(tmp_path.iterdir()) == []  # the temporary is gone too
    too_long = tmp_path / ("c" * 256)
    with pytest.raises(UserError, match="over the 255-byte limit of file names"):
        atomic_write_text(too_long, "x")


def test_an_alpaca_import_of_400_of_805_is_partial(cli, tmp_path, judged_home, monkeypatch):
    monkeypatch.setenv("SPPO_BENCH_HOME", str(judged_home))
    published = REPO.parent / "shared" / "data" / "published" / "alpaca_eval" / "claude-2.1" / \
        "weighted_alpaca_eval_gpt4_turbo" / "annotations.json"
    rows = json.loads(published.read_text())
    assert len(rows) == 805
    part = tmp_path / "annotations.json"
    part.write_text(json.dumps(rows[:400]))
    code, stdout, err = cli("import", "alpaca-eval", part, "--model", "claude-2.1", "--out", tmp_path / "run")
    assert code == 0, err
    record = json.loads((tmp_path / "run" / "records" / "claude-2.1" / "alpaca_eval.json").read_text())
    assert record["status"] == "partial" and "partial" in stdout
    assert any("400 of 805" in note for note in record["notes"])
    assert record["coverage"]["total"] == 400 and record["coverage"]["available"] == 805
    ref = tmp_path / "ref.json"  # the gate treats it as partial: it fails against a complete reference
    full = tmp_path / "full.json"
    full.write_text(json.dumps(rows))
    assert cli("import", "alpaca-eval", full, "--model", "claude-2.1", "--out", tmp_path / "full")[0] == 0
    assert json.loads((tmp_path / "full" / "records" / "claude-2.1" / "alpaca_eval.json").read_text())["status"] == \
        "complete"
    del ref


# ------------------------------------------------------------------------------------------ data, not code

PICKLE_MODULES = ("pickle", "sqlitedict", "dill", "cloudpickle", "joblib")


def test_no_module_of_ours_unpickles_anything():
    """Nothing reads a pickle: no pickle/SqliteDict/joblib loader and no torch.load in the package."""
    offenders = []
    for path in sorted((REPO / "harness").rglob("*.py")) + sorted((REPO / "benchmarks").rglob("*.py")):
        text = path.read_text()
        for needle in (*(f"import {m}" for m in PICKLE_MODULES), *(f"from {m}" for m in PICKLE_MODULES), "torch.load(",
                       "use_cache=str(", "SqliteDict("):
            if needle in text:
                offenders.append(f"{path.relative_to(REPO)}: {needle}")
    assert offenders == []


@pytest.mark.slow
def test_a_pickle_planted_in_the_run_is_never_executed(cli, tmp_path, monkeypatch):
    """lm-eval's own request cache (SqliteDict) unpickled whatever sat in RUN/samples/*/lm_cache on a resume."""
    import pickle
    import sqlite3

    from harness.models import tiny_model

    tiny = tiny_model(tmp_path / "tiny")
    monkeypatch.setenv("SPPO_BENCH_HOME", str(tmp_path / "home"))
    out = tmp_path / "run"
    marker = tmp_path / "PWNED"
    args = ("eval", tiny, "--label", "tiny", "--suites", "musr", "--limit", "1",
            "--data-dir", REPO / "tests" / "fixtures" / "lmeval", "--out", out)
    assert cli(*args)[0] == 0

    class Payload:
        def __reduce__(self):
            return (Path.write_text, (marker, "executed"))

    samples = out / "samples" / "tiny" / "musr"
    for name in ("lm_cache/cache_rank0.db", "lm_cache/x.db", "cache.sqlite"):
        db = samples / name
        db.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(db) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS unnamed (key TEXT PRIMARY KEY, value BLOB)")
            conn.execute("INSERT OR REPLACE INTO unnamed VALUES (?, ?)", ("k", pickle.dumps(Payload())))
    code, _, err = cli(*args, "--force")
    assert code == 0, err
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------- unit keys


def test_changing_the_judge_model_or_exporting_the_key_reruns(cli, tmp_path, judged_home, monkeypatch):
    monkeypatch.setenv("SPPO_BENCH_HOME", str(judged_home))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    out = tmp_path / "run"
    assert fake_eval(cli, out)[0] == 0
    code, stdout, _ = fake_eval(cli, out)
    assert code == 0 and "done already" in stdout
    code, stdout, _ = fake_eval(cli, out, "--judge-model", "another-judge")
    assert code == 0 and "done already" not in stdout
    record = json.loads(next((out / "records").glob("*/mt_bench.json")).read_text())
    assert record["judge"]["model"] == "another-judge"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key-0123456789")  # the default judge turns official
    code, stdout, err = fake_eval(cli, out)
    # rerun under the official judge, whose rating the fake backend never writes: the unit ran and failed, and eval
    # says so (exit 1, one line) instead of exiting 0 over a record with nothing scored
    assert code == 1 and "done already" not in stdout and "no rating could be read" in err, (code, stdout, err)
    record = json.loads(next((out / "records").glob("*/mt_bench.json")).read_text())
    assert record["judge"]["official"] is True
    assert "sk-test-key-0123456789" not in "".join(p.read_text(errors="replace") for p in out.rglob("*") if p.is_file())


def test_a_changed_limit_reruns_and_answers_match_the_record(cli, tmp_path, judged_home, monkeypatch):
    monkeypatch.setenv("SPPO_BENCH_HOME", str(judged_home))
    out = tmp_path / "run"
    assert fake_eval(cli, out)[0] == 0
    code, stdout, _ = cli("eval", "fake-model", "--backend", "fake", "--judge-backend", "fake", "--suites", "mt_bench",
                          "--limit", "3", "--max-new-tokens", "8", "--out", out)
    assert code == 0 and "done already" not in stdout
    record = json.loads(next((out / "records").glob("*/mt_bench.json")).read_text())
    answers = next((out / "samples").glob("*/mt_bench/model_answer/*.jsonl")).read_text().splitlines()
    assert record["limit"] == 3 and len(answers) == 3 and record["coverage"]["total"] == 6


# ------------------------------------------------------------------------------------- errors and retries


def test_configuration_errors_stop_the_run_without_retries_or_failed_records(cli, tmp_path, judged_home, monkeypatch):
    monkeypatch.setenv("SPPO_BENCH_HOME", str(judged_home))
    out = tmp_path / "run"
    code, _, err = cli("eval", "fake-model", "--backend", "fake", "--judge-backend", "nonexistent", "--suites",
                       "mt_bench", "--limit", "1", "--out", out, "--retries", "3")
    assert code == 2 and "unknown backend 'nonexistent'" in err and err.count("\n") == 1
    assert not list((out / "records").glob("*/*.json")) if (out / "records").exists() else True
    events = [json.loads(x)["event"] for p in (out / "logs").glob("*.jsonl") for x in p.read_text().splitlines()]
    assert events.count("started") == 1  # not retried


class DiesOnce:
    """Kills its worker process the first time it runs a unit (as the OOM killer would)."""

    def __init__(self, flag: str) -> None:
        self.flag = flag

    def __call__(self, unit, ctx):
        from harness.records import Metric, Provenance, ResultRecord

        if not Path(self.flag).exists():
            Path(self.flag).write_text("died")
            os._exit(9)
        return ResultRecord(model=unit.model.label, suite=unit.suite, metrics={"score": Metric(value=1.0)},
                            provenance=Provenance(source="test"))


def test_a_worker_that_dies_is_a_retried_unit(tmp_path):
    from harness.backends.base import BackendOptions
    from harness.engines.context import ModelRef, RunContext
    from harness.executors import LocalExecutor, plan, run_matrix
    from harness.settings import Settings
    from harness.store import RunDir

    ctx = RunContext(settings=Settings(home=tmp_path / "home", offline=True), run=RunDir(tmp_path / "run"),
                     backend=BackendOptions(backend="fake"))
    out = run_matrix(plan([ModelRef("c", "m")], ["mt_bench"]), ctx, LocalExecutor(workers=2),
                     work=DiesOnce(str(tmp_path / "flag")), progress=False)
    assert [(o.status, o.attempts) for o in out] == [("done", 2)]


# ------------------------------------------------------------------------------------------------- shards


def test_judged_shards_split_the_items_and_merge_exactly(judged_home, tmp_path):
    import dataclasses

    from harness.backends.base import BackendOptions
    from harness.backends.cache import with_cache
    from harness.backends.fake import FakeBackend
    from harness.catalog import get_suite
    from harness.engines.context import Injected, ModelRef, RunContext, RunOptions
    from harness.engines.judged import run_suite
    from harness.settings import Settings
    from harness.store import RunDir

    def ctx(run: Path, generator) -> RunContext:
        return RunContext(settings=Settings(home=judged_home, offline=True), run=RunDir(run),
                          backend=BackendOptions(backend="fake"),
                          options=RunOptions(limit=5, judge="local", max_new_tokens=8),
                          injected=Injected(generator=generator, judge=FakeBackend("judge")))

    plain = run_suite(get_suite("mt_bench"), ModelRef("m", "m"), ctx(tmp_path / "plain", FakeBackend("m")))
    inner = FakeBackend("m")
    cached = with_cache(inner, tmp_path / "cache.sqlite")
    sharded = ctx(tmp_path / "sharded", cached)
    calls = []
    for k in range(2):
        before = inner.calls
        run_suite(get_suite("mt_bench"), ModelRef("m", "m"), dataclasses.replace(sharded, shard=(k, 2)))
        calls.append(inner.calls - before)
    assert calls == [2 * 3, 2 * 2]  # 5 questions split 3 + 2, two turns each
    before = inner.calls
    merged = run_suite(get_suite("mt_bench"), ModelRef("m", "m"), sharded)
    assert inner.calls == before  # every answer of the merge came from what the shards cached
    assert {k: m.value for k, m in merged.metrics.items()} == {k: m.value for k, m in plain.metrics.items()}


# ---------------------------------------------------------------------------------------------- readers


def test_results_table_reads_a_train_and_eval_folder_and_refuses_an_empty_source(cli, tmp_path, judged_home,
                                                                                 monkeypatch):
    monkeypatch.setenv("SPPO_BENCH_HOME", str(judged_home))
    folder = tmp_path / "train-out"
    assert fake_eval(cli, folder / "eval")[0] == 0
    code, stdout, _ = cli("results", "table", folder, "--format", "csv")
    assert code == 0 and len(stdout.splitlines()) > 1 and "mt_bench" in stdout
    (tmp_path / "empty").mkdir()
    code, stdout, err = cli("results", "table", tmp_path / "empty")
    assert code == 2 and "no result records" in err and not stdout


def test_repeats_record_the_between_repeat_spread_and_keep_pass_zero(cli, tmp_path, judged_home, monkeypatch):
    monkeypatch.setenv("SPPO_BENCH_HOME", str(judged_home))
    args = ("eval", "fake-model", "--backend", "fake", "--judge-backend", "fake", "--suites", "mt_bench", "--limit", "3",
            "--max-new-tokens", "8")
    assert cli(*args, "--out", tmp_path / "once")[0] == 0
    code, _, err = cli(*args, "--repeats", "3", "--out", tmp_path / "thrice")
    assert code == 0, err
    once, thrice = (json.loads(next((tmp_path / r / "records").glob("*/mt_bench.json")).read_text())
                    for r in ("once", "thrice"))
    assert thrice["metrics"]["average"]["value"] == once["metrics"]["average"]["value"]  # pass 0 is the plain run
    passes = [once["metrics"]["average"]["value"]]
    for r in (1, 2):
        folder = next((tmp_path / "thrice" / "samples").glob(f"*/mt_bench/repeat-{r}"))
        ratings = [json.loads(x)["scores"]["rating"] for x in (folder / "items.jsonl").read_text().splitlines()]
        passes.append(sum(ratings) / len(ratings))
    import statistics

    assert thrice["metrics"]["average"]["repeat_sd"] == pytest.approx(statistics.stdev(passes))
    assert thrice["metrics"]["average"]["repeat_sd"] > 0  # writing questions are sampled at temperature 0.7
    assert any("3 repeats" in n for n in thrice["notes"])


class RaisesTemplateError:
    """A unit whose chat template raises: the same input fails the same way every time."""

    def __call__(self, unit, ctx):
        import jinja2

        raise jinja2.exceptions.TemplateError("this template refuses every conversation")


def test_a_deterministic_failure_is_not_retried_and_says_so_on_stderr(tmp_path, capsys):
    from harness.backends.base import BackendOptions
    from harness.commands.evaluate import failure_summary
    from harness.engines.context import ModelRef, RunContext
    from harness.executors import LocalExecutor, plan, run_matrix
    from harness.settings import Settings
    from harness.store import RunDir

    ctx = RunContext(settings=Settings(home=tmp_path / "home", offline=True), run=RunDir(tmp_path / "run"),
                     backend=BackendOptions(backend="fake"))
    out = run_matrix(plan([ModelRef("c", "m")], ["mt_bench"]), ctx, LocalExecutor(), work=RaisesTemplateError(),
                     retries=3, progress=False)
    assert [(o.status, o.attempts) for o in out] == [("failed", 1)]
    assert "not retried" in out[0].error
    capsys.readouterr()
    assert failure_summary(out) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("sppo-bench: error: 1 of 1 units failed: m/mt_bench")
    assert "refuses every conversation" in err
