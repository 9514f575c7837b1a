"""Offline `vllm.LLM` for GPU machines (optional extra: `pip install 'sppo-bench[vllm]'`; vllm is imported lazily).

vLLM batches everything it is given (continuous batching), applies the tokenizer's chat template in `LLM.chat`, and
seeds each request from `SamplingParams.seed`, so per-request reproducibility comes from vLLM itself.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.backends.base import BackendOptions, ChatRequest, Completion
from harness.errors import UserError
from harness.identity import fingerprint
from harness.io import read_text
from harness.models import validate_checkpoint


def build(options: BackendOptions, fingerprint_db: Path | None = None) -> VLLMBackend:
    if not options.model:
        raise UserError("the vllm backend needs a model: pass --model PATH_OR_HUB_ID")
    validate_checkpoint(options.model)
    try:
        import vllm
    except ImportError:
        raise UserError("the vllm backend needs vLLM on a CUDA machine: pip install 'sppo-bench[vllm]', "
                        "or use --backend hf") from None
    dtype = "auto" if options.dtype == "auto" else options.dtype
    kwargs: dict[str, Any] = {"model": options.model, "dtype": dtype, "seed": 0}
    for key, cast in (("tensor_parallel_size", int), ("gpu_memory_utilization", float), ("max_model_len", int)):
        if key in options.extra:
            kwargs[key] = cast(options.extra[key])
    try:
        llm = vllm.LLM(**kwargs)
    except Exception as exc:  # engine start failures (no GPU, OOM, bad checkpoint) are the user's to fix
        raise UserError(f"vLLM could not load {options.model} ({exc.__class__.__name__}: "
                        f"{' '.join(str(exc).split())[:300]}); check the GPU and the checkpoint") from None
    template = read_text(Path(options.chat_template), "chat template file") if options.chat_template else None
    return VLLMBackend(llm, options.model, dtype, template, fingerprint_db)


class VLLMBackend:
    name = "vllm"

    def __init__(self, llm: Any, model: str, dtype: str, chat_template: str | None = None,
                 fingerprint_db: Path | None = None) -> None:
        self.llm = llm
        self.model = model
        self.chat_template = chat_template
        # identity by content (weights, tokenizer, template), never by path: a retrained checkpoint at the same path
        # must not be served the old one's cached completions
        ident = json.dumps({"checkpoint": fingerprint(model, chat_template, fingerprint_db), "dtype": dtype},
                           sort_keys=True)
        self._fingerprint = f"vllm:{Path(model).name or model}:{hashlib.sha256(ident.encode()).hexdigest()[:16]}"

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    def generate(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        from vllm import SamplingParams

        params = [SamplingParams(temperature=r.params.temperature, top_p=r.params.top_p,
                                 max_tokens=r.params.max_new_tokens, stop=list(r.params.stop) or None,
                                 seed=r.params.seed, logprobs=r.params.top_logprobs) for r in requests]
        outputs = self.llm.chat([list(r.messages) for r in requests], params, use_tqdm=False,
                                chat_template=self.chat_template)
        return [_completion(out, r) for out, r in zip(outputs, requests, strict=True)]


def _completion(out: Any, request: ChatRequest) -> Completion:
    gen = out.outputs[0]
    top = None
    if request.params.top_logprobs and gen.logprobs:
        top = [{lp.decoded_token: lp.logprob for lp in step.values()} for step in gen.logprobs]
    finish = "length" if gen.finish_reason == "length" else "stop"
    return Completion(text=gen.text, prompt_tokens=len(out.prompt_token_ids or []),
                      completion_tokens=len(gen.token_ids), finish_reason=finish, top_logprobs=top)
