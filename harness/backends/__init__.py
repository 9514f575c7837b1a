"""Model backends behind the narrow protocol in `base.py`, chosen by name; heavy SDKs load only in the chosen module.

`load_backend(options, settings)` is the one entry point: it resolves the checkpoint (the embedded default when no model
is given), builds the backend and wraps it in the generation cache unless `options.use_cache` is off.
"""

from __future__ import annotations

import difflib
import importlib

from harness.backends.base import (
    BackendOptions,
    ChatBackend,
    ChatRequest,
    ChoiceRequest,
    ChoiceScorer,
    Completion,
    Message,
    SamplingParams,
)
from harness.errors import UserError
from harness.settings import Settings

__all__ = [
    "BACKENDS",
    "BackendOptions",
    "ChatBackend",
    "ChatRequest",
    "ChoiceRequest",
    "ChoiceScorer",
    "Completion",
    "Message",
    "SamplingParams",
    "load_backend",
    "resolve_checkpoint",
]

# name -> (module, factory). Each factory is `build(options: BackendOptions) -> ChatBackend`.
BACKENDS: dict[str, tuple[str, str]] = {
    "hf": ("harness.backends.hf", "build"),
    "openai": ("harness.backends.openai_api", "build"),
    "vllm": ("harness.backends.vllm_backend", "build"),
    "fake": ("harness.backends.fake", "build"),
}
LOCAL_BACKENDS = ("hf", "vllm")
"""Backends that load a checkpoint themselves (so `--model` may be left out for the embedded default)."""


def load_backend(options: BackendOptions, settings: Settings) -> ChatBackend:
    if options.backend not in BACKENDS:
        close = difflib.get_close_matches(options.backend, BACKENDS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UserError(f"unknown backend {options.backend!r}; {hint}choose one of {', '.join(BACKENDS)}")
    if options.backend in LOCAL_BACKENDS:
        options = _replace_model(options, resolve_checkpoint(settings, options.model))
    module_name, factory = BACKENDS[options.backend]
    build = getattr(importlib.import_module(module_name), factory)
    # local backends identify their checkpoint by content; remembered file digests spare a rerun the rehashing
    backend: ChatBackend = build(options, fingerprint_db=settings.fingerprint_db) if options.backend in LOCAL_BACKENDS \
        else build(options)
    if options.use_cache:
        from harness.backends.cache import with_cache

        backend = with_cache(backend, settings.cache_db)
    return backend


def resolve_checkpoint(settings: Settings, model: str | None) -> str:
    """A validated local folder or hub id for a local backend; None means the embedded default (harness.models)."""
    from harness.models import resolve_model

    return str(resolve_model(settings, model))


def _replace_model(options: BackendOptions, model: str) -> BackendOptions:
    from dataclasses import replace

    return replace(options, model=model)
