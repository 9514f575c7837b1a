"""hf backend speed on the embedded default: first-turn MT-Bench answers for 16 questions, max_new_tokens 128,
temperature 0.7 for every arm. Three ratios, measured in one process on one loaded model:

1. ours vs FastChat `gen_model_answer`'s loop: one question at a time, `torch.manual_seed`, `model.generate`,
   cut at the stop token, decode (the loop of fastchat/llm_judge/gen_model_answer.py `get_model_answers`, with the
   tokenizer's chat template in place of FastChat's conversation template so both arms see the same prompts);
   target >= 4x.
2. ours vs a bare batched `model.generate` loop (left-padded batches of the same size, transformers' own sampling):
   our overhead (chat rendering, per-row seeded sampling, bookkeeping); target <= 10%.
3. cold vs warm generation cache (the same 16 requests again through `CachedBackend`); target >= 50x.

Run: `python -m tests.perf bench_backends` (set SPPO_BENCH_HOME to where the embedded default is prepared). On a GPU:
`python -c "import tests.perf.bench_backends as b; b.DEVICE = 'cuda'; b.main()"`.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

N_QUESTIONS = 16
MAX_NEW_TOKENS = 128
TEMPERATURE = 0.7
BATCH_SIZE = 16
REPEATS = 2  # ours and the bare loop alternate, best of REPEATS each (the machine is shared)
DEVICE = "cpu"
CPU_THREADS: int | None = 1
"""torch intra-op threads on CPU. One by default: on the shared 2-core machine, two OpenMP threads stall at every
barrier whenever another process holds a core, which slows the one-token-at-a-time baseline most and would flatter
us. Every arm runs with the same setting. None keeps torch's default (use on a quiet machine)."""


