"""Today's hf generation path, frozen for `bench_generation` as its baseline: a verbatim copy of `generate`,
`_generate_batch`, `_row_sampler` and `_row_stop` from harness/backends/hf.py at commit e3c62f1 (before the decoding
loop of harness/backends/hf_decode.py replaced `model.generate`), run on an `HFBackend`'s model and tokenizer.
Only the `self.` receivers became a `backend` argument and the `top_logprobs` branch (unused here) is left out;
the logic is unchanged."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from harness.backends.base import ChatRequest, Completion

_U_BLOCK = 64


def generate(backend: Any, requests: Sequence[ChatRequest], batch_size: int) -> list[Completion]:
    prompts = [backend.encode_chat(r.messages) for r in requests]
    order = sorted(range(len(requests)), key=lambda i: (requests[i].params.max_new_tokens, len(prompts[i])))
    out: list[Completion | None] = [None] * len(requests)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        for i, completion in zip(idx, _generate_batch(backend, [requests[i] for i in idx], [prompts[i] for i in idx]),
                                 strict=True):
            out[i] = completion
    return [c for c in out if c is not None]


def _generate_batch(backend: Any, requests: list[ChatRequest], prompts: list[list[int]]) -> list[Completion]:
    import torch
    from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

    params = [r.params for r in requests]
    input_ids, attention_mask = _left_pad(backend, prompts)
    prompt_len = input_ids.shape[1]
    max_new = max(p.max_new_tokens for p in params)
    want_logprobs = any(p.top_logprobs for p in params)
    processors = LogitsProcessorList()
    if any(p.temperature > 0 for p in params):
        processors.append(_row_sampler(params, prompt_len, input_ids.device))
    stopper = None
    if any(p.stop for p in params) or len({p.max_new_tokens for p in params}) > 1:
        stopper = _row_stop(backend.tokenizer, prompt_len, params)
    config = GenerationConfig(max_new_tokens=max_new, do_sample=False, num_beams=1, eos_token_id=backend.eos_ids,
                              pad_token_id=backend.tokenizer.pad_token_id, return_dict_in_generate=True,
                              output_logits=want_logprobs)
    with torch.inference_mode():
        out = backend.model.generate(input_ids=input_ids, attention_mask=attention_mask, generation_config=config,
                                     logits_processor=processors,
                                     stopping_criteria=StoppingCriteriaList([stopper] if stopper else []))
    generated = out.sequences[:, prompt_len:].tolist()
    completions = []
    for row, p in enumerate(params):
        ids = generated[row][: p.max_new_tokens]
        if stopper is not None and stopper.done_at[row] is not None:
            ids = ids[: stopper.done_at[row]]
        eos_at = next((k for k, t in enumerate(ids) if t in backend.eos_ids), None)
        if eos_at is not None:
            ids = ids[:eos_at]
        text = backend.tokenizer.decode(ids, skip_special_tokens=True)
        cut = min((text.index(s) for s in p.stop if s and s in text), default=None)
        if cut is not None:
            text = text[:cut]
        hit_limit = eos_at is None and cut is None and len(ids) >= p.max_new_tokens
        completions.append(Completion(text=text, prompt_tokens=len(prompts[row]), completion_tokens=len(ids),
                                      finish_reason="length" if hit_limit else "stop"))
    return completions


def _left_pad(backend: Any, prompts: list[list[int]]) -> tuple[Any, Any]:
    import torch

    width = max(len(p) for p in prompts)
    pad = backend.tokenizer.pad_token_id
    ids = [[pad] * (width - len(p)) + p for p in prompts]
    mask = [[0] * (width - len(p)) + [1] * len(p) for p in prompts]
    device = backend.model.device
    return torch.tensor(ids, device=device), torch.tensor(mask, device=device)


def _row_sampler(params: list[Any], prompt_len: int, device: Any) -> Any:
    import torch
    from transformers import LogitsProcessor

    rows = [i for i, p in enumerate(params) if p.temperature > 0]
    steps = max(p.max_new_tokens for p in params)
    uniforms = torch.full((len(rows), steps), 0.5)
    for k, i in enumerate(rows):
        gen = torch.Generator(device="cpu").manual_seed(params[i].seed)
        n = params[i].max_new_tokens
        blocks = torch.cat([torch.rand(_U_BLOCK, generator=gen) for _ in range(-(-n // _U_BLOCK))])
        uniforms[k, :n] = blocks[:n]
    uniforms = uniforms.to(device)
    temps = torch.tensor([params[i].temperature for i in rows], device=device)[:, None]
    top_p = torch.tensor([params[i].top_p if params[i].top_p < 1 else math.inf for i in rows], device=device)[:, None]
    use_top_p = any(params[i].top_p < 1.0 for i in rows)
    every_row = len(rows) == len(params)
    row_idx = torch.tensor(rows, device=device)

    class _RowSampler(LogitsProcessor):
        def __call__(self, input_ids: Any, scores: Any) -> Any:
            step = min(input_ids.shape[1] - prompt_len, steps - 1)
            u = uniforms[:, step : step + 1]
            probs = torch.softmax((scores if every_row else scores[row_idx]) / temps, dim=-1)
            if use_top_p:
                ranked, order = probs.sort(dim=-1, descending=True)
                keep = torch.empty_like(probs).scatter_(1, order, ((ranked.cumsum(-1) - ranked) < top_p).to(probs.dtype))
                probs = probs * keep
            cdf = probs.cumsum(-1)
            tokens = torch.searchsorted(cdf, u * cdf[:, -1:], right=True).clamp(max=probs.shape[-1] - 1)
            if every_row:
                return torch.full_like(scores, -math.inf).scatter_(1, tokens, 0.0)
            out = scores.clone()
            out[row_idx] = -math.inf
            out[row_idx[:, None], tokens] = 0.0
            return out

    return _RowSampler()


def _row_stop(tokenizer: Any, prompt_len: int, params: list[Any]) -> Any:
    import torch
    from transformers import StoppingCriteria

    window = max((len(s) for p in params for s in p.stop), default=0) + 8

    class _RowStop(StoppingCriteria):
        def __init__(self) -> None:
            self.done_at: list[int | None] = [None] * len(params)

        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            n = input_ids.shape[1] - prompt_len
            tails = input_ids[:, -min(window, n):].tolist() if any(p.stop for p in params) else None
            for row, p in enumerate(params):
                if self.done_at[row] is not None:
                    continue
                hit = n >= p.max_new_tokens
                if not hit and p.stop and tails is not None:
                    tail = tokenizer.decode(tails[row], skip_special_tokens=True)
                    hit = any(s and s in tail for s in p.stop)
                if hit:
                    self.done_at[row] = n
            return torch.tensor([d is not None for d in self.done_at], device=input_ids.device)

    return _RowStop()
