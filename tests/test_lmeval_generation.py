"""lm-eval's generation through sppo-bench's hf backend gives lm-eval's own answers: the same requests answered by
lm-eval's HFLM (transformers.generate) and by BatchedGenerationHFLM are equal, stop sequences and EOS included."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "lmeval"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    from harness.models import tiny_model

    return tiny_model(tmp_path_factory.mktemp("models") / "tiny")


def _requests(contexts: list[str], gen_kwargs: dict) -> list:
    from lm_eval.api.instance import Instance

    return [Instance("generate_until", {}, (c, dict(gen_kwargs)), i) for i, c in enumerate(contexts)]


def test_answers_equal_hflm_on_chat_and_plain_prompts(tiny):
    import torch
    from lm_eval.models.huggingface import HFLM

    from harness.engines.lmeval.generation import BatchedGenerationHFLM

    torch.set_num_threads(1)
    theirs_lm = HFLM(pretrained=str(tiny), device="cpu", dtype="float32", batch_size=3)
    ours_lm = BatchedGenerationHFLM(pretrained=str(tiny), device="cpu", dtype="float32", batch_size=3,
                                    generation_batch_size=4)
    chat = [theirs_lm.tokenizer.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True,
                                                    tokenize=False)
            for q in ("Write a poem about the sea.", "What is 2 + 2?", "Name a colour.", "Say hello in French.")]
    plain = ["Question: What is 3 + 4?\nAnswer:", "The quick brown fox", "Once upon a time"]
    for contexts, kwargs in ((chat, {"until": [], "max_gen_toks": 16, "do_sample": False}),
                             (plain, {"until": ["Question:", "\n\n"], "max_gen_toks": 24, "do_sample": False}),
                             (chat + plain, {"until": ["."], "max_gen_toks": 8, "temperature": 0.0})):
        theirs = theirs_lm.generate_until(_requests(contexts, kwargs))
        ours = ours_lm.generate_until(_requests(contexts, kwargs))
        assert ours == theirs


def test_sampled_and_too_long_requests_stay_with_hflm(tiny, monkeypatch):
    from lm_eval.models.huggingface import HFLM

    from harness.engines.lmeval.generation import BatchedGenerationHFLM

    lm = BatchedGenerationHFLM(pretrained=str(tiny), device="cpu", dtype="float32", batch_size=2)
    handed_over = []
    monkeypatch.setattr(HFLM, "generate_until", lambda self, reqs, disable_tqdm=False: handed_over.extend(reqs) or
                        ["x"] * len(reqs))
    long_context = "word " * 2000
    out = lm.generate_until(_requests(["short", long_context], {"until": [], "max_gen_toks": 4, "do_sample": False})
                            + _requests(["sampled"], {"until": [], "max_gen_toks": 4, "do_sample": True,
                                                      "temperature": 0.7}))
    assert [r.args[0] for r in handed_over] == [long_context, "sampled"] and out[1:] == ["x", "x"] and out[0] != "x"


def test_loglikelihoods_equal_hflm(tiny):
    """Multiple-choice requests (options sharing a few-shot context, multi-token continuations, a context longer
    than the window, which both truncate from the left) scored through the hf backend's prefix reuse: HFLM's own
    log-probabilities (float32, 1e-4) and greedy flags."""
    import torch
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    from harness.engines.lmeval.generation import BatchedGenerationHFLM

    torch.set_num_threads(1)
    theirs_lm = HFLM(pretrained=str(tiny), device="cpu", dtype="float32", batch_size=3, softmax_dtype="float32")
    ours_lm = BatchedGenerationHFLM(pretrained=str(tiny), device="cpu", dtype="float32", batch_size=3)
    shots = "".join(f"Q: Is {a} more than {b}?\nA: {'Yes' if a > b else 'No'}\n\n" for a, b in ((3, 2), (1, 5), (9, 4)))
    requests = []
    for question in ("Is 7 more than 8?", "Is 10 more than 1?", "Which is bigger, a cat or a mouse?"):
        for option in (" Yes", " No", " It depends on the animal", " (A)"):
            requests.append((shots + f"Q: {question}\nA:", option))
    requests += [("word " * 1500, " end"), ("The quick brown fox", " jumps over the lazy dog")]
    instances = [Instance("loglikelihood", {}, r, i) for i, r in enumerate(requests)]
    theirs, ours = theirs_lm.loglikelihood(instances), ours_lm.loglikelihood(instances)
    assert len(ours) == len(theirs) == len(requests)
    for (want, want_greedy), (got, got_greedy) in zip(theirs, ours, strict=True):
        assert abs(want - got) < 1e-4, (want, got)
        assert want_greedy == got_greedy
    assert ours_lm.generator._prefix is not None  # the prefix-reuse path scored them
    stats = ours_lm.generator._prefix.stats
    # 12 option prompts of ~98 tokens share 3 contexts, run once each: ~800 of the 2201 tokens are not computed
    assert stats["computed_tokens"] < stats["prompt_tokens"] - 600, stats
