"""Generation, judging and training of the embedded SmolLM2-135M side by side: each against this CPU's FLOP limit at
its dtype, and against the float32 path the harness ran before precision followed the checkpoint (issue 20).

Arms (one process, one torch thread, each pair interleaved so load drifts hit both):
- generation: N_PROMPTS AlpacaEval instructions, GEN_TOKENS greedy tokens at batch N_PROMPTS; float32 vs the
  checkpoint's own dtype (`--dtype auto`: bfloat16 on a CPU with AVX512-BF16/AMX); identical answers counted.
- judging: the AlpacaEval judge prompt (alpaca_eval's own template) on N_ROWS rows in both orders, the reference
  (GPT-4 turbo) output against an answer from each of two "checkpoints" (the float32 and the bfloat16 answers), one
  `choice_logprobs` call per checkpoint: float32 plain (the old path), auto plain, auto with prefix reuse; prompt
  tokens per CPU-second, the share of tokens actually computed, and the largest probability difference to float32.
- training: TRAIN_STEPS SPPO optimizer steps (8 pairs each, 32-token answers as the default profile samples) with the
  harness's trainer: float32 vs mixed precision; CPU seconds per step against the FLOP-limited step time
  (6 x linear weights x tokens, the tokens counted with their padding, which is also reported).

The FLOP limit per dtype: torch matmuls at the model's linear shapes (LIMIT_ROWS rows, weights hot in cache) give the
GFLOP/s this CPU reaches on one thread; tokens/s at the limit = that / (2 x linear weights + attention) per token.
All rates are per CPU-second of this process (time.process_time), the steady figure on a shared machine; wall times
are printed too. Run: `python -m tests.perf bench_precision` (about 10 minutes on one loaded core).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

N_PROMPTS = 16
GEN_TOKENS = 64
N_ROWS = 6
TRAIN_STEPS = 2
LIMIT_ROWS = 512
DTYPES = ("float32", "auto")


def main() -> None:
    import torch

    from harness.backends.base import BackendOptions
    from harness.backends.hf import HFBackend
    from harness.errors import UserError
    from harness.models import resolve_model
    from harness.settings import from_env

    torch.set_num_threads(1)
    settings = from_env()
    try:
        model_path = resolve_model(settings, None)
    except (ImportError, UserError) as exc:
        print(f"bench_precision: skipped, the embedded default is not available ({exc})")
        return
    rows = _alpaca_rows(settings)
    backends = {d: HFBackend.load(BackendOptions(model=model_path, device="cpu", dtype=d, batch_size=N_PROMPTS,
                                                 extra={"threads": "1"})) for d in DTYPES}
    plain = {d: HFBackend.load(BackendOptions(model=model_path, device="cpu", dtype=d, batch_size=8,
                                              extra={"threads": "1", "prefix_cache": "off"})) for d in DTYPES}
    auto = backends["auto"].precision
    print(f"model {model_path}; auto = {auto.dtype} ({auto.reason}); torch {torch.__version__}, 1 thread", flush=True)
    limits = {d: _flop_limit(backends[d].model) for d in DTYPES}
    table: list[tuple[str, str, float, float, str]] = []
    answers = _generation(backends, rows, limits, table)
    _judging(backends, plain, rows, answers, limits, table)
    _training(model_path, rows, answers, limits, table)
    print("\n| workload | path | per CPU-second | % of FLOP limit | notes |\n|---|---|---|---|---|")
    for work, path, rate, pct, note in table:
        print(f"| {work} | {path} | {rate:.1f} | {pct:.0f}% | {note} |")


def _generation(backends: dict[str, Any], rows: list[dict[str, str]], limits: dict[str, Any],
                table: list[Any]) -> dict[str, list[str]]:
    from harness.backends.base import ChatRequest, SamplingParams

    requests = [ChatRequest(({"role": "user", "content": r["instruction"]},), SamplingParams(max_new_tokens=GEN_TOKENS))
                for r in rows[:N_PROMPTS]]
    for b in backends.values():
        b.generate(requests[:2])  # warm-up
    runs: dict[str, list[Any]] = {d: [] for d in DTYPES}
    for _ in range(2):
        for d in DTYPES:
            runs[d].append(_timed(lambda d=d: backends[d].generate(requests)))
    texts = {d: [c.text for c in runs[d][0][2]] for d in DTYPES}
    same = sum(a == b for a, b in zip(texts["float32"], texts["auto"], strict=True))
    base = None
    for d in DTYPES:
        wall, cpu, out = min(runs[d], key=lambda r: r[1])
        rate = sum(c.completion_tokens for c in out) / cpu
        base = base or rate
        limit = limits[d].tok_s(_mean_context(backends[d], requests) + GEN_TOKENS / 2)
        table.append(("generation tok", _label(backends[d]), rate, 100 * rate / limit,
                      f"{rate / base:.2f}x float32; wall {wall:.1f} s; identical greedy answers {same}/{len(out)}"))
    return texts


def _judging(backends: dict[str, Any], plain: dict[str, Any], rows: list[dict[str, str]], answers: dict[str, list[str]],
             limits: dict[str, Any], table: list[Any]) -> None:
    from benchmarks.alpaca_eval.judging import LOCAL, judge_messages
    from harness.backends.base import ChoiceRequest

    def calls(checkpoint: str) -> list[Any]:
        out = []
        for row, answer in zip(rows[:N_ROWS], answers[checkpoint], strict=False):
            for first, second in ((row["output"], answer), (answer, row["output"])):
                out.append(ChoiceRequest(judge_messages(row["instruction"], first, second), LOCAL.choices,
                                         LOCAL.assistant_prefix))
        return out

    work = [calls("float32"), calls("auto")]
    tokens = sum(len(backends["auto"].encode_chat(r.messages, r.assistant_prefix)) for w in work for r in w)
    arms = {"float32 plain": plain["float32"], f"{_label(plain['auto'])} plain": plain["auto"],
            f"{_label(backends['auto'])} prefix reuse": backends["auto"]}
    results: dict[str, Any] = {}
    for name, backend in arms.items():
        backend.batch_size = 8
        results[name] = _timed(lambda b=backend: [b.choice_logprobs(w) for w in work])
    reference = [p for w in results["float32 plain"][2] for p in w]
    base = None
    for name, (wall, cpu, out) in results.items():
        rate = tokens / cpu
        base = base or rate
        probs = [p for w in out for p in w]
        diff = max(abs(_prob(a) - _prob(b)) for a, b in zip(reference, probs, strict=True))
        stats = getattr(arms[name]._prefix, "stats", None)
        computed = f"; computed {stats['computed_tokens'] / stats['prompt_tokens']:.0%} of the tokens" if stats else ""
        dtype = arms[name].precision.dtype
        table.append(("judge prompt tok", name, rate, 100 * rate / limits[_key(dtype)].tok_s(tokens / len(probs)),
                      f"{rate / base:.2f}x float32; wall {wall:.1f} s; max |P(m) - P(m) float32| {diff:.4f}{computed}"))


def _training(model_path: str, rows: list[dict[str, str]], answers: dict[str, list[str]], limits: dict[str, Any],
              table: list[Any]) -> None:
    import pandas as pd

    from harness.sppo.config import TrainConfig
    from harness.sppo.trainer import train_iteration

    pairs = 8 * TRAIN_STEPS
    frame = pd.DataFrame([{"prompt": [{"role": "user", "content": rows[i % len(rows)]["instruction"]}],
                           "chosen": [{"role": "assistant", "content": _words(answers["auto"][i % N_PROMPTS])}],
                           "rejected": [{"role": "assistant", "content": _words(answers["float32"][(i + 1) % N_PROMPTS])}],
                           "chosen_probs": 0.6, "chosen_probs_win": 0.6, "chosen_probs_lose": 0.4} for i in range(pairs)])
    cfg = TrainConfig(learning_rate=2e-5, per_device_batch_size=8, global_batch_size=8, epochs=1.0, max_length=512,
                      max_prompt_length=256, device="cpu", gradient_checkpointing=False)
    padded, real = _batch_tokens(model_path, frame)
    base = None
    for d in DTYPES:
        steps: list[float] = []
        with tempfile.TemporaryDirectory(prefix="bench-precision-") as tmp, _step_clock(steps):
            wall, cpu, out = _timed(lambda d=d, tmp=tmp: train_iteration(model_path, frame, cfg, Path(tmp), dtype=d))
        per_step = sum(steps) / len(steps)
        limit = limits[_key(out.precision)]
        limit_s = 6 * limit.weights * padded / TRAIN_STEPS / (limit.gflops * 1e9)
        base = base or per_step
        table.append(("train step (CPU s)", out.precision if out.precision == "float32" else f"{out.precision} mixed",
                      per_step, 100 * limit_s / per_step,
                      f"{base / per_step:.2f}x float32 speed; FLOP-limited step {limit_s:.1f} s; whole iteration "
                      f"{cpu:.0f} CPU-s / {wall:.0f} s wall (load, reference log-probs once, {out.steps} steps); "
                      f"padding {1 - real / padded:.0%} of the tokens"))


@contextmanager
def _step_clock(steps: list[float]) -> Iterator[None]:
    """CPU seconds of each optimizer step's forward and backward (the trainer's `training_step`)."""
    from harness.sppo.trainer import SPPOTrainer

    original = SPPOTrainer.training_step

    def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.process_time()
        try:
            return original(self, *args, **kwargs)
        finally:
            steps.append(time.process_time() - start)

    SPPOTrainer.training_step = timed  # type: ignore[method-assign]
    try:
        yield
    finally:
        SPPOTrainer.training_step = original  # type: ignore[method-assign]


class _Limit:
    def __init__(self, gflops: float, weights: int, layers: int, width: int) -> None:
        self.gflops, self.weights, self.layers, self.width = gflops, weights, layers, width

    def tok_s(self, context: float) -> float:
        return self.gflops * 1e9 / (2 * self.weights + 4 * self.layers * self.width * context)


def _flop_limit(model: Any) -> _Limit:
    import torch

    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    dtype = next(model.parameters()).dtype
    seconds = flops = 0.0
    for shape in {tuple(m.weight.shape) for m in linears}:
        count = sum(1 for m in linears if tuple(m.weight.shape) == shape)
        w, x = torch.randn(*shape, dtype=dtype), torch.randn(LIMIT_ROWS, shape[1], dtype=dtype)
        seconds += count * _best(lambda w=w, x=x: torch.nn.functional.linear(x, w))
        flops += count * 2 * LIMIT_ROWS * shape[0] * shape[1]
    cfg = model.config
    limit = _Limit(flops / seconds / 1e9, sum(m.weight.numel() for m in linears), cfg.num_hidden_layers,
                   cfg.num_attention_heads * cfg.head_dim)
    print(f"matmul limit {dtype}: {limit.gflops:.1f} GFLOP/s at the model's linear shapes ({LIMIT_ROWS} rows)", flush=True)
    return limit


def _best(fn: Callable[[], Any], repeat: int = 5) -> float:
    import torch

    with torch.inference_mode():
        fn()
        best = float("inf")
        for _ in range(repeat):
            start = time.process_time()
            fn()
            best = min(best, time.process_time() - start)
    return best


def _timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, out


def _batch_tokens(model_path: str, frame: Any) -> tuple[int, int]:
    """(tokens with padding, real tokens) of the chosen+rejected sequences in batches of 8, as TRL pads them."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_path)
    lengths = []
    for _, row in frame.iterrows():
        prompt = len(tok.apply_chat_template(list(row["prompt"]), add_generation_prompt=True, tokenize=True))
        lengths += [prompt + len(tok(row[k][0]["content"])["input_ids"]) + 1 for k in ("chosen", "rejected")]
    padded = sum(16 * max(lengths[i : i + 16]) for i in range(0, len(lengths), 16))
    return padded, sum(lengths)


def _words(text: str, n: int = 24) -> str:
    return " ".join(text.split()[:n]) or "I do not know."


def _mean_context(backend: Any, requests: list[Any]) -> float:
    return sum(len(backend.encode_chat(r.messages)) for r in requests) / len(requests)


def _prob(logprobs: dict[str, float]) -> float:
    import math

    return math.exp(logprobs["m"])


def _label(backend: Any) -> str:
    return backend.precision.dtype


def _key(dtype: str) -> str:
    return "float32" if dtype == "float32" else "auto"


def _alpaca_rows(settings: Any) -> list[dict[str, str]]:
    for path in (settings.data_dir / "alpaca_eval" / "eval.jsonl",
                 Path(__file__).resolve().parents[3] / "shared" / "data" / "alpaca_eval" / "eval.jsonl"):
        if path.exists():
            return [json.loads(line) for line in path.read_text().splitlines()[:max(N_PROMPTS, N_ROWS)]]
    raise SystemExit("bench_precision: no AlpacaEval data; run `sppo-bench data pull --suites alpaca_eval`")


if __name__ == "__main__":
    main()
