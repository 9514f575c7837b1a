"""transformers backend: batched, left-padded chat generation and choice scoring on CPU or GPU.

Generation runs hf_decode's loop (one forward pass per step over the batch, finished rows dropped): per-request
sampling inside one batch, each sampled row drawing from its own random stream seeded with the request's
`SamplingParams.seed`, so a request's draws do not depend on which other requests share its batch, on their order or
on the device; only floating-point rounding of the logits can differ between batch shapes, which moves a draw only
when it lands within rounding error of a token boundary. Each row stops at its own `max_new_tokens` or stop string, so
requests with different parameters batch together. (transformers' own sampling draws from one global stream for the
whole batch, so it cannot give this.) `generate_text` takes already-templated prompt strings (lm-eval's generation
tasks) through the same loop.

Requests are sorted by (max_new_tokens, prompt length) before batching, so a batch pads little and stops together.
`--backend-opt quantize=int8` (CPU) swaps every linear layer for a dynamically quantized int8 one: several times
faster, but it changes the model's outputs (see tests/perf/bench_generation.py), so it is part of the fingerprint.
`--backend-opt threads=N` sets torch's CPU threads; by default they are capped at the CPUs this process may use.
torch and transformers are imported inside functions: `import harness` stays light.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from harness.backends.base import BackendOptions, ChatRequest, ChoiceRequest, Completion, Message, SamplingParams
from harness.backends.hf_decode import decode, quantize_int8
from harness.backends.hf_prefix import PrefixCache, Scored, supports_prefix_reuse
from harness.backends.precision import Precision, resolve_precision
from harness.backends.threads import limit_torch_threads
from harness.errors import UserError
from harness.identity import fingerprint
from harness.io import read_text
from harness.models import validate_checkpoint

FINGERPRINT_VERSION = 2
_WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin", "model*.bin")


def build(options: BackendOptions, fingerprint_db: Path | None = None) -> HFBackend:
    return HFBackend.load(options, fingerprint_db)


class HFBackend:
    """A causal LM + its tokenizer. Implements ChatBackend and ChoiceScorer.

    The weights load on first use: the tokenizer, chat template and fingerprint are all a cached run needs, so a rerun
    answered from the generation cache never pays for loading the model.
    """

    name = "hf"

    def __init__(self, tokenizer: Any, load_model: Callable[[], Any], *, batch_size: int = 8, fingerprint: str,
                 precision: Precision | None = None, prefix_reuse: bool = True) -> None:
        self.tokenizer = tokenizer
        self.prefix_reuse = prefix_reuse
        """Reuse the KV cache of shared prompt prefixes in choice_logprobs (hf_prefix.py)."""
        self._prefix: PrefixCache | None = None
        self.precision = precision or Precision("float32", None, "given")
        """The dtype the model runs in and why (harness.backends.precision); part of the fingerprint."""
        self.batch_size = max(1, batch_size)
        self._fingerprint = fingerprint
        self._load_model = load_model
        self._model: Any = None
        self._eos_ids: list[int] = []

    @classmethod
    def load(cls, options: BackendOptions, fingerprint_db: Path | None = None) -> HFBackend:
        if not options.model:
            raise UserError("the hf backend needs a model: pass --model PATH_OR_HUB_ID")
        source = validate_checkpoint(options.model)
        import torch
        import transformers

        device = pick_device(options.device)
        precision = resolve_precision(options.dtype, source, torch.device(device).type)
        if options.extra.get("quantize") and options.dtype == "auto":
            precision = Precision("float32", precision.declared, "quantize=int8 quantizes float32 weights")
        dtype = getattr(torch, precision.dtype)
        quantize, threads, prefix_reuse = _parse_extra(options.extra, device, str(dtype))
        template = read_text(Path(options.chat_template), "chat template file") if options.chat_template else None
        transformers.logging.set_verbosity_error()
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(source)
        except Exception as exc:  # any loader failure is a bad checkpoint from the user's point of view
            raise UserError(f"{source}: cannot load its tokenizer ({_one_line(exc)}); check the checkpoint folder") from None
        if template is not None:
            tokenizer.chat_template = template
        if not getattr(tokenizer, "chat_template", None):
            raise UserError(f"{source} has no chat template; pass --chat-template FILE with a Jinja chat template "
                            "(e.g. the one from the base model's tokenizer_config.json)")
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token

        def load_model() -> Any:
            try:
                model: Any = transformers.AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
            except Exception as exc:
                raise UserError(f"{source}: cannot load the model ({_one_line(exc)}); check the checkpoint's "
                                "weights") from None
            if torch.device(device).type == "cpu":
                limit_torch_threads(threads=threads)
            model = model.to(device).eval()
            return quantize_int8(model) if quantize == "int8" else model

        fp = backend_fingerprint(source, template, str(dtype), torch.device(device).type, quantize, fingerprint_db)
        return cls(tokenizer, load_model, batch_size=options.batch_size, fingerprint=fp, precision=precision,
                   prefix_reuse=prefix_reuse)

    @property
    def model(self) -> Any:
        if self._model is None:
            self._model = self._load_model()
            self._eos_ids = _eos_ids(self._model, self.tokenizer)
        return self._model

    @property
    def eos_ids(self) -> list[int]:
        _ = self.model  # loads the model (and its generation config) on first use
        return self._eos_ids

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    def generate(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        return self._generate([self.encode_chat(r.messages) for r in requests], [r.params for r in requests])

    def generate_text(self, prompts: Sequence[str], params: Sequence[SamplingParams]) -> list[Completion]:
        """Complete already-templated prompt strings (no chat template applied), for lm-eval's generation tasks.

        Tokenized as lm-eval's `HFLM.tok_batch_encode` does for a causal LM: without special tokens when the prompt
        already starts with the BOS token (a chat-templated prompt), else with the tokenizer's defaults."""
        if len(prompts) != len(params) or not all(prompts):
            raise ValueError("generate_text needs one SamplingParams per prompt and non-empty prompts")
        bos = self.tokenizer.bos_token
        encoded = [self.tokenizer(p, **({"add_special_tokens": False} if bos and p.startswith(bos) else {}))
                   for p in prompts]
        return self._generate([e["input_ids"] for e in encoded], list(params))

    def choice_logprobs(self, requests: Sequence[ChoiceRequest]) -> list[dict[str, float]]:
        """See ChoiceScorer: one forward pass per request when the choices' first tokens differ, else one per choice.

        Prompt prefixes shared between requests (a judge prompt's fixed part, the instruction both orders share, a
        reference output repeated across calls) are computed once and their KV cache reused (hf_prefix.py); the
        probabilities equal the plain path's up to rounding. `--backend-opt prefix_cache=off` takes the plain path."""
        items: list[tuple[int, list[int], list[tuple[str, list[int]]]]] = []  # (request, input ids, scored choices)
        for n, r in enumerate(requests):
            context = self.encode_chat(r.messages, r.assistant_prefix)
            conts = {c: self.tokenizer.encode(c, add_special_tokens=False) for c in r.choices}
            if not r.choices or any(not ids for ids in conts.values()):
                raise ValueError(f"choice_logprobs needs non-empty choices, got {r.choices!r}")
            if len({ids[0] for ids in conts.values()}) == len(conts):
                items.append((n, context, [(c, ids[:1]) for c, ids in conts.items()]))
            else:
                items.extend((n, context + ids[:-1], [(c, ids)]) for c, ids in conts.items())
        scored = [Scored(ids, max(len(c) for _, c in choices)) for _, ids, choices in items]
        rows = self.scored_rows(scored)
        scores: list[dict[str, float]] = [{} for _ in requests]
        for (n, _, choices), logprobs in zip(items, rows, strict=True):
            for choice, ids in choices:
                steps = logprobs[-len(ids):]  # the positions that predict each of the choice's tokens
                scores[n][choice] = float(steps.gather(1, _tensor(ids, steps.device)[:, None]).sum())
        return [_renormalise(s) for s in scores]

    def encode_chat(self, messages: Sequence[Message], assistant_prefix: str = "") -> list[int]:
        try:
            text = self.tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)
        except Exception as exc:  # jinja raises for conversations a template refuses (e.g. a system turn)
            raise UserError(f"the chat template refused a conversation ({_one_line(exc)}); fix the messages or pass "
                            "--chat-template FILE") from None
        ids: list[int] = self.tokenizer(text + assistant_prefix, add_special_tokens=False)["input_ids"]
        return ids

    # ---- internals -------------------------------------------------------------------------------------------

    def _generate(self, prompts: list[list[int]], params: list[SamplingParams]) -> list[Completion]:
        """Batches of `batch_size` requests sorted by (max_new_tokens, prompt length): little padding, rows that stop
        together."""
        order = sorted(range(len(prompts)), key=lambda i: (params[i].max_new_tokens, len(prompts[i])))
        out: list[Completion | None] = [None] * len(prompts)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            for i, completion in zip(idx, self._generate_batch([prompts[i] for i in idx], [params[i] for i in idx]),
                                     strict=True):
                out[i] = completion
        return [c for c in out if c is not None]

    def _generate_batch(self, prompts: list[list[int]], params: list[SamplingParams]) -> list[Completion]:
        decoded = decode(self.model, prompts, params, eos_ids=self.eos_ids, pad_id=self.tokenizer.pad_token_id,
                         detokenize=self._detokenize)
        completions = []
        for prompt, p, d in zip(prompts, params, decoded, strict=True):
            text = self._detokenize(d.ids)
            cut = min((text.index(s) for s in p.stop if s and s in text), default=None)
            top = None
            if d.top is not None:
                top = [{self.tokenizer.decode([i]): v for v, i in zip(*step, strict=True)} for step in d.top]
            completions.append(Completion(text=text if cut is None else text[:cut], prompt_tokens=len(prompt),
                                          completion_tokens=len(d.ids), top_logprobs=top,
                                          finish_reason="stop" if cut is not None else d.finish))
        return completions

    def _detokenize(self, ids: list[int]) -> str:
        text: str = self.tokenizer.decode(ids, skip_special_tokens=True)
        return text

    def _left_pad(self, prompts: list[list[int]]) -> tuple[Any, Any]:
        import torch

        width = max(len(p) for p in prompts)
        pad = self.tokenizer.pad_token_id
        ids = [[pad] * (width - len(p)) + p for p in prompts]
        mask = [[0] * (width - len(p)) + [1] * len(p) for p in prompts]
        device = self.model.device
        return torch.tensor(ids, device=device), torch.tensor(mask, device=device)

    def _plain_rows(self, items: list[Scored]) -> list[Any]:
        """Each item's float32 log-softmax at its last `last` positions, every prompt prefilled from its first token
        in left-padded batches of similar length."""
        import torch

        out: list[Any] = [None] * len(items)
        order = sorted(range(len(items)), key=lambda i: len(items[i].ids))
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            input_ids, mask = self._left_pad([items[i].ids for i in batch])
            last = max(items[i].last for i in batch)
            with torch.inference_mode():
                logits = self.model(input_ids=input_ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1)
                                    .clamp(min=0), logits_to_keep=last).logits
            logprobs = torch.log_softmax(logits.float(), dim=-1)
            for row, i in enumerate(batch):
                out[i] = logprobs[row, last - items[i].last :]
        return out

    def scored_rows(self, items: list[Scored]) -> list[Any]:
        """Each item's float32 log-softmax at its last `last` positions (prefix reuse unless it is off)."""
        return self._prefix_rows(items) if self.prefix_reuse else self._plain_rows(items)

    def _prefix_rows(self, items: list[Scored]) -> list[Any]:
        if self._prefix is None:
            if not supports_prefix_reuse(self.model):
                self.prefix_reuse = False
                return self._plain_rows(items)
            self._prefix = PrefixCache(lambda: self.model, self.tokenizer.pad_token_id, self.batch_size)
        self._prefix.batch_size = self.batch_size
        return self._prefix.rows(items)


