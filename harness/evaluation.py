"""Evaluate checkpoints on suites into a run directory: the one function `eval` and `train-and-eval` both call.

It resolves every checkpoint first (a missing one is a one-line error before any work), identifies each by content,
plans the (checkpoint x suite [x shard]) matrix plus best-of-n rows of the judged suites, takes the run directory's
lock, and runs the matrix on the chosen executor.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.backends.base import BackendOptions
from harness.engines.context import Injected, ModelRef, RunContext, RunOptions, identify_model
from harness.engines.generation import variant_name
from harness.errors import UserError
from harness.executors import Outcome, make_executor, plan, run_matrix
from harness.runlock import run_lock
from harness.settings import Settings
from harness.store import RunDir


@dataclass(frozen=True)
class ScaleOut:
    """Where the matrix runs: --executor/--workers/--ray-address/--slurm/--shards/--retries."""

    executor: str = "local"
    workers: int = 1
    ray_address: str | None = None
    slurm: dict[str, str] = field(default_factory=dict)
    shards: dict[str, int] = field(default_factory=dict)
    retries: int = 2


def evaluate(models: Sequence[ModelRef], suites: Sequence[str], run_dir: Path, settings: Settings, *,
             backend: BackendOptions, options: RunOptions, scale: ScaleOut = ScaleOut(), best_of_n: int | None = None,
             injected: Injected = Injected(), force: bool = False, wait: bool = False,
             progress: bool = True, on_outcome: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Run every suite on every model into `run_dir`; returns one Outcome per unit (shards included)."""
    from harness.catalog import get_suite
    from harness.engines import runner_for

    specs = [get_suite(s) for s in suites]
    for spec in specs:
        runner_for(spec)  # an average or an unknown engine fails before any work
    for name in scale.shards:
        if name not in suites:
            raise UserError(f"--shards {name}=...: {name!r} is not among the suites being run ({', '.join(suites)})")
    identified = [identify_model(m, backend, settings) for m in models]
    ctx = RunContext(settings=settings, run=RunDir(run_dir), backend=backend, options=options, injected=injected)
    units = plan(identified, list(suites), scale.shards)
    judged = [s.name for s in specs if s.engine == "judge"]
    if best_of_n and judged:
        variants = [dataclasses.replace(m, variant=variant_name(best_of_n)) for m in identified]
        units += plan(variants, judged, scale.shards)
    executor = make_executor(scale.executor, run_dir, workers=scale.workers, ray_address=scale.ray_address,
                             slurm=dict(scale.slurm))
    try:
        with run_lock(run_dir, wait=wait):
            return run_matrix(units, ctx, executor, retries=scale.retries, force=force, progress=progress,
                              on_outcome=on_outcome)
    finally:
        if hasattr(executor, "shutdown"):
            executor.shutdown()


def outcome_line(o: Outcome, run: RunDir) -> str | None:
    """How a settled unit is reported: done already / FAILED / its status, with the record's path (None for shards)."""
    if o.unit.is_shard:
        return None
    where = run.record_path(o.unit.model.label, o.unit.model.variant, o.unit.suite)
    if o.status == "skipped":
        return f"{o.unit.name}: done already ({where})"
    if o.status == "failed":
        return f"{o.unit.name}: FAILED after {o.attempts} attempt{'s' if o.attempts != 1 else ''}: {o.error} ({where})"
    return f"{o.unit.name}: {o.record.status if o.record else '?'} in {o.seconds:.0f} s -> {where}"
