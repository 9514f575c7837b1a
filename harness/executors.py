"""The evaluation matrix as units of work, run by one executor protocol: local, Ray or SLURM (submitit).

A unit is (checkpoint, suite, shard). Workers write their record into the run directory (shared storage) atomically;
the parent only schedules, retries and merges. A unit whose record already carries its content key is skipped, so a
killed driver resumes by rerunning the same command.

Sharding is exact by construction: shard k of K runs the suite's own code on items i with i % K == k, which fills
the content-addressed generation/judge caches; the merge unit then runs the unsharded code path, whose model calls
all hit the cache. Same code, same numbers as an unsharded run.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from harness.errors import UserError
from harness.io import ensure_dir
from harness.records import Provenance, ResultRecord, now
from harness.runners import ModelRef, RunContext

ExecutorName = Literal["local", "ray", "slurm"]
EXECUTORS: tuple[ExecutorName, ...] = ("local", "ray", "slurm")


@dataclass(frozen=True)
class Resources:
    cpus: int = 1
    gpus: int = 0
    memory_gb: float = 0.0
    """0 = no memory reservation."""


@dataclass(frozen=True)
class Unit:
    model: ModelRef
    suite: str
    shard: int = 0
    num_shards: int = 1
    resources: Resources = Resources()

    @property
    def is_merge(self) -> bool:
        return self.shard == -1

    @property
    def name(self) -> str:
        part = "merge" if self.is_merge else (f"shard{self.shard}of{self.num_shards}" if self.num_shards > 1 else "")
        return "/".join(x for x in (self.model.label, self.model.variant or "", self.suite, part) if x)

    def key(self, ctx: RunContext) -> str:
        """Content key: everything that changes the unit's result."""
        payload = {
            "model": dataclasses.asdict(self.model),
            "suite": self.suite,
            "shard": [self.shard, self.num_shards],
            "limit": ctx.limit,
            "seed": ctx.seed,
            "judge": ctx.judge,
            "backend": {k: v for k, v in dataclasses.asdict(ctx.backend).items() if k not in {"max_concurrency", "use_cache"}},
            "options": {k: v for k, v in sorted(ctx.options.items()) if k != "shard"},
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:24]


UnitWork = Callable[[Unit, RunContext], ResultRecord]


@dataclass
class Outcome:
    unit: Unit
    status: Literal["done", "skipped", "failed"]
    record: ResultRecord | None = None
    error: str | None = None
    attempts: int = 0
    seconds: float = 0.0


class Executor(Protocol):
    name: str

    def map(self, fn: Callable[..., Any], items: Sequence[tuple[Unit, RunContext]]) -> Iterable[tuple[int, Any]]:
        """Run fn(unit, ctx) for every item; yield (index, result) as each finishes, in any order.
        A worker-side exception is returned as a `WorkerError`, never raised."""
        ...


def plan(models: Sequence[ModelRef], suites: Sequence[str], shards: dict[str, int] | None = None,
         resources: dict[str, Resources] | None = None) -> list[Unit]:
    """The (checkpoint x suite [x shard]) matrix; a sharded suite adds one merge unit after its shards."""
    units: list[Unit] = []
    for m in models:
        for s in suites:
            k = (shards or {}).get(s, 1)
            res = (resources or {}).get(s, Resources())
            if k > 1:
                units += [Unit(m, s, i, k, res) for i in range(k)]
                units.append(Unit(m, s, -1, k, res))
            else:
                units.append(Unit(m, s, resources=res))
    return units


def run_matrix(units: Sequence[Unit], ctx: RunContext, executor: Executor, work: UnitWork | None = None,
               retries: int = 2, progress: bool = True, force: bool = False) -> list[Outcome]:
    """Run every unit not already complete (all of them with `force`); retry failures up to `retries` more times;
    record what still fails."""
    work = work or run_registered_suite
    outcomes: dict[Unit, Outcome] = {}
    todo: list[Unit] = []
    for u in units:
        done = None if force else _completed(u, ctx)
        if done is not None:
            outcomes[u] = Outcome(u, "skipped", done)
            _log(ctx, u, "skipped", key=u.key(ctx))
        else:
            todo.append(u)
    display = _Progress(len(units), len(outcomes), enabled=progress)
    attempts: dict[Unit, int] = {}
    # Shards first, merges after (a merge unit reads what its shards cached).
    for phase in ([u for u in todo if not u.is_merge], [u for u in todo if u.is_merge]):
        pending = list(phase)
        while pending:
            batch = pending
            pending = []
            items = [(u, ctx) for u in batch]
            for u in batch:
                attempts[u] = attempts.get(u, 0) + 1
                _log(ctx, u, "started", attempt=attempts[u], executor=executor.name)
            display.running(len(batch))
            for i, result in executor.map(_guarded(work), items):
                u = batch[i]
                if isinstance(result, WorkerError):
                    _log(ctx, u, "error", attempt=attempts[u], error=result.message, seconds=result.seconds)
                    if attempts[u] <= retries:
                        pending.append(u)
                        display.retry()
                        continue
                    record = _failure_record(u, ctx, result.message)
                    if u.num_shards == 1 or u.is_merge:  # a failed shard's items are redone by its merge unit
                        ctx.run.write(record)
                    outcomes[u] = Outcome(u, "failed", record, result.message, attempts[u], result.seconds)
                    display.finished(failed=True)
                else:
                    record, seconds = result
                    outcomes[u] = Outcome(u, "done", record, None, attempts[u], seconds)
                    _log(ctx, u, "done", attempt=attempts[u], seconds=round(seconds, 3), status=record.status)
                    display.finished(failed=False)
    display.close()
    return [outcomes[u] for u in units]


