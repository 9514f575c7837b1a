"""How many intra-op threads torch should use: the CPUs this process may run on, shared among the pool's workers.

torch defaults to one OpenMP thread per core of the machine. That is wrong twice on a shared or containerised host:
the process may be allowed fewer CPUs (an affinity mask, a cgroup CPU quota), and a pool of N workers each taking
every core makes N×cores threads that stall one another at every OpenMP barrier.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

_CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def usable_cpus(cgroup_cpu_max: Path = _CGROUP_CPU_MAX) -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup v2 CPU quota when one is set."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    try:
        quota, period = cgroup_cpu_max.read_text().split()[:2]
    except (OSError, ValueError):
        return max(1, cpus)
    if quota != "max" and int(period) > 0:
        cpus = min(cpus, math.ceil(int(quota) / int(period)))
    return max(1, cpus)


def threads_per_worker(workers: int = 1, cpus: int | None = None) -> int:
    """Each of `workers` processes' share of `cpus` (default: `usable_cpus()`); at least 1."""
    available = usable_cpus() if cpus is None else cpus
    return max(1, available // max(1, workers))


def limit_torch_threads(workers: int = 1, threads: int | None = None) -> int:
    """Cap torch's intra-op threads at this worker's share of the usable CPUs, or set exactly `threads`; returns the
    number in force. A cap never raises the count, so a lower setting (OMP_NUM_THREADS, an earlier call) stands."""
    import torch

    wanted = threads if threads is not None else min(torch.get_num_threads(), threads_per_worker(workers))
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)
    return wanted
