"""Running the evaluation matrix: skip what is done, run the rest on an executor, retry what failed, record failures.

Workers write their record into the run directory (shared storage) atomically; the parent only schedules, retries
and merges. A unit whose record already carries its content key is skipped, so a killed driver resumes by rerunning
the same command. Sharding is exact by construction: shard k of K runs the suite's own code on items i % K == k,
filling the content-addressed generation/judge caches; the merge unit then runs the unsharded code, whose model calls
all hit the cache. Bad input or configuration (a UserError in a worker) is never retried: the run stops with that one
line, keeping every record already written.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from harness.engines.context import RunContext, content_sha256
from harness.engines.judged import failed_generations_note
from harness.errors import UserError
from harness.executors.pools import Executor, WorkerError
from harness.executors.units import Unit, unit_keys
from harness.io import ensure_dir, refuse_links
from harness.records import Provenance, ResultRecord, now

UnitWork = Callable[[Unit, RunContext], ResultRecord]


@dataclass
class Outcome:
    unit: Unit
    status: Literal["done", "skipped", "failed"]
    record: ResultRecord | None = None
    error: str | None = None
    attempts: int = 0
    seconds: float = 0.0


def run_matrix(units: Sequence[Unit], ctx: RunContext, executor: Executor, work: UnitWork | None = None,
               retries: int = 2, progress: bool = True, force: bool = False,
               on_outcome: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Run every unit not already complete (all of them with `force`); retry failures up to `retries` more times;
    record what still fails. Shards run before their merge units (a merge reads what its shards cached).
    `on_outcome` hears of each unit as it is settled (skipped, done, or failed for good)."""
    work = work or run_registered_suite
    keys = unit_keys(units, ctx)
    outcomes: dict[Unit, Outcome] = {}
    todo: list[Unit] = []
    for u in units:
        done = None if force else _completed(u, ctx, keys)
        if done is not None:
            outcomes[u] = Outcome(u, "skipped", done)
            _log(ctx, keys[u], u, "skipped")
            if on_outcome:
                on_outcome(outcomes[u])
        else:
            todo.append(u)
    with _Progress(len(units), len(outcomes), enabled=progress) as display:
        for phase in ([u for u in todo if not u.is_merge], [u for u in todo if u.is_merge]):
            _run_phase(phase, ctx, executor, work, keys, retries, outcomes, display, on_outcome)
    return [outcomes[u] for u in units]


def _run_phase(phase: list[Unit], ctx: RunContext, executor: Executor, work: UnitWork, keys: dict[Unit, str],
               retries: int, outcomes: dict[Unit, Outcome], display: _Progress,
               on_outcome: Callable[[Outcome], None] | None) -> None:
    attempts: dict[Unit, int] = {}
    pending = list(phase)
    while pending:
        batch, pending = pending, []
        for u in batch:
            attempts[u] = attempts.get(u, 0) + 1
            _log(ctx, keys[u], u, "started", attempt=attempts[u], executor=executor.name)
        display.running(len(batch))
        fn = functools.partial(_run_unit, work, keys)
        for i, result in executor.map(fn, [(u, ctx) for u in batch]):
            u = batch[i]
            if isinstance(result, WorkerError):
                _log(ctx, keys[u], u, "error", attempt=attempts[u], error=result.message, seconds=result.seconds)
                if result.fatal:
                    raise UserError(result.message)
                if attempts[u] <= retries and not result.deterministic:
                    pending.append(u)
                    display.retry()
                    continue
                record = _failure_record(u, ctx, keys[u], result.message)
                if not u.is_shard:  # a failed shard's items are redone by its merge unit
                    ctx.run.write(record)
                outcomes[u] = Outcome(u, "failed", record, result.message, attempts[u], result.seconds)
                display.finished(failed=True)
                if on_outcome:
                    on_outcome(outcomes[u])
            else:
                record, seconds = result
                outcomes[u] = Outcome(u, "done", record, None, attempts[u], seconds)
                _log(ctx, keys[u], u, "done", attempt=attempts[u], seconds=round(seconds, 3), status=record.status)
                display.finished(failed=False)
                if on_outcome:
                    on_outcome(outcomes[u])


