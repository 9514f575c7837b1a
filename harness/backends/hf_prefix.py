"""Choice scoring that computes a shared prompt prefix once: the KV cache of a prefix is reused by every prompt that
starts with it, within a call and across calls on the same backend.

Local judges' prompts share most of their tokens: the judge prompt's fixed part is the same for every item, both
orders of a pair share the instruction, and a suite's reference output (AlpacaEval's baseline answer, a reference
solution) repeats for every checkpoint judged against it. The plain path (`hf.HFBackend._plain_rows`) prefills every
prompt from its first token; here the prompts of one call are sorted by their tokens, and
- the prefix common to all of them (the fixed part) is computed once;
- prompts sharing a longer prefix with a neighbour, or with a prompt seen in an earlier call, form a group whose
  prefix is computed once, starting from the longest prefix already in the store;
- each group's suffixes run in batches of similar length on top of the prefix's cache (the prefix's keys and values
  broadcast over the batch), padded on the left of the suffix, so only each row's last positions reach the LM head.
Prefixes are kept in a least-recently-used store of at most `store_tokens` tokens (bounded memory). The numbers are
those of the plain path up to floating-point rounding (tests/test_hf_prefix.py: 1e-4 in probability on real tiny
checkpoints); a model whose cache is not a plain per-layer key/value cache (sliding windows, recurrent layers) takes
the plain path.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

MIN_SHARED = 32
"""Tokens a group must share beyond the call's common prefix to get a prefix pass of its own."""
STORE_TOKENS = 49152
"""Prefix tokens kept (SmolLM2-135M: 23 KB per token in bfloat16, 46 KB in float32: 1.1 / 2.2 GB when full). Enough
for the default profile's 50 AlpacaEval instructions with their reference outputs and 10 MT-Bench questions to still
be there when the next checkpoint is judged."""
SEEN = 4096
"""Recent prompts remembered (token ids only) to find prefixes that recur across calls."""


@dataclass
class Scored:
    """One forward-pass item: its input ids and how many of its last positions are scored."""

    ids: list[int]
    last: int


