"""The model side of an lm-eval suite: lm-eval's own model class on the unit's checkpoint, wrapped in a request cache
whose values are JSON (lm-eval's own cache stores pickles, and a run directory must never hold code that a resume
would execute), and the generation limits fitted to the model's context."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lm_eval.api.model import LM

from harness.engines.context import ModelRef, RunContext
from harness.errors import UserError

log = logging.getLogger(__name__)

LOGLIKELIHOOD_BATCH_MAX = 8


def load_lm(model: ModelRef, ctx: RunContext) -> Any:
    """lm-eval's own model class for the backend: HFLM for `hf` (its greedy generation run by sppo-bench's hf backend,
    harness.engines.lmeval.generation), lm-eval's vLLM wrapper for `vllm`."""
    from harness.models import resolve_model

    opts = ctx.backend
    checkpoint = resolve_model(ctx.settings, model.checkpoint)  # validates a local folder, or passes a hub id
    device = opts.device
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    if opts.backend == "hf":
        from harness.engines.lmeval.generation import BatchedGenerationHFLM

        # log-likelihood batches hold full-vocabulary log-softmaxes of every position (49k x ~1000 tokens x 4 bytes for
        # one BBH 3-shot row): 32 rows peaked at 8.4 GB RSS, so they stay at 8 whatever the generation batch is
        lm: Any = BatchedGenerationHFLM(pretrained=checkpoint, device=device, dtype=run_dtype(model, ctx),
                                        batch_size=min(opts.batch_size, LOGLIKELIHOOD_BATCH_MAX),
                                        generation_batch_size=opts.batch_size)
    elif opts.backend == "vllm":
        try:
            import vllm  # noqa: F401
        except ImportError:
            raise UserError("backend vllm: vLLM is not installed; on a CUDA machine `pip install 'sppo-bench[vllm]'`, "
                            "or use --backend hf") from None
        from lm_eval.models.vllm_causallms import VLLM

        lm = VLLM(pretrained=checkpoint, dtype=opts.dtype, batch_size="auto")
    else:
        raise UserError(f"backend {opts.backend!r} cannot run lm-eval suites (they need token log-likelihoods); "
                        "use --backend hf or --backend vllm")
    if opts.chat_template:
        lm.tokenizer.chat_template = Path(opts.chat_template).read_text(encoding="utf-8")
    return lm


def run_dtype(model: ModelRef, ctx: RunContext) -> str:
    """The dtype the backend runs `model` in (`--dtype auto`: the checkpoint's own where this machine computes in it,
    harness.backends.precision); what the record and the request cache name."""
    from harness.backends.precision import options_dtype
    from harness.models import resolve_model

    opts = ctx.backend
    return options_dtype(opts.backend, opts.dtype, opts.device, resolve_model(ctx.settings, model.checkpoint))


def apply_user_cap(gen_kwargs: dict[str, Any] | None, notes: list[str], max_gen_toks: int | None,
                   cap: int | None) -> tuple[dict[str, Any] | None, list[str]]:
    """`--max-new-tokens` (smoke runs): lower a generative task's limit, and say so on the record."""
    current = int((gen_kwargs or {}).get("max_gen_toks", max_gen_toks or 0))
    if not cap or max_gen_toks is None or cap >= current:
        return gen_kwargs, notes
    return {**(gen_kwargs or {}), "max_gen_toks": int(cap)}, [
        *notes, f"generation capped at {cap} tokens by --max-new-tokens (the task allows {max_gen_toks}): "
                f"not comparable with leaderboard numbers"]


