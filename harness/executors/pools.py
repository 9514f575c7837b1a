"""Where units of work run, behind one protocol: in-process or a local process pool, Ray, or SLURM (submitit).

`map(fn, items)` runs fn(unit, ctx) for every item and yields (index, result) as each finishes; a worker-side failure
comes back as a `WorkerError` value, never as an exception, so the caller decides on retries. A process pool that
breaks (a worker killed by the OOM killer) fails only the units it was running; they are retried on a new pool.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from harness.engines.context import RunContext
from harness.errors import UserError
from harness.executors.units import Unit

ExecutorName = Literal["local", "ray", "slurm"]
EXECUTORS: tuple[ExecutorName, ...] = ("local", "ray", "slurm")


@dataclass
class WorkerError:
    message: str
    seconds: float
    traceback: str = ""
    fatal: bool = False
    """Bad input or configuration (a UserError): retrying cannot help, the run stops with this message."""
    deterministic: bool = False
    """An error the same input raises again (a chat template that raises, a validation error): recorded, not retried."""


class Executor(Protocol):
    name: str

    def map(self, fn: Callable[..., Any], items: Sequence[tuple[Unit, RunContext]]) -> Iterable[tuple[int, Any]]:
        """Run fn(unit, ctx) for every item; yield (index, result) as each finishes, in any order.
        A worker-side exception is returned as a `WorkerError`, never raised."""
        ...


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
        from concurrent.futures.process import BrokenProcessPool

        with cf.ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn"),
                                    initializer=_size_threads, initargs=(self.workers,)) as pool:
            futures = {pool.submit(fn, u, c): i for i, (u, c) in enumerate(items)}
            for fut in cf.as_completed(futures):
                try:
                    yield futures[fut], fut.result()
                except BrokenProcessPool as exc:  # a worker died (killed, out of memory): retry its units
                    yield futures[fut], WorkerError(f"worker process died ({exc}); retried on a new pool", 0.0)


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




def _size_threads(workers: int) -> None:
    """Pool workers share the CPUs this process may use: give each its share of torch's intra-op threads."""
    import os

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = max(1, cpus // max(1, workers))
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        pass
