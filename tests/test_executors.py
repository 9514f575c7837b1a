"""The evaluation matrix on local / Ray / submitit executors: same records, resume, failures, exact sharding."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from harness.backends.base import BackendOptions
from harness.engines.context import ModelRef, RunContext, RunOptions
from harness.executors import LocalExecutor, RayExecutor, SlurmExecutor, plan, run_matrix
from harness.settings import Settings
from harness.store import RunDir
from tests import executor_work

REPO = Path(__file__).resolve().parents[1]
MODELS = [ModelRef("ckpt-base", "base", 0), ModelRef("ckpt-iter1", "Iter 1", 1)]
SUITES = ["alpaca_eval", "mt_bench"]


def make_ctx(tmp: Path, **options) -> RunContext:
    (tmp / "cache").mkdir(parents=True, exist_ok=True)
    return RunContext(settings=Settings(home=tmp / "home", offline=True), run=RunDir(tmp / "run"),
                      backend=BackendOptions(backend="fake"), options=RunOptions(**options))


def cached(ctx: RunContext, delay: float = 0.0) -> executor_work.CachedItems:
    return executor_work.CachedItems(str(ctx.run.root.parent / "cache"), delay)


def failing(ctx: RunContext) -> executor_work.FailsOnMTBench:
    return executor_work.FailsOnMTBench(str(ctx.run.root.parent / "cache"))


def comparable(run: RunDir) -> list[dict]:
    return sorted((r.model_dump(exclude={"provenance", "run_key"}) for r in run.records()), key=lambda d: (d["model"], d["suite"]))


def test_local_runs_the_matrix_and_resumes(tmp_path):
    ctx = make_ctx(tmp_path)
    out = run_matrix(plan(MODELS, SUITES), ctx, LocalExecutor(), work=cached(ctx), progress=False)
    assert [o.status for o in out] == ["done"] * 4
    assert len(ctx.run.records()) == 4
    again = run_matrix(plan(MODELS, SUITES), ctx, LocalExecutor(), work=cached(ctx), progress=False)
    assert [o.status for o in again] == ["skipped"] * 4
    logs = list((ctx.run.root / "logs").glob("*.jsonl"))
    assert len(logs) == 4
    events = [json.loads(line)["event"] for line in logs[0].read_text().splitlines()]
    assert events == ["started", "done", "skipped"]


def test_a_changed_setting_reruns_the_unit(tmp_path):
    ctx = make_ctx(tmp_path)
    run_matrix(plan(MODELS[:1], SUITES[:1]), ctx, LocalExecutor(), work=cached(ctx), progress=False)
    ctx = make_ctx(tmp_path, limit=5)
    out = run_matrix(plan(MODELS[:1], SUITES[:1]), ctx, LocalExecutor(), work=cached(ctx), progress=False)
    assert out[0].status == "done"


def test_a_unit_that_always_fails_is_recorded_and_the_rest_complete(tmp_path):
    ctx = make_ctx(tmp_path)
    out = run_matrix(plan(MODELS, SUITES), ctx, LocalExecutor(), work=failing(ctx), retries=2,
                     progress=False)
    by = {(o.unit.model.label, o.unit.suite): o for o in out}
    assert by[("base", "mt_bench")].status == "failed" and by[("base", "mt_bench")].attempts == 3
    assert by[("base", "alpaca_eval")].status == "done"
    failed = ctx.run.find("base", None, "mt_bench")
    assert failed.status == "failed" and "refused the connection" in failed.error and not failed.metrics
    # A rerun retries recorded failures (they are not "complete").
    again = run_matrix(plan(MODELS, SUITES), ctx, LocalExecutor(), work=cached(ctx), progress=False)
    assert sorted(o.status for o in again) == ["done", "done", "skipped", "skipped"]


def test_shards_merge_exactly_and_the_merge_hits_the_cache(tmp_path):
    plain = make_ctx(tmp_path / "plain")
    run_matrix(plan(MODELS[:1], ["alpaca_eval"]), plain, LocalExecutor(), work=cached(plain),
               progress=False)
    sharded = make_ctx(tmp_path / "sharded")
    units = plan(MODELS[:1], ["alpaca_eval"], shards={"alpaca_eval": 4})
    assert [u.shard for u in units] == [0, 1, 2, 3, -1]
    run_matrix(units, sharded, LocalExecutor(), work=cached(sharded), progress=False)
    assert comparable(sharded.run) == comparable(plain.run)
    assert (tmp_path / "sharded" / "cache" / "computed-ckpt-base-alpaca_eval.txt").read_text() == "0"
    again = run_matrix(units, sharded, LocalExecutor(), work=cached(sharded), progress=False)
    assert {o.status for o in again} == {"skipped"}


def test_process_pool_gives_the_same_records(tmp_path):
    a = make_ctx(tmp_path / "a")
    run_matrix(plan(MODELS, SUITES), a, LocalExecutor(), work=cached(a), progress=False)
    b = make_ctx(tmp_path / "b")
    run_matrix(plan(MODELS, SUITES), b, LocalExecutor(workers=2), work=cached(b), progress=False)
    assert comparable(a.run) == comparable(b.run)


@pytest.mark.slow
def test_ray_local_cluster_gives_the_same_records(tmp_path, monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    a = make_ctx(tmp_path / "a")
    run_matrix(plan(MODELS, SUITES), a, LocalExecutor(), work=cached(a), progress=False)
    b = make_ctx(tmp_path / "b")
    ray_ex = RayExecutor(num_cpus=2)
    try:
        out = run_matrix(plan(MODELS, SUITES), b, ray_ex, work=failing(b), retries=1,
                         progress=False)
        assert sorted(o.status for o in out) == ["done", "done", "failed", "failed"]
        run_matrix(plan(MODELS, SUITES), b, ray_ex, work=cached(b), progress=False)
    finally:
        ray_ex.shutdown()
    assert comparable(a.run) == comparable(b.run)


@pytest.mark.slow
def test_submitit_local_executor_gives_the_same_records(tmp_path, monkeypatch):
    pytest.importorskip("submitit")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    a = make_ctx(tmp_path / "a")
    run_matrix(plan(MODELS, SUITES), a, LocalExecutor(), work=cached(a), progress=False)
    b = make_ctx(tmp_path / "b")
    out = run_matrix(plan(MODELS, SUITES), b, SlurmExecutor(folder=tmp_path / "slurm", cluster="local"),
                     work=cached(b), progress=False)
    assert {o.status for o in out} == {"done"}
    assert comparable(a.run) == comparable(b.run)


DRIVER = textwrap.dedent("""
    import sys
    from pathlib import Path
    sys.path.insert(0, {repo!r})
    from tests.test_executors import MODELS, SUITES, cached, make_ctx
    from harness.executors import LocalExecutor, plan, run_matrix
    from harness.runlock import run_lock
    ctx = make_ctx(Path({tmp!r}))
    with run_lock(Path({tmp!r})):  # as eval does: the lock holder sweeps what a killed writer left
        run_matrix(plan(MODELS, SUITES), ctx, LocalExecutor(), work=cached(ctx, float(sys.argv[1])), progress=False)
