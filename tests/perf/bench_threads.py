"""What other busy processes do to a CPU generation run, by torch thread count and OpenMP wait policy.

Each measurement is a fresh Python process that loads the embedded SmolLM2-135M through the hf backend and generates
MAX_NEW_TOKENS greedy tokens for N_PROMPTS AlpacaEval instructions in one batch, and reports its wall-clock time.
Around it run 0, 1 or 2 competitors: `python -c 'while True: pass'` loops (the issue's slowdown: 33 s quiet, 426 s
with two other processes running). Settings compared:
- threads=N: `--backend-opt threads=N` (torch intra-op threads);
- sized: what `threads_per_worker` gives (the usable CPUs over the workers sharing them);
- +passive: the same with `OMP_WAIT_POLICY=PASSIVE` in the run's environment (OpenMP threads sleep at barriers
  instead of spinning; it must be set before torch loads, i.e. by whoever starts the process).
A pool of two generation workers is measured too: both at torch's default (every core each) and both sized for two
workers, each pair started together; its time is the slower worker's.

Run: `python -m tests.perf bench_threads` (about 15 minutes). Timings are wall-clock on purpose: the question is how
long a user waits. Arms alternate within each round and rounds repeat, since the machine may be shared.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

N_PROMPTS = 16
MAX_NEW_TOKENS = 48
ROUNDS = 2
_WORKLOAD = """
import json, sys, time
from harness.backends.base import BackendOptions, ChatRequest, SamplingParams
from harness.backends.hf import HFBackend
path, threads, prompts = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
extra = {} if threads == "default" else {"threads": threads}
b = HFBackend.load(BackendOptions(model=path, device="cpu", batch_size=len(prompts), extra=extra))
requests = [ChatRequest(({"role": "user", "content": p},), SamplingParams(max_new_tokens=int(sys.argv[4])))
            for p in prompts]
b.generate(requests[:2])
import torch
start = time.perf_counter()
b.generate(requests)
print(json.dumps({"wall": time.perf_counter() - start, "threads": torch.get_num_threads()}))
"""


def main() -> None:
    from harness.backends.threads import threads_per_worker
    from harness.errors import UserError
    from harness.models import resolve_model
    from harness.settings import from_env

    settings = from_env()
    try:
        model = resolve_model(settings, None)
    except (ImportError, UserError) as exc:
        print(f"bench_threads: skipped, the embedded default is not available ({exc})")
        return
    prompts = _prompts(settings.data_dir / "alpaca_eval" / "eval.jsonl")
    sized = str(threads_per_worker(1))
    print(f"usable CPUs {threads_per_worker(1)}; one worker sized at {sized} thread(s), two workers at "
          f"{threads_per_worker(2)}; {N_PROMPTS} prompts x {MAX_NEW_TOKENS} tokens; load {_load()}", flush=True)
    arms = [("threads=1", "1", False), (f"sized ({sized})", sized, False), (f"sized ({sized}) +passive", sized, True)]
    results: dict[tuple[str, int], list[float]] = {}
    for _ in range(ROUNDS):
        for busy in (0, 1, 2):
            for label, threads, passive in arms:
                wall = _with_competitors(busy, lambda t=threads, p=passive: _run(model, t, p, prompts))
                results.setdefault((label, busy), []).append(wall)
                print(f"  {label:22s} busy {busy}: {wall:6.1f} s (load {_load()})", flush=True)
        for label, threads in (("pool of 2, default", "default"), ("pool of 2, sized", str(threads_per_worker(2)))):
            wall = _pool(model, threads, prompts)
            results.setdefault((label, 0), []).append(wall)
            print(f"  {label:22s}: {wall:6.1f} s (slower worker; load {_load()})", flush=True)
    _report(results, [a[0] for a in arms])


def _report(results: dict[tuple[str, int], list[float]], labels: list[str]) -> None:
    print("\n| setting | 0 busy | 1 busy | 2 busy | slowdown 2 busy / 0 busy |\n|---|---|---|---|---|")
    for label in labels:
        best = [min(results[(label, busy)]) for busy in (0, 1, 2)]
        print(f"| {label} | {best[0]:.1f} s | {best[1]:.1f} s | {best[2]:.1f} s | {best[2] / best[0]:.1f}x |")
    for label in ("pool of 2, default", "pool of 2, sized"):
        print(f"| {label} | {min(results[(label, 0)]):.1f} s | | | |")
    base = min(results[(labels[1], 2)])
    ours = min(results[(labels[0], 2)])
    print(f"threads_under_2_busy: threads=1 {ours:.1f} s, sized {base:.1f} s, ratio {base / ours:.2f}x")
    pool_default, pool_sized = min(results[("pool of 2, default", 0)]), min(results[("pool of 2, sized", 0)])
    print(f"pool_of_2: sized {pool_sized:.1f} s, default {pool_default:.1f} s, ratio {pool_default / pool_sized:.2f}x")


def _run(model: str, threads: str, passive: bool, prompts: list[str]) -> float:
    return _finish(_start(model, threads, passive, prompts))


def _pool(model: str, threads: str, prompts: list[str]) -> float:
    workers = [_start(model, threads, False, prompts) for _ in range(2)]
    return max(_finish(w) for w in workers)


def _start(model: str, threads: str, passive: bool, prompts: list[str]) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    if passive:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2]) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.Popen([sys.executable, "-c", _WORKLOAD, model, threads, json.dumps(prompts), str(MAX_NEW_TOKENS)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def _finish(proc: subprocess.Popen[str]) -> float:
    out, _ = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"bench_threads: a workload process failed with exit code {proc.returncode}")
    return float(json.loads(out.strip().splitlines()[-1])["wall"])


def _with_competitors(n: int, fn: Callable[[], float]) -> float:
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        time.sleep(0.5 if n else 0)
        return fn()
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()


def _prompts(path: Path) -> list[str]:
    if not path.exists():
        raise SystemExit(f"bench_threads: no AlpacaEval instructions at {path}; run `sppo-bench data pull`")
    return [json.loads(line)["instruction"] for line in path.read_text().splitlines()[:N_PROMPTS]]


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
