"""Decode-step attention of the hf backend (harness.backends.hf_attention) against transformers' `sdpa` path, side by
side in one process (arms alternated, best of ROUNDS):
- one layer of the embedded SmolLM2's attention (9 query heads over 3 key/value heads, head dim 64) for a one-position
  query over CACHED positions at batch ROWS: `repeat_kv` + `scaled_dot_product_attention` (what `sdpa` runs) vs the
  group's query heads as rows of one query; float32 and bfloat16, with the largest output difference;
- whole greedy decoding of the embedded model (the first N_PROMPTS IFEval prompts, GEN_TOKENS tokens, one batch) in
  its own dtype: tokens/s with each attention, and how many answers are identical.
Run: `python -m tests.perf bench_attention` (a few minutes on 2 cores).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

ROWS, HEADS, GROUPS, DIM, CACHED = 14, 9, 3, 64, 1500
N_PROMPTS, GEN_TOKENS, ROUNDS = 32, 128, 2


def main() -> None:
    import torch

    from harness.errors import UserError
    from harness.models import resolve_model
    from harness.settings import from_env

    for dtype in (torch.float32, torch.bfloat16):
        _layer(dtype)
    settings = from_env()
    try:
        model_path = resolve_model(settings, None)
    except (ImportError, UserError) as exc:
        print(f"bench_attention: decoding skipped, the embedded default is not available ({exc})")
        return
    _decoding(settings, str(model_path))


def _best(fn: Callable[[], Any], n: int) -> float:
    fn()
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - start) / n)
    return best


def _layer(dtype: Any) -> None:
    import torch
    import torch.nn.functional as F

    gen = torch.Generator().manual_seed(0)
    q = torch.randn(ROWS, HEADS, 1, DIM, generator=gen).to(dtype)
    k, v = (torch.randn(ROWS, GROUPS, CACHED, DIM, generator=gen).to(dtype) for _ in range(2))
    mask = torch.ones(ROWS, 1, 1, CACHED, dtype=torch.bool)
    rep = HEADS // GROUPS

    def expanded() -> Any:  # transformers' sdpa path: repeat_kv, then one query position per head
        kk = k[:, :, None].expand(ROWS, GROUPS, rep, CACHED, DIM).reshape(ROWS, HEADS, CACHED, DIM)
        vv = v[:, :, None].expand(ROWS, GROUPS, rep, CACHED, DIM).reshape(ROWS, HEADS, CACHED, DIM)
        return F.scaled_dot_product_attention(q, kk, vv, attn_mask=mask)

    def grouped() -> Any:
        return F.scaled_dot_product_attention(q.reshape(ROWS, GROUPS, rep, DIM), k, v, attn_mask=mask)

    diff = (expanded().float() - grouped().float().reshape(ROWS, HEADS, 1, DIM)).abs().max().item()
    a, b = _best(expanded, 20), _best(grouped, 20)
    print(f"decode attention, one layer, {ROWS} rows x {CACHED} cached positions, {dtype}: sdpa+repeat_kv "
          f"{a * 1e3:.2f} ms, grouped {b * 1e3:.2f} ms, ratio {a / b:.2f}x; max |difference| {diff:.1e}")


def _decoding(settings: Any, model_path: str) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.backends import hf_attention
    from harness.backends.base import SamplingParams
    from harness.backends.hf_decode import decode
    from harness.backends.precision import resolve_precision

    dtype = resolve_precision("auto", model_path, "cpu").dtype
    tok = AutoTokenizer.from_pretrained(model_path)
    path = settings.home / "data" / "ifeval" / "train.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()[:N_PROMPTS]]
    prompts = [list(tok.apply_chat_template([{"role": "user", "content": r["prompt"]}], add_generation_prompt=True,
                                            return_dict=True)["input_ids"]) for r in rows]
    params = [SamplingParams(temperature=0.0, max_new_tokens=GEN_TOKENS)] * len(prompts)
    answers: dict[str, list[list[int]]] = {}
    seconds: dict[str, float] = {"sdpa": float("inf"), "grouped": float("inf")}
    tokens: dict[str, int] = {}
    original = hf_attention.use_grouped_decode
    for _ in range(ROUNDS):
        for arm in ("sdpa", "grouped"):
            model = AutoModelForCausalLM.from_pretrained(model_path, dtype=getattr(torch, dtype)).eval()
            hf_attention.use_grouped_decode = original if arm == "grouped" else (lambda m: m)  # type: ignore[assignment]
            try:
                start = time.perf_counter()
                out = decode(model, prompts, params, eos_ids=[tok.eos_token_id], pad_id=tok.pad_token_id or 0,
                             detokenize=tok.decode)
                seconds[arm] = min(seconds[arm], time.perf_counter() - start)
            finally:
                hf_attention.use_grouped_decode = original  # type: ignore[assignment]
            answers[arm], tokens[arm] = [d.ids for d in out], sum(len(d.ids) for d in out)
    same = sum(x == y for x, y in zip(answers["sdpa"], answers["grouped"], strict=True))
    rate = {arm: tokens[arm] / seconds[arm] for arm in seconds}
    print(f"greedy decoding, {N_PROMPTS} IFEval prompts x {GEN_TOKENS} tokens, {dtype}, {torch.get_num_threads()} "
          f"threads: sdpa {rate['sdpa']:.0f} tok/s, grouped {rate['grouped']:.0f} tok/s, ratio "
          f"{rate['grouped'] / rate['sdpa']:.2f}x; identical answers {same}/{N_PROMPTS}")