""")


@pytest.mark.parametrize("kill_after", [0.3, 1.1, 2.3])
def test_kill_9_of_the_driver_then_rerun_gives_identical_records(tmp_path, kill_after):
    reference = make_ctx(tmp_path / "ref")
    run_matrix(plan(MODELS, SUITES), reference, LocalExecutor(), work=cached(reference), progress=False)
    script = tmp_path / "driver.py"
    script.write_text(DRIVER.format(repo=str(REPO), tmp=str(tmp_path / "killed")))
    proc = subprocess.Popen([sys.executable, str(script), "0.5"], cwd=REPO)
    time.sleep(kill_after)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_run = RunDir(tmp_path / "killed" / "run")
    if (killed_run.root / "records").exists():
        killed_run.records()  # whatever is visible is a whole, valid record
    # A kill between mkstemp and rename may leave a temporary, but only under the hidden `.<name>.*.tmp` name that
    # no reader globs; the next run (under the lock) removes it.
    leftovers = list((tmp_path / "killed").rglob("*.tmp"))
    assert all(f.name.startswith(".") for f in leftovers), leftovers
    subprocess.run([sys.executable, str(script), "0"], cwd=REPO, check=True)
    assert not list((tmp_path / "killed").rglob("*.tmp"))
    assert comparable(killed_run) == comparable(reference.run)


def _real_ctx(tmp: Path) -> RunContext:
    home = os.environ.get("SPPO_TEST_HOME") or os.environ.get("SPPO_BENCH_HOME")
    settings = Settings(home=Path(home), offline=True) if home else None
    if settings is None or not (settings.models_dir / "SmolLM2-135M-Instruct" / "config.json").exists() \
            or not (settings.data_dir / "mt_bench" / "manifest.json").exists():
        pytest.skip("needs a cache home with the embedded model and pulled data (nox -s prepare; SPPO_TEST_HOME)")
    return RunContext(settings=settings, run=RunDir(tmp / "run"),
                      backend=BackendOptions(backend="hf", use_cache=False, batch_size=4),
                      options=RunOptions(limit=1, judge="local", max_new_tokens=8,
                                         judge_backend=BackendOptions(backend="fake", use_cache=False)))


@pytest.mark.slow
def test_real_suites_on_the_embedded_default_same_records_on_every_executor(tmp_path, monkeypatch):
    """A 2x2 matrix (two checkpoint labels x MT-Bench, AlpacaEval) through the registered runners on the embedded
    SmolLM2: in-process, on a local Ray cluster and on submitit's local executor, with identical records."""
    pytest.importorskip("ray")
    pytest.importorskip("submitit")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    base = _real_ctx(tmp_path / "local")
    model = str(base.settings.models_dir / "SmolLM2-135M-Instruct")
    models = [ModelRef(model, "smol-a", 0), ModelRef(model, "smol-b", 1)]
    units = plan(models, ["mt_bench", "alpaca_eval"])
    runs = {}
    for name, executor in (("local", LocalExecutor()), ("ray", RayExecutor(num_cpus=2)),
                           ("slurm", SlurmExecutor(folder=tmp_path / "submitit", cluster="local"))):
        ctx = base if name == "local" else _real_ctx(tmp_path / name)
        try:
            out = run_matrix(units, ctx, executor, progress=False)
        finally:
            if isinstance(executor, RayExecutor):
                executor.shutdown()
        assert [o.status for o in out] == ["done"] * 4, [(o.unit.name, o.error) for o in out]
        runs[name] = comparable(ctx.run)
    assert runs["ray"] == runs["local"] == runs["slurm"]
    assert {r["suite"] for r in runs["local"]} == {"mt_bench", "alpaca_eval"}