class PrefixCache:
    """The prefix store and the scoring loop of one backend (see the module docstring)."""

    def __init__(self, model: Callable[[], Any], pad_id: int, batch_size: int, store_tokens: int = STORE_TOKENS) -> None:
        self._model = model
        self.pad_id = pad_id
        self.batch_size = max(1, batch_size)
        self.store_tokens = store_tokens
        self.store: OrderedDict[tuple[int, ...], list[tuple[Any, Any]]] = OrderedDict()
        self.seen: list[tuple[int, ...]] = []  # sorted
        self.stats = {"prompt_tokens": 0, "computed_tokens": 0}

    def rows(self, items: Sequence[Scored]) -> list[Any]:
        """For each item, the float32 log-softmax at its last `last` positions ([last, vocab])."""
        out: list[Any] = [None] * len(items)
        for prefix, members in self._groups(items):
            kv = self._prefix_kv(prefix)
            members.sort(key=lambda i: len(items[i].ids))
            for start in range(0, len(members), self.batch_size):
                batch = members[start : start + self.batch_size]
                for i, logprobs in zip(batch, self._suffix_pass(kv, len(prefix), [items[i] for i in batch]),
                                       strict=True):
                    out[i] = logprobs
        self._remember(items)
        self.stats["prompt_tokens"] += sum(len(it.ids) for it in items)
        return out

    # ---- grouping ------------------------------------------------------------------------------------------------

    def _groups(self, items: Sequence[Scored]) -> list[tuple[tuple[int, ...], list[int]]]:
        """(prefix, item indices) groups: neighbours in token order that share MIN_SHARED tokens beyond the call's
        common prefix share their longest common prefix; a lone prompt takes a prefix it shares with an earlier call,
        else the common one. Groups with the same prefix are merged, so lone prompts still run batched."""
        usable = [it.ids[: len(it.ids) - it.last] for it in items]  # a scored position must stay in the suffix
        order = sorted(range(len(items)), key=lambda i: usable[i])
        common = _lcp(usable[order[0]], usable[order[-1]]) if order else 0
        runs: list[tuple[tuple[int, ...], list[int]]] = []
        for i in order:
            if runs:
                prefix, members = runs[-1]
                shared = _lcp(prefix, usable[i])
                # join a group only keeping its whole shared prefix (or pairing with a lone prompt)
                if shared >= common + MIN_SHARED and (len(members) == 1 or shared == len(prefix)):
                    runs[-1] = (prefix[:shared], [*members, i])
                    continue
            runs.append((tuple(usable[i]), [i]))
        merged: dict[tuple[int, ...], list[int]] = {}
        for prefix, members in runs:
            key = prefix if len(members) > 1 else self._recurring(usable[members[0]], common)
            merged.setdefault(key, []).extend(members)
        return list(merged.items())

    def _recurring(self, ids: list[int], common: int) -> tuple[int, ...]:
        """A lone prompt's prefix: the longest it shares with a prompt of an earlier call (or a stored prefix) when
        that is MIN_SHARED beyond the common one, else the common prefix."""
        best = common
        key = tuple(ids)
        at = bisect.bisect_left(self.seen, key)
        for j in (at - 1, at):
            if 0 <= j < len(self.seen):
                best = max(best, _lcp(self.seen[j], key))
        stored = max((len(p) for p in self.store if len(p) <= len(key) and key[: len(p)] == p), default=0)
        if best < common + MIN_SHARED:
            best = common
        return key[: max(best, stored)]

    def _remember(self, items: Sequence[Scored]) -> None:
        for it in items:
            key = tuple(it.ids[: len(it.ids) - it.last])
            at = bisect.bisect_left(self.seen, key)
            if at == len(self.seen) or self.seen[at] != key:
                self.seen.insert(at, key)
        while len(self.seen) > SEEN:
            self.seen.pop(0)

    # ---- forward passes ------------------------------------------------------------------------------------------

    def _prefix_kv(self, prefix: tuple[int, ...]) -> list[tuple[Any, Any]]:
        """The prefix's per-layer (keys, values) at batch 1, from the store or computed on top of its longest stored
        prefix; stored."""
        import torch
        from transformers import DynamicCache

        if not prefix:
            return []
        if prefix in self.store:
            self.store.move_to_end(prefix)
            return self.store[prefix]
        base = max((p for p in self.store if len(p) < len(prefix) and prefix[: len(p)] == p), key=len, default=())
        model = self._model()
        cache = _cache_from(model, self.store[base] if base else [], 1)
        rest = torch.tensor([prefix[len(base):]], device=model.device)
        positions = torch.arange(len(base), len(prefix), device=model.device)[None]
        with torch.inference_mode():
            model(input_ids=rest, attention_mask=torch.ones(1, len(prefix), dtype=torch.long, device=model.device),
                  position_ids=positions, past_key_values=cache, use_cache=True, logits_to_keep=1)
        self.stats["computed_tokens"] += len(prefix) - len(base)
        layers: Any = cache.layers
        kv = [(layer.keys, layer.values) for layer in layers] if isinstance(cache, DynamicCache) else []
        self.store[prefix] = kv
        while sum(len(p) for p in self.store) > self.store_tokens and len(self.store) > 1:
            self.store.popitem(last=False)
        return kv

    def _suffix_pass(self, kv: list[tuple[Any, Any]], start: int, batch: list[Scored]) -> list[Any]:
        """The suffixes after a `start`-token prefix, left-padded among themselves, on the prefix's cache."""
        import torch

        model = self._model()
        suffixes = [it.ids[start:] for it in batch]
        width, last = max(len(s) for s in suffixes), max(it.last for it in batch)
        ids = torch.tensor([[self.pad_id] * (width - len(s)) + s for s in suffixes], device=model.device)
        mask = torch.tensor([[1] * start + [0] * (width - len(s)) + [1] * len(s) for s in suffixes], device=model.device)
        positions = torch.tensor([[0] * (width - len(s)) + list(range(start, start + len(s))) for s in suffixes],
                                 device=model.device)
        cache = _cache_from(model, kv, len(batch))
        with torch.inference_mode():
            logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache,
                           use_cache=True, logits_to_keep=last).logits
        self.stats["computed_tokens"] += sum(len(s) for s in suffixes)
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        return [logprobs[row, last - it.last :] for row, it in enumerate(batch)]


def supports_prefix_reuse(model: Any) -> bool:
    """Whether the model's cache is a plain per-layer key/value cache that can be copied and broadcast."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    return all(type(layer) is DynamicLayer for layer in DynamicCache(config=model.config).layers)


def _cache_from(model: Any, kv: list[tuple[Any, Any]], rows: int) -> Any:
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    for index, (keys, values) in enumerate(kv):
        cache.update(keys.expand(rows, -1, -1, -1), values.expand(rows, -1, -1, -1), index)
    return cache


def _lcp(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i