def _run_unit(work: UnitWork, keys: dict[Unit, str], unit: Unit, ctx: RunContext) -> tuple[ResultRecord, float] | WorkerError:
    """Runs in the worker. Writes the unit's record (atomically) unless it is a shard; returns it."""
    start = time.perf_counter()
    try:
        unit_ctx = dataclasses.replace(ctx, shard=(unit.shard, unit.num_shards)) if unit.is_shard else ctx
        record = work(unit, unit_ctx)
        notes = record.notes + ([ctx.options.note] if ctx.options.note and ctx.options.note not in record.notes else [])
        record = record.model_copy(update={"run_key": keys[unit], "notes": notes})
        if not unit.is_shard:
            ctx.run.write(record)
        return record, time.perf_counter() - start
    except UserError as exc:  # bad input or configuration: retrying cannot fix it
        return WorkerError(str(exc), time.perf_counter() - start, fatal=True)
    except Exception as exc:  # a worker never raises: the parent decides on retries and records failures
        msg = _one_line(exc)
        if deterministic(exc):
            msg += " (not retried: the same input fails the same way; fix it and rerun)"
        return WorkerError(msg, time.perf_counter() - start, traceback.format_exc(), deterministic=deterministic(exc))


def _one_line(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors) and type(exc).__name__ == "ValidationError":  # pydantic's first line names only the model
        first = errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "value"
        return f"ValidationError: {where}: {first['msg']}"[:500]
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:500]


DETERMINISTIC_NAMES = frozenset({"MissingData", "TemplateError", "TemplateSyntaxError", "UndefinedError", "ValidationError",
                                 "RepositoryNotFoundError", "GatedRepoError", "RevisionNotFoundError",
                                 "EntryNotFoundError", "LocalEntryNotFoundError", "HFValidationError"})
"""Errors that retrying cannot fix: suite data not pulled, a chat template that raises (jinja2), a record that does not
validate, a hub id or revision that does not exist or is not cached offline."""


def deterministic(exc: BaseException) -> bool:
    """Whether the same input raises `exc` again. Programming and data errors (TypeError, KeyError, ValueError, ...)
    and the named library errors are; a dropped connection, a timeout, a runtime error (a CUDA OOM, a refused
    connection) or a dead worker may not be, and is retried."""
    if isinstance(exc, ConnectionError | TimeoutError | MemoryError):
        return False
    if any(cls.__name__ in DETERMINISTIC_NAMES for cls in type(exc).__mro__):
        return True
    return isinstance(exc, TypeError | LookupError | AttributeError | NotImplementedError | ImportError | ValueError |
                      ArithmeticError | AssertionError)


def run_registered_suite(unit: Unit, ctx: RunContext) -> ResultRecord:
    """The default unit of work: the suite's engine on the unit's checkpoint."""
    from harness.catalog import get_suite
    from harness.engines import runner_for

    spec = get_suite(unit.suite)
    return runner_for(spec)(spec, unit.model, ctx)


def _completed(unit: Unit, ctx: RunContext, keys: dict[Unit, str]) -> ResultRecord | None:
    rec = ctx.run.find(unit.model.label, unit.model.variant, unit.suite)
    if rec is None or rec.status == "failed" or failed_generations_note(rec):
        return None  # not done: a rerun asks only for what is missing (the content caches hold the rest)
    if unit.is_shard:  # a shard is done when its merge is
        merge = next((u for u in keys if u.is_merge and u.model == unit.model and u.suite == unit.suite), None)
        return rec if merge is not None and rec.run_key == keys[merge] else None
    return rec if rec.run_key == keys[unit] else None


def _failure_record(unit: Unit, ctx: RunContext, key: str, message: str) -> ResultRecord:
    return ResultRecord(
        model=unit.model.label, variant=unit.model.variant, iteration=unit.model.iteration,
        checkpoint=unit.model.checkpoint, suite=unit.suite, status="failed", error=message,
        provenance=Provenance(source="run", location=unit.model.checkpoint, checkpoint_sha256=content_sha256(unit.model.fingerprint),
                              seed=ctx.options.seed, finished_at=now()),
        run_key=key,
    )


def _log(ctx: RunContext, key: str, unit: Unit, event: str, **fields: Any) -> None:
    """Structured JSON log, one file per unit, appended line by line (O_APPEND lines are atomic on POSIX)."""
    path = ctx.run.root / "logs" / f"{key}.jsonl"
    refuse_links(ctx.run.root, path)  # a run folder from someone else must not send our lines elsewhere
    ensure_dir(path.parent)
    line = json.dumps({"time": now().isoformat(), "unit": unit.name, "event": event, **fields}) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


class _Progress:
    """A rich progress bar of units (done/failed/running, ETA) on a terminal; silent otherwise."""

    def __init__(self, total: int, skipped: int, enabled: bool) -> None:
        import sys

        self.total, self.done, self.failed, self.running_n = total, skipped, 0, 0
        self.bar: Any = None
        if enabled and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("units"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                                TimeRemainingColumn(), console=Console(stderr=True), transient=True)
            self.task = self.bar.add_task(self._text(), total=total, completed=skipped)

    def __enter__(self) -> _Progress:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def _text(self) -> str:
        return f"{self.running_n} running, {self.failed} failed"

    def _update(self) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=self.done + self.failed, description=self._text())

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