def main() -> None:
    from harness.backends.base import BackendOptions, ChatRequest, SamplingParams
    from harness.backends.cache import CachedBackend
    from harness.backends.hf import HFBackend
    from harness.errors import UserError
    from harness.settings import from_env

    settings = from_env()
    try:
        from harness.models import resolve_model

        model_path = resolve_model(settings, None)
    except (ImportError, UserError) as exc:
        print(f"bench_backends: skipped, the embedded default is not available ({exc})")
        return
    questions = _questions(settings)
    if DEVICE == "cpu" and CPU_THREADS:
        import torch

        torch.set_num_threads(CPU_THREADS)
    ours = HFBackend.load(BackendOptions(model=model_path, device=DEVICE, batch_size=BATCH_SIZE))
    model, tokenizer = ours.model, ours.tokenizer
    params = SamplingParams(temperature=TEMPERATURE, max_new_tokens=MAX_NEW_TOKENS, seed=0)
    requests = [ChatRequest(({"role": "user", "content": q},), params) for q in questions]
    print(f"model {model_path}, {len(questions)} MT-Bench first turns, max_new_tokens {MAX_NEW_TOKENS}, "
          f"temperature {TEMPERATURE}, batch {BATCH_SIZE}, device {DEVICE}, torch threads {_threads()}", flush=True)

    # warm-up at full batch size (allocator, kernel selection for these shapes), for every arm alike
    ours.generate([replace(r, params=replace(params, max_new_tokens=8)) for r in requests])
    t_fastchat, n_fastchat = _timed(lambda: _fastchat_loop(model, tokenizer, questions))
    print(f"  fastchat sequential loop: {t_fastchat:.1f} s, {n_fastchat} tokens", flush=True)
    t_ours, t_bare, n_ours, n_bare = [], [], 0, 0
    for _ in range(REPEATS):
        t, n_ours = _timed(lambda: sum(c.completion_tokens for c in ours.generate(requests)))
        t_ours.append(t)
        t, n_bare = _timed(lambda: _bare_batched(model, tokenizer, questions))
        t_bare.append(t)
        print(f"  ours {t_ours[-1]:.1f} s ({n_ours} tokens), bare batched generate {t_bare[-1]:.1f} s "
              f"({n_bare} tokens)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        cached = CachedBackend(ours, Path(tmp) / "cache.sqlite")
        t_cold, _ = _timed(lambda: len(cached.generate(requests)))
        t_warm, hits = _timed(lambda: sum(c.cached for c in cached.generate(requests)))
    assert hits == len(requests), f"only {hits} of {len(requests)} answered from the warm cache"

    best_ours, best_bare = min(t_ours), min(t_bare)
    print(f"vs_fastchat_sequential: ours {best_ours:.2f} s, baseline {t_fastchat:.2f} s, "
          f"ratio {t_fastchat / best_ours:.2f}x (target >= 4x)")
    print(f"overhead_vs_bare_generate: ours {best_ours:.2f} s, baseline {best_bare:.2f} s, "
          f"ratio {best_ours / best_bare:.3f} = {100 * (best_ours / best_bare - 1):+.1f}% (target <= +10%)")
    print(f"warm_cache: warm {t_warm * 1000:.1f} ms, cold {t_cold:.2f} s, ratio {t_cold / t_warm:.0f}x (target >= 50x)")


def _questions(settings: Any) -> list[str]:
    """The first N first-turn MT-Bench questions: pulled data if present, else the shared reference copy."""
    candidates = [settings.data_dir / "mt_bench" / "question.jsonl",
                  Path(__file__).resolve().parents[3] / "shared" / "data" / "mt_bench" / "question.jsonl"]
    for path in candidates:
        if path.exists():
            rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            return [r["turns"][0] for r in rows[:N_QUESTIONS]]
    raise SystemExit(f"bench_backends: no MT-Bench questions at {' or '.join(map(str, candidates))}; "
                     "run `sppo-bench data pull --suites mt_bench`")


def _fastchat_loop(model: Any, tokenizer: Any, questions: list[str]) -> int:
    """FastChat gen_model_answer's per-question loop (num_choices=1, so torch.manual_seed(0) before each)."""
    import torch

    stop_ids = set(_eos(model, tokenizer))
    tokens = 0
    for q in questions:
        torch.manual_seed(0)
        prompt = tokenizer.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True,
                                               tokenize=False)
        input_ids = tokenizer([prompt], add_special_tokens=False).input_ids
        with torch.inference_mode():
            output_ids = model.generate(torch.as_tensor(input_ids, device=model.device), do_sample=True,
                                        temperature=TEMPERATURE, top_p=1.0, top_k=0, max_new_tokens=MAX_NEW_TOKENS,
                                        pad_token_id=tokenizer.pad_token_id)
        output_ids = output_ids[0][len(input_ids[0]) :].tolist()
        cut = next((i for i, t in enumerate(output_ids) if t in stop_ids), len(output_ids))
        tokenizer.decode(output_ids[:cut], spaces_between_special_tokens=False).strip()
        tokens += cut
    return tokens


def _bare_batched(model: Any, tokenizer: Any, questions: list[str]) -> int:
    """The least a batched run can do: render, left-pad, one `model.generate` per batch, decode."""
    import torch

    stop_ids = set(_eos(model, tokenizer))
    tokens = 0
    for start in range(0, len(questions), BATCH_SIZE):
        prompts = [tokenizer.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True,
                                                 tokenize=False) for q in questions[start : start + BATCH_SIZE]]
        batch = tokenizer(prompts, add_special_tokens=False, padding=True, return_tensors="pt").to(model.device)
        torch.manual_seed(0)
        with torch.inference_mode():
            out = model.generate(**batch, do_sample=True, temperature=TEMPERATURE, top_p=1.0, top_k=0,
                                 max_new_tokens=MAX_NEW_TOKENS, pad_token_id=tokenizer.pad_token_id)
        for row in out[:, batch["input_ids"].shape[1] :].tolist():
            cut = next((i for i, t in enumerate(row) if t in stop_ids), len(row))
            tokenizer.decode(row[:cut], skip_special_tokens=True)
            tokens += cut
    return tokens


def _eos(model: Any, tokenizer: Any) -> list[int]:
    from harness.backends.hf import _eos_ids

    return _eos_ids(model, tokenizer)


def _timed(fn: Callable[[], int]) -> tuple[float, int]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def _threads() -> int:
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    main()
