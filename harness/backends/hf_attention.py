"""Decode-step attention for the hf backend: one query position attends per key/value-head group, with no copy of
the cache.

transformers' `sdpa` attention expands a grouped-query model's keys and values to one copy per query head
(`repeat_kv`) and calls `scaled_dot_product_attention` with a query of length 1. On CPU that step dominates decoding
once prompts are long: measured on this project's 2-core machine for the embedded SmolLM2 shapes (batch 14, 9 query
heads over 3 KV heads, 1500 cached positions, per layer), bfloat16 15.8 ms (18.8 ms with the `repeat_kv` copy)
against 3.6 ms when the group's query heads are passed as the rows of one query over the group's own keys and
values; float32 5.5 ms (42.6 ms with the copy) against 3.4 ms. Same kernel, same arithmetic: outputs differ from
the expanded call by rounding only (max 2e-3 in bfloat16, 1.4e-6 in float32, where bfloat16 itself is 1.7e-2 from
float32). Passes of more than one position (prefill, prefix-reuse suffixes, training) keep `sdpa`. Registered
under its own name, with `sdpa`'s mask functions, through transformers' `AttentionInterface`. Imported by `hf_decode.decode` when it runs (torch and transformers are loaded by then), so the
imports below cost the CLI's start-up nothing and the per-layer call no import lookups.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.integrations.sdpa_attention import sdpa_attention_forward

NAME = "sppo_grouped_decode"


def grouped_decode_attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, dropout: float = 0.0,
                             scaling: float | None = None, is_causal: bool | None = None, **kwargs: Any) -> Any:
    rows, heads, length, dim = query.shape
    groups = key.shape[1]
    special = any(kwargs.get(k) is not None for k in ("s_aux", "softcap", "sinks"))  # terms sdpa's path adds
    if length != 1 or module.training or special or heads % groups or key.shape[-1] != value.shape[-1]:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    # query head h reads key/value head h // (heads // groups), as repeat_kv lays the copies out: with one position,
    # a group's query heads are rows of one query over their shared keys and values
    grouped = query.reshape(rows, groups, heads // groups, dim)
    mask = None if attention_mask is None else attention_mask[..., : key.shape[-2]]
    out = torch.nn.functional.scaled_dot_product_attention(grouped, key, value, attn_mask=mask, scale=scaling)
    return out.reshape(rows, 1, heads, dim), None


def use_grouped_decode(model: Any) -> Any:
    """Switch a loaded transformers model to this attention where it runs `sdpa` (others keep theirs)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    if getattr(model.config, "_attn_implementation", None) != "sdpa":
        return model
    AttentionInterface.register(NAME, grouped_decode_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, sdpa_mask)
    model.set_attn_implementation(NAME)
    return model
