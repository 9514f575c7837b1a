"""The hf backend's decoding loop: one batch of left-padded prompts, each with its own sampling parameters.

Why not `model.generate`: on CPU its per-step machinery (logits processors and stopping criteria run on the whole
batch, a full-vocabulary sort for top-p) costs a quarter of the time at batch 8, it keeps computing rows that have
finished, and its cache copies itself at every step. Here the prompts are prefilled in groups of similar length (no
forward passes over another group's padding), the KV cache is allocated once for the whole generation, each step is
one forward pass over the batch, and rows that hit EOS, their own `max_new_tokens` or a stop string are dropped from
the batch and its cache once a quarter of the rows in it have finished.

Sampling is per row and independent of batch composition (the same as the `model.generate` path it replaced, token
for token): a sampled row draws one uniform number per generated token from its own CPU `torch.Generator` seeded with
the request's seed (drawn up front in fixed blocks, so a longer `max_new_tokens` extends the same stream), and picks
the token by inverse CDF in vocabulary order over its temperature-scaled, top-p-truncated distribution. Top-p keeps the
smallest prefix of the sorted distribution whose mass reaches top_p; it is looked for among the `_NUCLEUS_GUESS` most
likely tokens, and the whole vocabulary is sorted only when some row's nucleus is larger. Greedy rows take the argmax.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from harness.backends.base import SamplingParams

U_BLOCK = 64  # uniforms are drawn from a request's generator in blocks of this size
_NUCLEUS_GUESS = 256  # top-p candidates tried before a full sort of the vocabulary
_PREFILL_ROWS = 8  # prompts run together in one prefill forward pass
_COMPACT_FRACTION = 4  # drop finished rows once 1/_COMPACT_FRACTION of the live rows have finished


@dataclass
class Decoded:
    """One row's result: generated token ids (EOS excluded), why it stopped, and its per-step top log-probs."""

    ids: list[int]
    finish: str  # "stop" (EOS or a stop string) or "length"
    top: list[tuple[list[float], list[int]]] | None = None


def decode(model: Any, prompts: Sequence[list[int]], params: Sequence[SamplingParams], *, eos_ids: Sequence[int],
           pad_id: int, detokenize: Callable[[list[int]], str]) -> list[Decoded]:
    """Generate for every prompt (token ids, unpadded) with its own parameters; results in input order."""
    import torch

    from harness.backends.hf_attention import use_grouped_decode

    device = model.device
    if device.type == "cpu":
        use_grouped_decode(model)  # decode steps without copying the cache per query head (that module's figures)
    width, max_new = max(len(p) for p in prompts), max(p.max_new_tokens for p in params)
    # One mask for the whole generation: prompt padding 0, every generated slot 1; each step passes its prefix.
    mask = torch.ones(len(prompts), width + max_new, dtype=torch.long, device=device)
    for row, p in enumerate(prompts):
        mask[row, : width - len(p)] = 0
    next_pos = torch.tensor([[len(p)] for p in prompts], device=device)  # where each row's first new token goes
    state = _Rows(params, eos_ids, detokenize, device)
    with torch.inference_mode():
        logits, kv = _prefill(model, prompts, mask[:, :width], pad_id, width + max_new)
        for step in range(max_new):
            tokens = state.pick(logits, step)
            state.record(tokens.tolist())
            if not state.live:
                break
            keep = state.compact_if_worth_it()
            if keep is not None:
                index = torch.tensor(keep, device=device)
                tokens, mask, next_pos = tokens[index], mask[index], next_pos[index]
                kv.batch_select_indices(index)
            logits = _forward(model, tokens[:, None], mask, next_pos + step, kv)
    return state.results


