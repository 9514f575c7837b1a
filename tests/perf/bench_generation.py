"""hf backend generation throughput on the embedded SmolLM2-135M against this CPU's limit and against today's path.

Workload: the first N_PROMPTS AlpacaEval instructions as single-turn chats, MAX_NEW_TOKENS new tokens, greedy and
sampled (temperature 0.7, top-p 0.9, request i seeded with i); no generation cache (the backend is used bare).

Arms, all in one process on one loaded model, at the same torch thread count:
- baseline: today's path, frozen in tests/perf/_baseline_hf.py (transformers `model.generate` with the per-row logits
  processor and stopping criteria, as harness/backends/hf.py had it at e3c62f1) at batch 8;
- ours: `HFBackend.generate` (harness/backends/hf_decode.py) at batch 8, 16, 32 and 64;
- opt-ins at DEFAULT_BATCH: `--backend-opt quantize=int8` and `--dtype bfloat16`, greedy; what they cost in fidelity
  is measured on float32's greedy answers, teacher-forced: how often their next-token argmax agrees with float32's,
  and the KL divergence of their next-token distributions from float32's; and whether a request's answer still does
  not depend on its batch (greedy answers at batch DEFAULT_BATCH vs batch 8, against float32's).

The limit: a torch matmul microbenchmark at the model's linear shapes (rows = LIMIT_ROWS, weights hot in cache) gives
the GFLOP/s this CPU reaches at the thread count used; the FLOP limit in tokens/s is that over the forward FLOPs per
token (2 × the linear layers' weights + 4 × layers × hidden × the mean context for attention). Each batch size also
gets its matmul ceiling: the model's own linear layers run once at that many rows with their real weights (streamed
from memory, as in decoding), which is what bounds a decode step before any other work.

Each arm reports wall-clock tokens/s and tokens per CPU-second of this process: with one thread, CPU time does not
count the time other processes held the core, so it is the steadier figure on a shared machine. % of limit is taken on
tokens per CPU-second. Run: `python -m tests.perf bench_generation` (about 20 minutes on one thread).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

N_PROMPTS = 64
MAX_NEW_TOKENS = 128
BATCHES = (8, 16, 32, 64)
DEFAULT_BATCH = 64  # the batch size we recommend as the CLI default
BASELINE_BATCH = 8
LIMIT_ROWS = 512
AGREEMENT_ANSWERS = 16  # float32 greedy answers the opt-ins are teacher-forced on
CPU_THREADS: int | None = 1
"""torch intra-op threads for every arm. One by default: on the shared 2-core machine two OpenMP threads stall at
every barrier whenever another process holds a core (see bench_threads). None keeps what the backend picks."""


@dataclass
class Arm:
    label: str
    batch: int
    mode: str
    wall_s: float
    cpu_s: float
    tokens: int
    texts: list[str]

    @property
    def tok_s(self) -> float:
        return self.tokens / self.wall_s

    @property
    def tok_cpu_s(self) -> float:
        return self.tokens / self.cpu_s


def main() -> None:
    from harness.backends.base import BackendOptions
    from harness.backends.hf import HFBackend
    from harness.errors import UserError
    from harness.models import resolve_model
    from harness.settings import from_env

    settings = from_env()
    try:
        model_path = resolve_model(settings, None)
    except (ImportError, UserError) as exc:
        print(f"bench_generation: skipped, the embedded default is not available ({exc})")
        return
    options = {} if CPU_THREADS is None else {"threads": str(CPU_THREADS)}
    # float32 explicitly: `auto` is now the checkpoint's bfloat16, and the bfloat16 opt-in is measured against float32
    backend = HFBackend.load(BackendOptions(model=model_path, device="cpu", dtype="float32", batch_size=BASELINE_BATCH,
                                            extra=options))
    prompts = _prompts(settings)
    backend.generate(_requests(prompts[:BASELINE_BATCH], "greedy", 8))  # warm-up: weights, allocator, kernels
    import torch

    print(f"model {model_path}; {len(prompts)} AlpacaEval instructions, {MAX_NEW_TOKENS} new tokens; torch "
          f"{torch.__version__}, {torch.get_num_threads()} thread(s); load average {_load()}", flush=True)
    limit = _flop_limit(backend.model, prompts, backend)
    arms = _run_arms(backend, prompts)
    _report(arms, limit)
    _opt_ins(backend, model_path, options, prompts, arms)


def _run_arms(backend: Any, prompts: list[str]) -> list[Arm]:
    from tests.perf import _baseline_hf

    arms = []
    for mode in ("greedy", "sampled"):
        requests = _requests(prompts, mode, MAX_NEW_TOKENS)
        arms.append(_timed("today b8", BASELINE_BATCH, mode,
                           lambda r=requests: _baseline_hf.generate(backend, r, BASELINE_BATCH)))
        for batch in BATCHES:
            backend.batch_size = batch
            arms.append(_timed("ours", batch, mode, lambda r=requests: backend.generate(r)))
    return arms


def _timed(label: str, batch: int, mode: str, fn: Callable[[], list[Any]]) -> Arm:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    arm = Arm(label, batch, mode, time.perf_counter() - wall, time.process_time() - cpu,
              sum(c.completion_tokens for c in out), [c.text for c in out])
    print(f"  {label:9s} batch {batch:3d} {mode:7s}: {arm.wall_s:6.1f} s wall, {arm.cpu_s:6.1f} s CPU, {arm.tokens} "
          f"tokens, {arm.tok_s:6.1f} tok/s, {arm.tok_cpu_s:6.1f} tok/CPU-s (load {_load()})", flush=True)
    return arm


@dataclass
class Limit:
    gflops: float  # matmul GFLOP/s at the model's shapes, weights hot
    flops_per_token: float
    ceilings: dict[int, float]  # batch -> tok/s of the model's linear layers alone at that many rows

    @property
    def tok_s(self) -> float:
        return self.gflops * 1e9 / self.flops_per_token


def _flop_limit(model: Any, prompts: list[str], backend: Any) -> Limit:
    import torch

    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    weights = sum(m.weight.numel() for m in linears)
    cfg = model.config
    mean_context = sum(len(backend.encode_chat(({"role": "user", "content": p},))) for p in prompts) / len(prompts)
    mean_context += MAX_NEW_TOKENS / 2
    flops_per_token = 2 * weights + 4 * cfg.num_hidden_layers * cfg.num_attention_heads * cfg.head_dim * mean_context
    seconds, flops = 0.0, 0.0
    for shape, count in _shape_counts(linears).items():
        w, x = torch.randn(*shape), torch.randn(LIMIT_ROWS, shape[1])
        per_call = _best_cpu_time(lambda w=w, x=x: torch.nn.functional.linear(x, w), repeat=5)
        seconds += count * per_call
        flops += count * 2 * LIMIT_ROWS * shape[0] * shape[1]
    ceilings = {}
    for batch in BATCHES:
        xs = {m.in_features: torch.randn(batch, m.in_features) for m in linears}
        step = _best_cpu_time(lambda xs=xs: [torch.nn.functional.linear(xs[m.in_features], m.weight) for m in linears],
                              repeat=3)
        ceilings[batch] = batch / step
    limit = Limit(flops / seconds / 1e9, flops_per_token, ceilings)
    print(f"matmul microbenchmark ({LIMIT_ROWS} rows, the model's {len(linears)} linear layers' shapes): "
          f"{limit.gflops:.1f} GFLOP/s; forward {flops_per_token / 1e6:.0f} MFLOP/token (mean context "
          f"{mean_context:.0f}); FLOP limit {limit.tok_s:.0f} tok/s", flush=True)
    return limit


def _shape_counts(linears: list[Any]) -> dict[tuple[int, int], int]:
    counts: dict[tuple[int, int], int] = {}
    for m in linears:
        counts[tuple(m.weight.shape)] = counts.get(tuple(m.weight.shape), 0) + 1
    return counts


def _best_cpu_time(fn: Callable[[], Any], repeat: int) -> float:
    import torch

    with torch.inference_mode():
        fn()
        best = float("inf")
        for _ in range(repeat):
            start = time.process_time()
            fn()
            best = min(best, time.process_time() - start)
    return best


def _report(arms: list[Arm], limit: Limit) -> None:
    print(f"\n| batch | mode | path | tok/s (wall) | tok/CPU-s | matmul ceiling tok/s | % of FLOP limit "
          f"({limit.tok_s:.0f} tok/s) |\n|---|---|---|---|---|---|---|")
    for a in arms:
        print(f"| {a.batch} | {a.mode} | {a.label} | {a.tok_s:.1f} | {a.tok_cpu_s:.1f} | {limit.ceilings[a.batch]:.0f} "
              f"| {100 * a.tok_cpu_s / limit.tok_s:.0f}% |")
    for mode in ("greedy", "sampled"):
        base = next(a for a in arms if a.label == "today b8" and a.mode == mode)
        ours = next(a for a in arms if a.label == "ours" and a.batch == DEFAULT_BATCH and a.mode == mode)
        same = sum(x == y for x, y in zip(base.texts, ours.texts, strict=True))
        print(f"generation_{mode}: ours (batch {DEFAULT_BATCH}) {ours.tok_cpu_s:.1f} tok/CPU-s, baseline (today's path, "
              f"batch {BASELINE_BATCH}) {base.tok_cpu_s:.1f} tok/CPU-s, ratio {ours.tok_cpu_s / base.tok_cpu_s:.2f}x "
              f"(wall: {ours.tok_s:.1f} vs {base.tok_s:.1f} tok/s, {ours.tok_s / base.tok_s:.2f}x) (target >= 3x); "
              f"identical answers {same}/{len(base.texts)}")


def _opt_ins(backend: Any, model_path: str, options: dict[str, str], prompts: list[str], arms: list[Arm]) -> None:
    from harness.backends.base import BackendOptions
    from harness.backends.hf import HFBackend

    float32, float32_small = (next(a for a in arms if a.label == "ours" and a.batch == b and a.mode == "greedy")
                               for b in (DEFAULT_BATCH, BASELINE_BATCH))
    float32_stable = sum(x == y for x, y in zip(float32.texts, float32_small.texts, strict=True))
    requests = _requests(prompts, "greedy", MAX_NEW_TOKENS)
    answers = [(backend.encode_chat(r.messages), backend.tokenizer(t, add_special_tokens=False)["input_ids"])
               for r, t in zip(requests[:AGREEMENT_ANSWERS], float32.texts, strict=False)]
    reference = _next_token_logprobs(backend.model, answers)
    for label, extra, dtype in (("int8", {"quantize": "int8"}, "auto"), ("bfloat16", {}, "bfloat16")):
        other = HFBackend.load(BackendOptions(model=model_path, device="cpu", dtype=dtype, batch_size=DEFAULT_BATCH,
                                              extra={**options, **extra}))
        other.generate(requests[:2])
        arm = _timed(label, DEFAULT_BATCH, "greedy", lambda o=other: o.generate(requests))
        other.batch_size = BASELINE_BATCH
        small = _timed(label, BASELINE_BATCH, "greedy", lambda o=other: o.generate(requests))
        stable = sum(x == y for x, y in zip(arm.texts, small.texts, strict=True))
        theirs = _next_token_logprobs(other.model, answers)
        agree = sum(int((r.argmax(-1) == t.argmax(-1)).sum()) for r, t in zip(reference, theirs, strict=True))
        kl = sum(float((r.exp() * (r - t)).sum()) for r, t in zip(reference, theirs, strict=True))
        n = sum(len(r) for r in reference)
        print(f"opt-in {label} (batch {DEFAULT_BATCH}, greedy): {arm.tok_cpu_s:.1f} tok/CPU-s vs float32 "
              f"{float32.tok_cpu_s:.1f}, ratio {arm.tok_cpu_s / float32.tok_cpu_s:.2f}x; on float32's greedy answers to "
              f"{len(answers)} prompts ({n} tokens): next-token argmax agrees with float32 on {agree / n:.1%}, "
              f"KL(float32 || {label}) {kl / n:.3f} nats/token; answers identical at batch {DEFAULT_BATCH} and "
              f"{BASELINE_BATCH}: {stable}/{len(arm.texts)} (float32: {float32_stable}/{len(arm.texts)})", flush=True)


def _next_token_logprobs(model: Any, sequences: list[tuple[list[int], list[int]]]) -> list[Any]:
    """Log-probabilities (float32) the model gives each answer token's position, answers teacher-forced."""
    import torch

    out = []
    with torch.inference_mode():
        for prompt, answer in sequences:
            logits = model(torch.tensor([prompt + answer])).logits[0, len(prompt) - 1 : len(prompt) + len(answer) - 1]
            out.append(logits.float().log_softmax(-1))
    return out


