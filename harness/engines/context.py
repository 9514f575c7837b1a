"""What a unit of work runs with: the model it evaluates, the typed run options, and the run's context.

`RunOptions` holds everything besides the model and the backend that changes a number; its canonical JSON is part of
every unit's content key, so a changed option never reuses an old record. In-process backends (tests, the Python API)
travel separately, in `Injected`, and are never part of a key.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from harness.backends.base import BackendOptions, ChatBackend, ChoiceScorer
from harness.settings import Settings
from harness.store import RunDir


@dataclass(frozen=True)
class ModelRef:
    checkpoint: str
    """Local folder, hub id, or an API model name (openai backend)."""
    label: str
    """Row label on the card."""
    iteration: int | None = None
    variant: str | None = None
    """A decoding variant shown as its own row ("best-of-16")."""
    fingerprint: str | None = None
    """Content identity of the checkpoint (harness.identity), set when the unit is planned."""


@dataclass(frozen=True)
class RunOptions:
    """The options of a run that change its numbers (a unit's content key covers all of them)."""

    limit: int | None = None
    """Evaluate at most N items per task (records are marked partial)."""
    suite_limits: tuple[tuple[str, int], ...] = ()
    """Per-suite limits that override `limit` ((suite, N) pairs, e.g. the main job's 100 IFEval prompts)."""
    seed: int = 0
    judge: str | None = None
    """"official", "local" or a judge id, resolved at the command line (None = the suite's default here)."""
    judge_backend: BackendOptions | None = None
    """The judge's backend; None = the judge's default (the openai API for official judges, the embedded model
    for local ones)."""
    judge_timeout: float | None = None
    """Seconds before an API judge request is abandoned (then retried by the openai client)."""
    judge_max_retries: int | None = None
    max_new_tokens: int | None = None
    """Cap every answer of every suite (smoke runs); None = each suite's upstream cap."""
    data_dir: str | None = None
    """A local mirror of suite data, tried before the cache home."""
    repeats: int = 1
    """Judged suites: independent repetitions (re-sampled answers and judgments) whose spread is recorded."""
    note: str | None = None
    """A line every record of the run carries (e.g. that a profile is a smoke run)."""

    def canonical(self) -> str:
        return canonical_json(self)

    def limit_for(self, suite: str) -> int | None:
        """The item limit of `suite`: its own, else the run's."""
        return dict(self.suite_limits).get(suite, self.limit)


@dataclass(frozen=True)
class Injected:
    """In-process backends for tests and the Python API; never part of a unit key, never pickled to a cluster."""

    generator: ChatBackend | None = None
    """Answers instead of the unit's checkpoint (judged suites)."""
    judge: ChatBackend | ChoiceScorer | None = None
    preference: ChoiceScorer | None = None
    """The preference model that picks best-of-n samples."""


@dataclass(frozen=True)
class RunContext:
    settings: Settings
    run: RunDir
    backend: BackendOptions = field(default_factory=BackendOptions)
    options: RunOptions = RunOptions()
    injected: Injected = Injected()
    shard: tuple[int, int] | None = None
    """(k, K): this unit runs items i with i % K == k, filling the content caches for the merge unit."""


def canonical_json(obj: Any) -> str:
    """Sorted-key JSON of a (nested) dataclass, the one serialization content keys are computed from."""
    data = dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) and not isinstance(obj, type) else obj
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def identified(model: ModelRef, ctx: RunContext) -> ModelRef:
    """`model` with its content fingerprint set (computed here when the caller did not plan it, e.g. the Python API)."""
    if model.fingerprint is not None:
        return model
    return identify_model(model, ctx.backend, ctx.settings)


def identify_model(model: ModelRef, backend: BackendOptions, settings: Settings) -> ModelRef:
    """The model with its checkpoint resolved and validated (local backends: a missing or broken checkpoint is a
    one-line error) and its content fingerprint set (harness.identity); API models are identified by endpoint + name."""
    from harness.backends import LOCAL_BACKENDS

    if backend.backend not in LOCAL_BACKENDS:
        where = backend.base_url or "default endpoint"
        return dataclasses.replace(model, fingerprint=f"{backend.backend}:{where}:{model.checkpoint}")
    from pathlib import Path

    from harness.identity import fingerprint
    from harness.io import read_text
    from harness.models import resolve_model

    checkpoint = resolve_model(settings, model.checkpoint)
    template = read_text(Path(backend.chat_template), "chat template file") if backend.chat_template else None
    return dataclasses.replace(model, checkpoint=checkpoint,
                               fingerprint=fingerprint(checkpoint, template, settings.fingerprint_db))


def content_sha256(fingerprint: str | None) -> str | None:
    """The fingerprint when it is a content hash (a local checkpoint), else None (API models, fakes): what a record's
    `provenance.checkpoint_sha256` holds."""
    if fingerprint and len(fingerprint) == 64 and all(c in "0123456789abcdef" for c in fingerprint):
        return fingerprint
    return None
