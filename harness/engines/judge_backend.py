"""The backends of a judged unit: the unit's checkpoint (the generator), its judge, and best-of-n's preference model.

The generator is always the unit's checkpoint on the run's backend (or an injected in-process backend); a local judge
that is the very same model reuses the loaded backend instead of loading it twice. A judge that `sppo-bench judge
calibrate` has checked against published official verdicts carries that calibration into every record it judges.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness.backends.base import BackendOptions, ChatBackend, ChoiceScorer
from harness.engines.context import ModelRef, RunContext
from harness.errors import CapabilityMissing, UserError
from harness.judges import JudgeSpec
from harness.judges.calls import JudgeCache, cache_namespace, probe
from harness.judges.pairwise import LocalJudge, PreferenceModel
from harness.records import CalibrationSummary, JudgeInfo
from harness.settings import Settings

OPENAI_URL = "https://api.openai.com/v1"
DEFAULT_CONCURRENCY = 8


@dataclass
class UnitModels:
    """The unit's checkpoint as a chat backend, loaded on first use and shared by every turn, best-of-n and a local
    judge that is the same model."""

    ctx: RunContext
    model: ModelRef
    loaded: ChatBackend | None = None

    def generator(self) -> ChatBackend:
        if self.loaded is None:
            injected = self.ctx.injected.generator
            if injected is None:
                from harness.backends import load_backend

                injected = load_backend(replace(self.ctx.backend, model=self.model.checkpoint), self.ctx.settings)
            self.loaded = injected
        return self.loaded


@dataclass(frozen=True)
class JudgeRun:
    """Everything a suite's `judge` needs: the judge spec, its backend, its cache, and how hard to push it."""

    spec: JudgeSpec
    backend: Any
    """A ChatBackend (official judges) or a ChoiceScorer (local judges)."""
    info: JudgeInfo
    cache: JudgeCache
    concurrency: int
    endpoint: str
    """Where the judge runs, for error messages."""


def open_judge(judge: JudgeSpec, ctx: RunContext, prompt_hash: str, models: UnitModels) -> JudgeRun:
    opts = ctx.options.judge_backend
    backend, opts, endpoint = (_official if judge.official else _local)(judge, ctx, opts, models)
    fingerprint = str(backend.fingerprint)
    info = JudgeInfo(id=judge.id, model=judge_model_name(judge, opts, ctx.settings), prompt_hash=prompt_hash,
                     backend=getattr(backend, "name", opts.backend), official=judge.official, fingerprint=fingerprint,
                     calibration=stored_calibration(ctx.settings, judge.id, prompt_hash, fingerprint))
    cache = JudgeCache(ctx.settings.cache_db, cache_namespace(judge.id, prompt_hash, fingerprint))
    concurrency = (opts.max_concurrency if ctx.options.judge_backend else ctx.backend.max_concurrency) or DEFAULT_CONCURRENCY
    return JudgeRun(judge, backend, info, cache, concurrency, endpoint)


def calibration_path(settings: Settings, judge_id: str, prompt_hash: str, fingerprint: str) -> Path:
    """Where `sppo-bench judge calibrate` stores a judge's calibration: one file per judge id, prompt and fingerprint."""
    key = hashlib.sha256(json.dumps([judge_id, prompt_hash, fingerprint]).encode("utf-8")).hexdigest()
    return settings.home / "calibration" / f"{key}.json"