@dataclass
class WorkerError:
    message: str
    seconds: float
    traceback: str = ""


def _guarded(work: UnitWork) -> Callable[[Unit, RunContext], Any]:
    return functools.partial(_run_unit, work)


def _run_unit(work: UnitWork, unit: Unit, ctx: RunContext) -> tuple[ResultRecord, float] | WorkerError:
    """Runs in the worker. Writes the unit's record (atomically) unless it is a shard; returns it."""
    start = time.perf_counter()
    try:
        shard_ctx = ctx
        if unit.num_shards > 1 and not unit.is_merge:
            shard_ctx = dataclasses.replace(ctx, options={**ctx.options, "shard": (unit.shard, unit.num_shards)})
        record = work(unit, shard_ctx).model_copy(update={"run_key": unit.key(ctx)})
        if unit.num_shards == 1 or unit.is_merge:
            ctx.run.write(record)
        return record, time.perf_counter() - start
    except Exception as exc:  # a worker never raises: the parent decides on retries and records failures
        msg = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
        return WorkerError(msg, time.perf_counter() - start, traceback.format_exc())


def run_registered_suite(unit: Unit, ctx: RunContext) -> ResultRecord:
    """The default unit of work: the suite's registered runner on the unit's checkpoint."""
    from harness.catalog import get_suite
    from harness.runners import runner_for

    spec = get_suite(unit.suite)
    return runner_for(spec)(spec, unit.model, ctx)


def _completed(unit: Unit, ctx: RunContext) -> ResultRecord | None:
    if unit.num_shards > 1 and not unit.is_merge:
        return ctx.run.find(unit.model.label, unit.model.variant, unit.suite) if _merged(unit, ctx) else None
    rec = ctx.run.find(unit.model.label, unit.model.variant, unit.suite)
    if rec is not None and rec.status != "failed" and rec.run_key == unit.key(ctx):
        return rec
    return None


def _merged(unit: Unit, ctx: RunContext) -> bool:
    merge = dataclasses.replace(unit, shard=-1)
    rec = ctx.run.find(unit.model.label, unit.model.variant, unit.suite)
    return rec is not None and rec.status != "failed" and rec.run_key == merge.key(ctx)


def _failure_record(unit: Unit, ctx: RunContext, message: str) -> ResultRecord:
    return ResultRecord(
        model=unit.model.label, variant=unit.model.variant, iteration=unit.model.iteration,
        checkpoint=unit.model.checkpoint, suite=unit.suite, status="failed", error=message,
        provenance=Provenance(source="run", location=unit.model.checkpoint, seed=ctx.seed, finished_at=now()),
        run_key=unit.key(ctx),
    )


def _log(ctx: RunContext, unit: Unit, event: str, **fields: Any) -> None:
    """Structured JSON log, one file per unit, appended line by line (O_APPEND lines are atomic on POSIX)."""
    path = ctx.run.root / "logs" / f"{unit.key(ctx)}.jsonl"
    ensure_dir(path.parent)
    line = json.dumps({"time": now().isoformat(), "unit": unit.name, "event": event, **fields}) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------------- executors


@dataclass
class LocalExecutor:
    """In-process (workers=1) or a process pool (workers>1)."""

    workers: int = 1
    name: str = "local"

    def map(self, fn: Callable[..., Any], items: Sequence[tuple[Unit, RunContext]]) -> Iterable[tuple[int, Any]]:
        if self.workers <= 1:
            for i, (u, c) in enumerate(items):
                yield i, fn(u, c)
            return
        import concurrent.futures as cf
        import multiprocessing as mp

        with cf.ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn")) as pool:
            futures = {pool.submit(fn, u, c): i for i, (u, c) in enumerate(items)}
            for fut in cf.as_completed(futures):
                yield futures[fut], fut.result()


