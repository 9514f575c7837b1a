"""The hf backend's decode-step attention (harness.backends.hf_attention: a key/value-head group's query heads as
the rows of one query, no `repeat_kv` copy) computes transformers' own `sdpa` attention: on real tiny grouped-query
checkpoints (4 query heads over 2 key/value heads) the next-token log-probabilities after a prompt and after each
greedy step agree to 1e-5 in float32, and greedy generation gives the same tokens."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, DynamicCache

from harness.backends import hf_attention
from harness.backends.base import SamplingParams
from harness.backends.hf_decode import decode
from harness.models import tiny_model


@pytest.fixture(scope="module", params=[0, 1], ids=["tiny-seed0", "tiny-seed1"])
def tiny(request, tmp_path_factory) -> Path:
    return tiny_model(tmp_path_factory.mktemp(f"tiny{request.param}") / "model", seed=request.param)


def _load(path: Path) -> object:
    return AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32, attn_implementation="sdpa").eval()


def _stepwise_logprobs(model, ids, mask, steps: int) -> list[torch.Tensor]:
    """Log-probabilities of the next token after the (left-padded) prompt and after each of `steps` greedy tokens,
    one position at a time through the cache."""
    cache, out = DynamicCache(config=model.config), []
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.inference_mode():
        logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache).logits[:, -1]
        for _ in range(steps):
            out.append(logits.float().log_softmax(-1))
            token = logits.argmax(-1, keepdim=True)
            mask = torch.cat([mask, torch.ones_like(token)], dim=1)
            positions = positions[:, -1:] + 1
            logits = model(input_ids=token, attention_mask=mask, position_ids=positions,
                           past_key_values=cache).logits[:, -1]
    return out


def test_grouped_decode_matches_sdpa(tiny, monkeypatch):
    plain, grouped = _load(tiny), hf_attention.use_grouped_decode(_load(tiny))
    assert plain.config.num_key_value_heads < plain.config.num_attention_heads  # grouped-query attention
    assert grouped.config._attn_implementation == hf_attention.NAME
    calls: list[int] = []
    original = hf_attention.grouped_decode_attention

    def counting(module, query, *args, **kwargs):
        calls.append(query.shape[2])
        return original(module, query, *args, **kwargs)

    monkeypatch.setattr(hf_attention, "grouped_decode_attention", counting)
    from transformers import AttentionInterface

    AttentionInterface.register(hf_attention.NAME, counting)
    try:
        ids = torch.tensor([[0, 0, 0, 5, 17, 42, 9], [11, 3, 8, 19, 23, 7, 30]])  # row 0 left-padded
        mask = torch.tensor([[0, 0, 0, 1, 1, 1, 1], [1] * 7])
        want, got = _stepwise_logprobs(plain, ids, mask, 6), _stepwise_logprobs(grouped, ids, mask, 6)
    finally:
        AttentionInterface.register(hf_attention.NAME, original)
    assert 1 in calls and any(n > 1 for n in calls)  # decode steps took the grouped path, the prompt pass sdpa's
    for w, g in zip(want, got, strict=True):
        assert torch.allclose(w, g, atol=1e-5), (w - g).abs().max()


def test_decode_uses_it_and_gives_sdpa_greedy_tokens(tiny):
    prompts = [[5, 17, 42, 9, 3], [11, 3, 8, 19, 23, 7, 30, 2, 4], [6]]
    params = [SamplingParams(temperature=0.0, max_new_tokens=12)] * 3
    reference = _load(tiny)
    with torch.inference_mode():  # transformers' own greedy generation with sdpa, one prompt at a time (no padding)
        want = [reference.generate(torch.tensor([p]), attention_mask=torch.ones(1, len(p), dtype=torch.long),
                                   max_new_tokens=12, min_new_tokens=12, do_sample=False,
                                   pad_token_id=0)[0, len(p):].tolist() for p in prompts]
    model = _load(tiny)
    got = decode(model, prompts, params, eos_ids=[], pad_id=0, detokenize=lambda ids: "")
    assert model.config._attn_implementation == hf_attention.NAME  # decode switched it on CPU
    assert [d.ids for d in got] == want