def fit_generation_to_context(lm: Any, max_gen_toks: int | None) -> tuple[dict[str, Any] | None, list[str]]:
    """lm-eval asserts when a task's generation limit is not below the model's context; cap it instead and say so."""
    if max_gen_toks is None:
        return None, []
    context = int(lm.max_length)
    if max_gen_toks < context:
        return None, []
    capped = max(1, context // 2)
    return {"max_gen_toks": capped}, [f"the model's context ({context} tokens) is not longer than the task's "
                                      f"generation limit ({max_gen_toks}); generation capped at {capped} tokens"]


def truncation_notes(lm: Any, results: Mapping[str, Any], gen_kwargs: Mapping[str, Any],
                     max_gen_toks: int | None) -> list[str]:
    """How many items lm-eval left-truncated because the prompt (with its few shots) exceeds the model's context.

    Counted from the logged requests, so a rerun served by the request cache reports the same counts."""
    context = int(lm.max_length)
    gen_room = context - int(gen_kwargs.get("max_gen_toks", max_gen_toks or 0))
    lengths: dict[str, int] = {}  # the choices of one item share its context: tokenize each text once

    def n_tokens(text: str) -> int:
        if text not in lengths:
            lengths[text] = len(lm.tok_encode(text))
        return lengths[text]

    def too_long(args: Any) -> bool:
        if not isinstance(args, list | tuple) or not args or not isinstance(args[0], str):
            return False
        if len(args) > 1 and isinstance(args[1], str):  # log-likelihood request: (context, continuation)
            return n_tokens(args[0]) + n_tokens(args[1]) > context + 1
        return n_tokens(args[0]) > gen_room  # generation request: (context, generation kwargs)

    samples = [s for rows in (results.get("samples") or {}).values() for s in rows]
    truncated = sum(1 for s in samples if any(too_long(a) for a in s.get("arguments", [])))
    if not truncated:
        return []
    return [f"{truncated} of {len(samples)} items had prompts longer than the model's context ({context} tokens); "
            "lm-eval kept their last tokens (left truncation)"]


def cached_lm(lm: Any, model: ModelRef, ctx: RunContext) -> Any:
    """`lm` behind the JSON request cache (or as it is with --no-cache). The namespace is the checkpoint's content
    fingerprint plus what changes an answer on the lm-eval side (backend, dtype, the chat template in use)."""
    if not ctx.backend.use_cache:
        return lm
    from harness.backends.cache import GenerationCache
    from harness.engines.context import identified

    model = identified(model, ctx)
    template = getattr(getattr(lm, "tokenizer", None), "chat_template", None)
    parts = {"checkpoint": model.fingerprint or model.checkpoint, "backend": ctx.backend.backend,
             "dtype": run_dtype(model, ctx), "chat_template": template, "lm_eval": _lm_eval_version()}
    namespace = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()
    return json_cached(lm, GenerationCache(ctx.settings.cache_db), namespace)


def json_cached(lm: Any, cache: Any, namespace: str) -> Any:
    """`lm` answering from `cache` (a harness.backends.cache.GenerationCache) first (see `JsonCachedLM`)."""
    return JsonCachedLM(lm, cache, namespace)


class JsonCachedLM(LM):  # type: ignore[misc]
    """An `lm_eval.api.model.LM` that answers from a JSON-valued cache first.

    lm-eval's own `use_cache` keeps pickled values in SqliteDict: opening such a file from a run directory executes
    whatever was planted in it. This cache stores JSON (floats, booleans, strings) in the shared content cache, keyed
    by the model namespace and lm-eval's request arguments, so a killed run resumes without anything executable.
    Sampled generations (do_sample) are never cached, as lm-eval does."""

    def __init__(self, lm: Any, cache: Any, namespace: str) -> None:
        super().__init__()
        self.lm, self.cache, self.namespace = lm, cache, namespace
        self.pending: list[tuple[str, Any]] = []
        lm.set_cache_hook(_PartialHook(self, namespace))

    def __getattr__(self, attr: str) -> Any:  # tokenizer, max_length, tok_encode, batch_sizes, ...
        if attr in ("lm", "cache", "namespace", "pending"):
            raise AttributeError(attr)
        return getattr(self.lm, attr)

    rank = property(lambda self: self.lm.rank)
    world_size = property(lambda self: self.lm.world_size)
    tokenizer_name = property(lambda self: self.lm.tokenizer_name)
    device = property(lambda self: getattr(self.lm, "device", None))

    def apply_chat_template(self, *args: Any, **kwargs: Any) -> Any:
        return self.lm.apply_chat_template(*args, **kwargs)

    def chat_template(self, *args: Any, **kwargs: Any) -> Any:
        return self.lm.chat_template(*args, **kwargs)

    def loglikelihood(self, requests: list[Any], *args: Any) -> list[Any]:
        return [tuple(r) for r in self._answer("loglikelihood", requests, *args)]

    def loglikelihood_rolling(self, requests: list[Any], *args: Any) -> list[Any]:
        return self._answer("loglikelihood_rolling", requests, *args)

    def generate_until(self, requests: list[Any], *args: Any) -> list[Any]:
        return self._answer("generate_until", requests, *args)

    def _answer(self, attr: str, requests: list[Any], *args: Any) -> list[Any]:
        keys = [None if _sampled(attr, r) else _request_key(self.namespace, attr, r.args) for r in requests]
        found = self.cache.get_many([k for k in keys if k])
        todo = [r for r, k in zip(requests, keys, strict=True) if k is None or k not in found]
        log.info("lm-eval request cache, %s: %d requests, %d from the cache, %d computed", attr, len(requests),
                 len(requests) - len(todo), len(todo))
        fresh = iter(getattr(self.lm, attr)(todo, *args) if todo else [])
        out = []
        for k in keys:
            value = found[k] if k is not None and k in found else next(fresh)
            if k is not None and k not in found:
                self.pending.append((k, _jsonable(value)))
            out.append(value)
        self.flush()
        return out

    def flush(self) -> None:
        if self.pending:
            self.cache.put_many("lm-eval", self.namespace, self.pending)
            self.pending = []


class _PartialHook:
    """lm-eval models report each answer as it is computed (`cache_hook.add_partial`); keep them, so a run killed in
    the middle of a long request list resumes from the last stored batch."""

    EVERY = 64

    def __init__(self, owner: Any, namespace: str) -> None:
        self.owner = owner
        self.namespace = namespace

    def add_partial(self, attr: str, args: Any, result: Any) -> None:
        if attr == "generate_until" and isinstance(args, list | tuple) and len(args) > 1 and \
                isinstance(args[1], dict) and args[1].get("do_sample"):
            return
        self.owner.pending.append((_request_key(self.namespace, attr, args), _jsonable(result)))
        if len(self.owner.pending) >= self.EVERY:
            self.owner.flush()


def _request_key(namespace: str, attr: str, args: Any) -> str:
    text = json.dumps([namespace, attr, list(args)], sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _sampled(attr: str, request: Any) -> bool:
    args = request.args
    return attr == "generate_until" and len(args) > 1 and isinstance(args[1], dict) and bool(args[1].get("do_sample"))


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    return value


def _lm_eval_version() -> str:
    from importlib.metadata import version

    return version("lm_eval")