def stored_calibration(settings: Settings, judge_id: str, prompt_hash: str, fingerprint: str) -> CalibrationSummary | None:
    """The stored calibration of this very judge (id, prompt and backend fingerprint), None when it was never
    calibrated; an unreadable file is an error naming it (a record must not silently lose its calibration)."""
    path = calibration_path(settings, judge_id, prompt_hash, fingerprint)
    if not path.is_file():
        return None
    try:
        summary = CalibrationSummary.model_validate(json.loads(path.read_text(encoding="utf-8"))["summary"])
    except (OSError, ValueError, KeyError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
        raise UserError(f"{path}: unreadable judge calibration ({exc.__class__.__name__}); delete it or run "
                        "`sppo-bench judge calibrate` again") from None
    return summary if summary.judge_fingerprint == fingerprint else None


def judge_model_name(judge: JudgeSpec, opts: BackendOptions, settings: Settings) -> str:
    """The judge model as a record names it: the API model, a local checkpoint, or the embedded default by its label
    (the GGUF conversion and the hub model are different weights)."""
    if opts.model:
        return str(opts.model)
    if judge.official:
        return judge.model
    from harness.backends import LOCAL_BACKENDS
    from harness.models import default_label

    return f"embedded default ({default_label(settings)})" if opts.backend in LOCAL_BACKENDS else opts.backend


def _official(judge: JudgeSpec, ctx: RunContext, opts: BackendOptions | None,
              models: UnitModels) -> tuple[Any, BackendOptions, str]:
    opts = opts or BackendOptions(backend="openai", model=judge.model)
    if opts.model is None:
        opts = replace(opts, model=judge.model)
    calls = {k: str(v) for k, v in (("timeout", ctx.options.judge_timeout),
                                     ("max_retries", ctx.options.judge_max_retries)) if v is not None}
    if calls and opts.backend == "openai":
        opts = replace(opts, extra={**opts.extra, **calls})
    endpoint = opts.base_url or OPENAI_URL
    backend = ctx.injected.judge
    if backend is None:
        if opts.backend == "openai":
            probe(endpoint)  # an endpoint that is down fails here, before any generation is judged
        from harness.backends import load_backend

        backend = load_backend(opts, ctx.settings)
    if not isinstance(backend, ChatBackend):
        raise CapabilityMissing(f"judge backend {opts.backend!r} cannot generate chat completions")
    return backend, opts, endpoint


def _local(judge: JudgeSpec, ctx: RunContext, opts: BackendOptions | None,
           models: UnitModels) -> tuple[Any, BackendOptions, str]:
    chosen = opts or BackendOptions(backend="hf", model=None, batch_size=ctx.backend.batch_size)
    backend = ctx.injected.judge
    if backend is None and opts is None and ctx.backend.backend == "hf" and ctx.injected.generator is None:
        from harness.backends import resolve_checkpoint

        if resolve_checkpoint(ctx.settings, None) == resolve_checkpoint(ctx.settings, models.model.checkpoint):
            backend = models.generator()  # the embedded default judging itself: load it once
    if backend is None:
        from harness.backends import load_backend

        backend = load_backend(chosen, ctx.settings)
    if ctx.injected.judge is None:
        backend = _kept_judge(chosen, ctx.settings, backend)
    if not isinstance(backend, ChoiceScorer):
        raise CapabilityMissing(f"the local judge needs a backend that scores choices (hf); {chosen.backend!r} cannot")
    return backend, chosen, f"local {chosen.backend}"


_KEPT: dict[str, Any] = {}
"""The local judge this process used last, by its options and home: a later unit judging with the same judge (the next
checkpoint's AlpacaEval and MT-Bench) reuses the loaded model and its prefix store (harness.backends.hf_prefix), where
prompt prefixes shared with earlier checkpoints' prompts (the instruction and AlpacaEval's reference output, judged
again for every checkpoint) are kept once a call has found them shared."""


def _kept_judge(chosen: BackendOptions, settings: Settings, backend: Any) -> Any:
    """The kept judge when it is the same judge as `backend` (the same content fingerprint: weights, dtype, device,
    template), else `backend`, kept from now on. Local backends load their weights lazily, so the discarded one cost
    only its fingerprint."""
    key = json.dumps([repr(chosen), str(settings.home)])
    kept = _KEPT.get(key)
    if kept is not None and kept.fingerprint == backend.fingerprint:
        return kept
    _KEPT.clear()
    _KEPT[key] = backend
    return backend


def preference_model(ctx: RunContext) -> PreferenceModel:
    """Best-of-n's preference model: the injected scorer, else the judge backend's model (the embedded default)."""
    scorer = ctx.injected.preference
    if scorer is None:
        from harness.backends import load_backend

        loaded = load_backend(ctx.options.judge_backend or BackendOptions(backend="hf", model=None), ctx.settings)
        if not isinstance(loaded, ChoiceScorer):
            raise CapabilityMissing("best-of-n needs a preference model that scores choices (an hf backend)")
        scorer = loaded
    return LocalJudge(scorer, batch_size=ctx.backend.batch_size)
