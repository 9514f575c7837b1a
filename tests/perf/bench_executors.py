"""Executors: 2-worker throughput vs local sequential on CPU-bound units; Ray scheduling overhead per unit."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from harness.engines.context import ModelRef
from harness.executors import LocalExecutor, RayExecutor, plan, run_matrix
from tests import executor_work
from tests.test_executors import make_ctx

REPO = Path(__file__).resolve().parents[2]
ROUNDS = 300_000  # ~3 s of hashing per unit: real eval units take minutes, not milliseconds


def _time(executor, n_models: int, tmp: Path, rounds: int = ROUNDS) -> float:
    models = [ModelRef(f"ckpt{i}", f"m{i}") for i in range(n_models)]
    ctx = make_ctx(tmp)
    start = time.perf_counter()
    out = run_matrix(plan(models, ["alpaca_eval", "mt_bench"]), ctx, executor, work=executor_work.CpuBound(rounds),
                     progress=False)
    assert all(o.status == "done" for o in out)
    return time.perf_counter() - start


def main() -> None:
    os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        seq = _time(LocalExecutor(), 4, tmp / "seq")
        pool = _time(LocalExecutor(workers=2), 4, tmp / "pool")
        ray_ex = RayExecutor(num_cpus=2)
        try:
            _time(ray_ex, 1, tmp / "warm")  # cluster start-up is not per-unit overhead
            ray_t = _time(ray_ex, 4, tmp / "ray")
            n = 40
            trivial = _time(ray_ex, n // 2, tmp / "trivial", rounds=0)
            local_trivial = _time(LocalExecutor(), n // 2, tmp / "trivial-local", rounds=0)
        finally:
            ray_ex.shutdown()
    print(f"8 CPU-bound units: local sequential {seq:.2f} s; local pool(2) {pool:.2f} s -> {seq / pool:.2f}x "
          f"throughput (target >= 1.7x); ray(2 CPUs) {ray_t:.2f} s -> {seq / ray_t:.2f}x")
    print(f"Ray scheduling overhead: {(trivial - local_trivial) / n * 1000:.0f} ms per unit over {n} trivial units "
          f"(ray {trivial:.2f} s vs in-process {local_trivial:.2f} s; target <= 1000 ms)")


if __name__ == "__main__":
    main()