class _Rows:
    """Per-row bookkeeping: which rows are still in the batch, their tokens so far, their sampler state."""

    def __init__(self, params: Sequence[SamplingParams], eos_ids: Sequence[int], detokenize: Callable[[list[int]], str],
                 device: Any) -> None:
        self.params = list(params)
        self.eos = set(eos_ids)
        self.detokenize = detokenize
        self.results = [Decoded([], "length", [] if p.top_logprobs else None) for p in params]
        self.slots = list(range(len(params)))  # original row of each row in the current batch
        self.live = set(self.slots)
        self.sampler = _Sampler(self.params, device)
        self.window = max((len(s) for p in params for s in p.stop), default=0) + 8  # tokens enough to hold a stop

    def pick(self, logits: Any, step: int) -> Any:
        for slot, row in enumerate(self.slots):
            k = self.params[row].top_logprobs
            if k and row in self.live:
                values, ids = logits[slot].float().log_softmax(-1).topk(k)
                self.results[row].top.append((values.tolist(), ids.tolist()))  # type: ignore[union-attr]
        return self.sampler.pick(logits, step)

    def record(self, tokens: list[int]) -> None:
        for slot, row in enumerate(self.slots):
            if row not in self.live:
                continue
            result, p = self.results[row], self.params[row]
            if tokens[slot] in self.eos:
                result.finish = "stop"
                if result.top:
                    result.top.pop()
                self.live.discard(row)
                continue
            result.ids.append(tokens[slot])
            if len(result.ids) >= p.max_new_tokens:
                self.live.discard(row)
            elif p.stop:
                tail = self.detokenize(result.ids[-self.window :])
                if any(s and s in tail for s in p.stop):
                    result.finish = "stop"
                    self.live.discard(row)

    def compact_if_worth_it(self) -> list[int] | None:
        """Batch positions to keep when enough rows have finished (and drop the rest here); None to keep all."""
        finished = len(self.slots) - len(self.live)
        if finished * _COMPACT_FRACTION < len(self.slots):
            return None
        keep = [slot for slot, row in enumerate(self.slots) if row in self.live]
        self.slots = [self.slots[slot] for slot in keep]
        self.sampler.select(keep)
        return keep