def _requests(prompts: list[str], mode: str, max_new_tokens: int) -> list[Any]:
    from harness.backends.base import ChatRequest, SamplingParams

    def params(i: int) -> SamplingParams:
        if mode == "greedy":
            return SamplingParams(max_new_tokens=max_new_tokens)
        return SamplingParams(temperature=0.7, top_p=0.9, seed=i, max_new_tokens=max_new_tokens)

    return [ChatRequest(({"role": "user", "content": p},), params(i)) for i, p in enumerate(prompts)]


def _prompts(settings: Any) -> list[str]:
    """The first N_PROMPTS AlpacaEval instructions: pulled data if present, else the shared reference copy."""
    candidates = [settings.data_dir / "alpaca_eval" / "eval.jsonl",
                  Path(__file__).resolve().parents[3] / "shared" / "data" / "alpaca_eval" / "eval.jsonl"]
    for path in candidates:
        if path.exists():
            rows = [json.loads(line) for line in path.read_text().splitlines()[:N_PROMPTS]]
            return [r["instruction"] for r in rows]
    raise SystemExit(f"bench_generation: no AlpacaEval instructions at {' or '.join(map(str, candidates))}; "
                     "run `sppo-bench data pull --suites alpaca_eval`")


def _load() -> str:
    import os

    return " ".join(f"{x:.1f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
