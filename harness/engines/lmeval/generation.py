"""lm-eval's HFLM with its greedy generation and its log-likelihoods run by sppo-bench's hf backend.

`HFLM.generate_until` generates through `transformers.generate` in lm-eval's own batches; the hf backend
(harness.backends.hf) batches by length and decodes with its own loop, several times faster on a CPU (README,
`nox -s perf`). Only the generation call changes: the prompts are lm-eval's (few-shot, chat template), and lm-eval's
own helpers normalize the generation kwargs, add the EOS stop sequence and post-process the text, so the answers equal
HFLM's (tests/test_lmeval_generation.py). Sampled generations (do_sample) and prompts longer than the context allows
stay with HFLM itself.

Log-likelihood requests (multiple-choice tasks: BBH, GPQA, MMLU-Pro, MuSR) are the same inputs HFLM builds
(`(context + continuation)[-(max_length + 1):][:-1]`, the continuation's positions scored), computed by the hf
backend's prefix-reuse scoring (harness.backends.hf_prefix): a document's options share their whole few-shot context,
which HFLM runs once per option, and only the continuation positions reach the LM head, where HFLM takes the
full-vocabulary log-softmax of every position. The log-probabilities and greedy flags equal HFLM's (float32, 1e-4:
tests/test_lmeval_generation.py); the log-softmax is float32 (HFLM's is in the model's dtype unless
`softmax_dtype` is set).
"""

from __future__ import annotations

from typing import Any

from lm_eval.models.huggingface import HFLM
from lm_eval.models.utils import handle_stop_sequences, normalize_gen_kwargs, postprocess_generated_text

from harness.backends.base import SamplingParams


class BatchedGenerationHFLM(HFLM):  # type: ignore[misc]
    def __init__(self, *args: Any, generation_batch_size: int = 32, chat_template: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if chat_template:
            self.tokenizer.chat_template = chat_template
        self._generation_batch_size = generation_batch_size
        self._generator: Any = None

    @property
    def generator(self) -> Any:
        """The hf backend on this model's own weights (loaded once, shared) and a copy of its tokenizer."""
        if self._generator is None:
            import copy

            from harness.backends.hf import HFBackend

            tokenizer = copy.deepcopy(self.tokenizer)
            tokenizer.padding_side = "left"
            if tokenizer.pad_token_id is None:
                tokenizer.pad_token = tokenizer.eos_token
            self._generator = HFBackend(tokenizer, lambda: self.model, batch_size=self._generation_batch_size,
                                        fingerprint="lm-eval hflm (not cached here)")
        return self._generator

    def _loglikelihood_tokens(self, requests: list[Any], disable_tqdm: bool = False,
                              override_bs: int | None = None) -> list[tuple[float, bool]]:
        if self.backend != "causal":
            return list(super()._loglikelihood_tokens(requests, disable_tqdm, override_bs))
        import torch

        from harness.backends.hf_prefix import Scored

        items = [Scored((context + continuation)[-(self.max_length + 1):][:-1], len(continuation))
                 for _, context, continuation in requests]
        rows = self.generator.scored_rows(items)
        out: list[tuple[float, bool]] = []
        for (request, _, continuation), logprobs in zip(requests, rows, strict=True):
            ids = torch.tensor(continuation, device=logprobs.device)
            answer = (float(logprobs.gather(1, ids[:, None]).sum()), bool((logprobs.argmax(-1) == ids).all()))
            out.append(answer)
            if request is not None:
                self.cache_hook.add_partial("loglikelihood", request, answer)
        return out

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        eos = self.tok_decode(self.eot_token_id, skip_special_tokens=False)
        ours: list[tuple[int, str, list[str], SamplingParams]] = []
        theirs: list[int] = []
        for i, request in enumerate(requests):
            context, gen_kwargs = request.args
            kwargs = normalize_gen_kwargs(gen_kwargs, self.max_gen_toks)
            until = handle_stop_sequences(kwargs.pop("until", None), eos=eos)
            max_gen = int(kwargs.pop("max_gen_toks"))
            fits = len(self.tok_encode(context)) <= self.max_length - max_gen
            if kwargs.get("do_sample") or not fits or self.backend != "causal" or self.think_end_token is not None:
                theirs.append(i)
                continue
            ours.append((i, context, until, SamplingParams(temperature=0.0, max_new_tokens=max_gen, stop=tuple(until))))
        out: list[str | None] = [None] * len(requests)
        if ours:
            done = self.generator.generate_text([c for _, c, _, _ in ours], [p for _, _, _, p in ours])
            for (i, _, until, _), completion in zip(ours, done, strict=True):
                text = postprocess_generated_text(generation=completion.text, stop=until, think_end_token=None)
                out[i] = text
                self.cache_hook.add_partial("generate_until", requests[i].args, text)
        if theirs:
            for i, text in zip(theirs, super().generate_until([requests[i] for i in theirs], disable_tqdm),
                               strict=True):
                out[i] = text
        return [t if t is not None else "" for t in out]