class _Sampler:
    """Greedy or seeded inverse-CDF sampling for each row of the current batch (see the module docstring)."""

    def __init__(self, params: list[SamplingParams], device: Any) -> None:
        import torch

        self.torch = torch
        steps = max(p.max_new_tokens for p in params)
        uniforms = torch.full((len(params), steps), 0.5)
        for row, p in enumerate(params):
            if p.temperature > 0:
                gen = torch.Generator(device="cpu").manual_seed(p.seed)
                blocks = torch.cat([torch.rand(U_BLOCK, generator=gen) for _ in range(-(-p.max_new_tokens // U_BLOCK))])
                uniforms[row, : p.max_new_tokens] = blocks[: p.max_new_tokens]
        self.uniforms = uniforms.to(device)
        self.temps = torch.tensor([p.temperature if p.temperature > 0 else 1.0 for p in params], device=device)
        # top_p >= 1 keeps every token exactly (no float round-off trimming the tail)
        self.top_p = torch.tensor([p.top_p if p.top_p < 1 else math.inf for p in params], device=device)
        self.sampled = torch.tensor([p.temperature > 0 for p in params], device=device)
        self.any_sampled = any(p.temperature > 0 for p in params)
        self.all_sampled = all(p.temperature > 0 for p in params)
        self.any_top_p = any(p.temperature > 0 and p.top_p < 1 for p in params)

    def select(self, keep: list[int]) -> None:
        index = self.torch.tensor(keep, device=self.uniforms.device)
        self.uniforms, self.temps, self.top_p, self.sampled = (t[index] for t in (self.uniforms, self.temps,
                                                                                   self.top_p, self.sampled))
        self.any_sampled, self.all_sampled = bool(self.sampled.any()), bool(self.sampled.all())
        self.any_top_p = self.any_top_p and bool((self.sampled & self.top_p.isfinite()).any())

    def pick(self, logits: Any, step: int) -> Any:
        torch = self.torch
        if not self.any_sampled:
            return logits.argmax(-1)
        greedy = None if self.all_sampled else logits.argmax(-1)
        probs = torch.softmax(logits.float().div_(self.temps[:, None]), dim=-1)  # logits are ours to overwrite
        if self.any_top_p:
            probs.mul_(self._nucleus(probs))
        # Draw in vocabulary order, so a row's draw is the same whether or not other rows use top-p.
        cdf = probs.cumsum_(-1)
        u = self.uniforms[:, step : step + 1]
        drawn = torch.searchsorted(cdf, u * cdf[:, -1:], right=True).clamp_(max=probs.shape[-1] - 1)[:, 0]
        return drawn if greedy is None else torch.where(self.sampled, drawn, greedy)

    def _nucleus(self, probs: Any) -> Any:
        """0/1 mask of each row's nucleus: tokens whose sorted predecessors hold less than top_p of the mass."""
        torch = self.torch
        top_p, limited = self.top_p[:, None], self.sampled & self.top_p.isfinite()
        ranked, order = probs.topk(min(_NUCLEUS_GUESS, probs.shape[-1]), dim=-1)
        inside = (ranked.cumsum(-1) - ranked) < top_p
        if not bool((inside[:, -1] & limited).any()):  # every limited row's nucleus ends within the candidates
            keep = torch.zeros_like(probs).scatter_(1, order, inside.to(probs.dtype))
            return torch.where(limited[:, None], keep, 1.0)
        ranked, order = probs.sort(dim=-1, descending=True)
        return torch.empty_like(probs).scatter_(1, order, ((ranked.cumsum(-1) - ranked) < top_p).to(probs.dtype))


def _prefill(model: Any, prompts: Sequence[list[int]], mask: Any, pad_id: int, capacity: int) -> tuple[Any, Any]:
    """Run the prompts in groups of `_PREFILL_ROWS` rows of similar length, each padded only to its own longest, into
    one cache left-padded to the batch's longest prompt and able to hold `capacity` positions: the batch's padding
    costs attention over masked slots while decoding, but no forward passes. Returns the last logits and the cache."""
    import torch
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    if not all(type(layer) is DynamicLayer for layer in DynamicCache(config=model.config).layers):
        return _padded_pass(model, prompts, list(range(len(prompts))), mask, pad_id)  # sliding/recurrent layers
    width, growing = mask.shape[1], _growing_layer_class()
    order = sorted(range(len(prompts)), key=lambda r: len(prompts[r]))
    logits: Any = None
    layers: list[Any] = []
    for start in range(0, len(order), _PREFILL_ROWS):
        rows = order[start : start + _PREFILL_ROWS]
        out, cache = _padded_pass(model, prompts, rows, mask, pad_id)
        if logits is None:
            logits = out.new_empty(len(prompts), out.shape[-1])
            layers = [growing(layer.keys, layer.values, len(prompts), capacity, width) for layer in cache.layers]
        index = torch.tensor(rows, device=mask.device)
        logits[index] = out
        for layer, grown in zip(cache.layers, layers, strict=True):
            grown.k_buf[index, :, width - layer.keys.shape[-2] : width] = layer.keys
            grown.v_buf[index, :, width - layer.values.shape[-2] : width] = layer.values
    kv: Any = DynamicCache(config=model.config)
    kv.layers = layers
    return logits, kv


def _padded_pass(model: Any, prompts: Sequence[list[int]], rows: list[int], mask: Any, pad_id: int) -> tuple[Any, Any]:
    """One forward pass over `rows`, left-padded to their longest prompt; their last logits and a fresh cache."""
    import torch
    from transformers import DynamicCache

    part = max(len(prompts[r]) for r in rows)
    ids = torch.tensor([[pad_id] * (part - len(prompts[r])) + list(prompts[r]) for r in rows], device=mask.device)
    part_mask = mask[rows, mask.shape[1] - part :]
    cache: Any = DynamicCache(config=model.config)
    return _forward(model, ids, part_mask, (part_mask.cumsum(-1) - 1).clamp(min=0), cache), cache


def _forward(model: Any, input_ids: Any, mask: Any, positions: Any, cache: Any) -> Any:
    """Logits of the last position of each row, after feeding `input_ids` at `positions`."""
    attention = mask[:, : cache.get_seq_length() + input_ids.shape[1]]
    out = model(input_ids=input_ids, attention_mask=attention, position_ids=positions, past_key_values=cache, use_cache=True,
                logits_to_keep=1)
    return out.logits[:, -1]


def quantize_int8(model: Any) -> Any:
    """int8 dynamic quantization of every `nn.Linear`: int8 weights, activations quantized at run time (fbgemm
    kernels on x86 CPUs). `torch.ao.quantization` is deprecated in favour of torchao, which is not a dependency here;
    its warnings are silenced."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def _growing_layer_class() -> Any:
    from transformers.cache_utils import DynamicLayer

    class GrowingLayer(DynamicLayer):
        """A transformers `DynamicLayer` whose keys and values grow inside buffers allocated once for the whole
        generation: `DynamicLayer` copies the whole cache with `torch.cat` at every step, which at 600 positions
        made a decode step of the embedded model at batch 64 half again as slow. Attention reads views of the
        filled part."""

        def __init__(self, keys: Any, values: Any, rows: int, capacity: int, length: int) -> None:
            super().__init__()
            self.k_buf = keys.new_empty(rows, keys.shape[1], capacity, keys.shape[-1])
            self.v_buf = values.new_empty(rows, values.shape[1], capacity, values.shape[-1])
            self.k_buf[:, :, :length] = 0  # padding slots are masked, but 0 x garbage could still be NaN
            self.v_buf[:, :, :length] = 0
            self.device, self.length, self.is_initialized = keys.device, length, True
            self._views()

        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
            end = self.length + key_states.shape[-2]
            self.k_buf[:, :, self.length : end] = key_states
            self.v_buf[:, :, self.length : end] = value_states
            self.length = end
            self._views()
            return self.keys, self.values

        def batch_select_indices(self, indices: Any) -> None:
            self.k_buf, self.v_buf = self.k_buf[indices], self.v_buf[indices]
            self._views()

        def _views(self) -> None:
            self.keys, self.values = self.k_buf[:, :, : self.length], self.v_buf[:, :, : self.length]

    return GrowingLayer