def backend_fingerprint(source: str, template: str | None, dtype: str, device: str, quantize: str | None = None,
                        fingerprint_db: Path | None = None) -> str:
    """The checkpoint's content identity (harness.identity: weights, tokenizer, chat template; a hub id by its cached
    snapshot) plus what changes outputs on this backend; part of every generation-cache key."""
    ident: dict[str, Any] = {"v": FINGERPRINT_VERSION, "checkpoint": fingerprint(source, template, fingerprint_db), "dtype": dtype,
                             "device": device}
    if quantize:  # only when set, so unquantized models keep their fingerprints
        ident["quantize"] = quantize
    digest = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]
    return f"hf:{Path(source).name or source}@{dtype.removeprefix('torch.')}:{digest}"


def pick_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {device}: no CUDA GPU is visible (torch {torch.__version__}); use --device cpu")
    try:
        torch.device(device)
    except RuntimeError:
        raise UserError(f"--device {device}: not a torch device; use cpu, cuda, cuda:N or auto") from None
    return device


# ---- helpers ------------------------------------------------------------------------------------------------------


def _parse_extra(extra: dict[str, str], device: str, dtype: str) -> tuple[str | None, int | None, bool]:
    """The hf backend's `--backend-opt` keys: quantize=int8 (CPU only), threads=N (torch intra-op threads on CPU),
    prefix_cache=on|off (choice scoring reuses shared prompt prefixes; same numbers up to rounding, so not part of
    the fingerprint)."""
    unknown = sorted(set(extra) - {"quantize", "threads", "prefix_cache"})
    if unknown:
        raise UserError(f"--backend-opt {unknown[0]}: the hf backend knows quantize=int8, threads=N and "
                        "prefix_cache=on|off")
    prefix = extra.get("prefix_cache", "on")
    if prefix not in ("on", "off"):
        raise UserError(f"--backend-opt prefix_cache={prefix}: give on or off")
    quantize = extra.get("quantize")
    if quantize not in (None, "int8"):
        raise UserError(f"--backend-opt quantize={quantize}: the hf backend supports quantize=int8")
    if quantize and not device.startswith("cpu"):
        raise UserError(f"--backend-opt quantize=int8 runs on CPU only (torch dynamic quantization); drop it or use "
                        f"--device cpu instead of {device}")
    if quantize and dtype != "torch.float32":
        raise UserError(f"--backend-opt quantize=int8 quantizes a float32 model; drop --dtype ({dtype}) or pass "
                        "--dtype float32")
    threads = extra.get("threads")
    if threads is not None and (not threads.isdigit() or int(threads) < 1):
        raise UserError(f"--backend-opt threads={threads}: give a positive whole number")
    return quantize, int(threads) if threads is not None else None, prefix == "on"


def _eos_ids(model: Any, tokenizer: Any) -> list[int]:
    ids: set[int] = set()
    for source in (getattr(model, "generation_config", None), model.config):
        value = getattr(source, "eos_token_id", None)
        ids.update([value] if isinstance(value, int) else (value or []))
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return sorted(ids)


def _renormalise(scores: dict[str, float]) -> dict[str, float]:
    top = max(scores.values())
    norm = top + math.log(sum(math.exp(v - top) for v in scores.values()))
    return {c: v - norm for c, v in scores.items()}


def _tensor(ids: list[int], device: Any) -> Any:
    import torch

    return torch.tensor(ids, device=device)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{exc.__class__.__name__}: {text[:300]}"