@dataclass
class RayExecutor:
    """An existing cluster by address, or a local one started here (num_cpus)."""

    address: str | None = None
    num_cpus: int | None = None
    name: str = "ray"
    _started: bool = field(default=False, repr=False)

    def map(self, fn: Callable[..., Any], items: Sequence[tuple[Unit, RunContext]]) -> Iterable[tuple[int, Any]]:
        try:
            import ray
        except ImportError:
            raise UserError("--executor ray needs Ray; install it with `pip install -e '.[ray]'`") from None
        if not ray.is_initialized():
            ray.init(address=self.address, num_cpus=None if self.address else self.num_cpus,
                     include_dashboard=False, log_to_driver=False, configure_logging=False)
            self._started = True
        remote = ray.remote(_call)  # Ray wants a plain function; the work travels as an argument
        refs = {}
        for i, (u, c) in enumerate(items):
            r = u.resources
            opts = remote.options(num_cpus=r.cpus, num_gpus=r.gpus, memory=int(r.memory_gb * 2**30) or None)
            refs[opts.remote(fn, u, c)] = i
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                yield refs[ref], ray.get(ref)

    def shutdown(self) -> None:
        if self._started:
            import ray

            ray.shutdown()


@dataclass
class SlurmExecutor:
    """SLURM through submitit; `cluster="local"` runs the same jobs as local subprocesses (for tests and laptops)."""

    folder: Path
    cluster: str | None = None
    partition: str | None = None
    timeout_min: int = 60
    gpus_per_node: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    name: str = "slurm"

    def map(self, fn: Callable[..., Any], items: Sequence[tuple[Unit, RunContext]]) -> Iterable[tuple[int, Any]]:
        try:
            import submitit
        except ImportError:
            raise UserError("--executor slurm needs submitit; install it with `pip install -e '.[slurm]'`") from None
        ex = submitit.AutoExecutor(folder=str(self.folder), cluster=self.cluster)
        params: dict[str, Any] = {"timeout_min": self.timeout_min, **self.extra}
        if ex.cluster == "slurm":
            params.update(slurm_partition=self.partition, gpus_per_node=self.gpus_per_node)
        ex.update_parameters(**{k: v for k, v in params.items() if v is not None})
        jobs = [ex.submit(fn, u, c) for u, c in items]
        pending = dict(enumerate(jobs))
        while pending:
            for i, job in list(pending.items()):
                if job.done():
                    del pending[i]
                    try:
                        yield i, job.result()
                    except Exception as exc:  # the job itself died (killed, OOM, node failure)
                        yield i, WorkerError(f"{type(exc).__name__}: {exc}".splitlines()[0][:500], 0.0)
            if pending:
                time.sleep(0.2)


def _call(fn: Callable[..., Any], unit: Unit, ctx: RunContext) -> Any:
    return fn(unit, ctx)


def make_executor(name: str, run_root: Path, workers: int = 1, ray_address: str | None = None,
                  slurm: dict[str, Any] | None = None) -> Executor:
    if name == "local":
        return LocalExecutor(workers=workers)
    if name == "ray":
        return RayExecutor(address=ray_address, num_cpus=workers if not ray_address else None)
    if name == "slurm":
        opts = dict(slurm or {})
        return SlurmExecutor(folder=run_root / "slurm", cluster=opts.pop("cluster", None),
                             partition=opts.pop("partition", None), timeout_min=int(opts.pop("timeout_min", 60)),
                             gpus_per_node=int(opts.pop("gpus_per_node", 0)), extra=opts)
    raise UserError(f"unknown executor {name!r}; choose one of {', '.join(EXECUTORS)}")


class _Progress:
    """A live rich display of units (queued/running/done/failed, ETA) on a terminal; silent otherwise."""

    def __init__(self, total: int, skipped: int, enabled: bool) -> None:
        import sys

        self.total, self.done, self.failed, self.running_n = total, skipped, 0, 0
        self.start = time.perf_counter()
        self.live = None
        if enabled and sys.stderr.isatty():
            from rich.console import Console
            from rich.live import Live

            self.live = Live(self._render(), console=Console(stderr=True), refresh_per_second=4)
            self.live.start()

    def _render(self) -> Any:
        from rich.text import Text

        finished = self.done + self.failed
        elapsed = time.perf_counter() - self.start
        rate = finished / elapsed if finished and elapsed else 0.0
        eta = f"{(self.total - finished) / rate:.0f} s" if rate else "?"
        queued = self.total - finished - self.running_n
        return Text(f"units: {queued} queued, {self.running_n} running, {self.done} done, {self.failed} failed"
                    f" of {self.total}; ETA {eta}")

    def _update(self) -> None:
        if self.live is not None:
            self.live.update(self._render())

    def running(self, n: int) -> None:
        self.running_n = n
        self._update()

    def retry(self) -> None:
        self.running_n = max(0, self.running_n - 1)
        self._update()

    def finished(self, failed: bool) -> None:
        self.running_n = max(0, self.running_n - 1)
        if failed:
            self.failed += 1
        else:
            self.done += 1
        self._update()

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
