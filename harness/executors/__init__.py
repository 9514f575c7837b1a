"""The evaluation matrix as units of work (units.py), run by one executor protocol — local, Ray or SLURM via
submitit (pools.py) — with resume by content key, retries and recorded failures (matrix.py)."""

from harness.executors.matrix import Outcome, UnitWork, run_matrix, run_registered_suite
from harness.executors.pools import (
           EXECUTORS,
           Executor,
           LocalExecutor,
           RayExecutor,
           SlurmExecutor,
           WorkerError,
           make_executor,
)
from harness.executors.units import Resources, Unit, plan, unit_key, unit_keys

__all__ = ["EXECUTORS", "Executor", "LocalExecutor", "Outcome", "RayExecutor", "Resources", "SlurmExecutor", "Unit",
           "UnitWork", "WorkerError", "make_executor", "plan", "run_matrix", "run_registered_suite", "unit_key",
           "unit_keys"]
