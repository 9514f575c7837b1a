"""Units of work and their content keys.

A unit is (checkpoint, suite, shard). Its content key is a hash of everything that changes its numbers: the model's
content fingerprint (not its path), the suite, the shard, the typed run options, the backend settings that change
outputs, what the suite's engine adds (the resolved judge and its prompt, the data's content identity), and the
versions of the scoring libraries. A rerun skips a unit whose record carries the same key, and redoes it when any of
these changed (a new --judge-model, an exported API key that turns the judge official, a retrained checkpoint).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from harness.engines.context import ModelRef, RunContext

KEY_VERSION = 2


@dataclass(frozen=True)
class Resources:
    cpus: int = 1
    gpus: int = 0
    memory_gb: float = 0.0
    """0 = no memory reservation."""


@dataclass(frozen=True)
class Unit:
    model: ModelRef
    suite: str
    shard: int = 0
    num_shards: int = 1
    resources: Resources = Resources()

    @property
    def is_merge(self) -> bool:
        return self.shard == -1

    @property
    def is_shard(self) -> bool:
        return self.num_shards > 1 and not self.is_merge

    @property
    def name(self) -> str:
        part = "merge" if self.is_merge else (f"shard{self.shard}of{self.num_shards}" if self.num_shards > 1 else "")
        return "/".join(x for x in (self.model.label, self.model.variant or "", self.suite, part) if x)


def plan(models: Sequence[ModelRef], suites: Sequence[str], shards: dict[str, int] | None = None,
         resources: dict[str, Resources] | None = None) -> list[Unit]:
    """The (checkpoint x suite [x shard]) matrix; a sharded suite adds one merge unit after its shards."""
    units: list[Unit] = []
    for m in models:
        for s in suites:
            k = (shards or {}).get(s, 1)
            res = (resources or {}).get(s, Resources())
            if k > 1:
                units += [Unit(m, s, i, k, res) for i in range(k)]
                units.append(Unit(m, s, -1, k, res))
            else:
                units.append(Unit(m, s, resources=res))
    return units


def unit_key(unit: Unit, ctx: RunContext) -> str:
    """The unit's content key (see the module docstring)."""
    from harness.engines.keys import engine_inputs
    from harness.provenance import package_versions

    backend = {k: v for k, v in dataclasses.asdict(ctx.backend).items() if k not in {"max_concurrency", "use_cache"}}
    engine = engine_inputs(unit.suite, unit.model, ctx)
    payload = {
        "v": KEY_VERSION,
        "model": dataclasses.asdict(unit.model),
        "suite": unit.suite,
        "shard": [unit.shard, unit.num_shards],
        "options": dataclasses.asdict(ctx.options),
        "backend": backend,
        "engine": engine,
        "precision": unit_precision(unit, ctx, local_judge=bool(engine.get("judge_checkpoint"))),
        "packages": package_versions(),
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def unit_precision(unit: Unit, ctx: RunContext, local_judge: bool = False) -> dict[str, str]:
    """The dtypes the unit's checkpoint (and a local judge) run in: `--dtype auto` resolves per checkpoint and per
    machine (harness.backends.precision), so the resolved dtype is part of the key."""
    from harness.backends import LOCAL_BACKENDS, resolve_checkpoint
    from harness.backends.base import BackendOptions
    from harness.backends.precision import resolve_device, resolve_precision
    from harness.errors import UserError

    def dtype(opts: BackendOptions, model: str | None) -> str:
        if opts.backend not in LOCAL_BACKENDS:
            return opts.dtype
        try:
            checkpoint = resolve_checkpoint(ctx.settings, model)
        except UserError as exc:  # running the unit fails with the reason
            return f"unresolved: {exc}"
        return resolve_precision(opts.dtype, checkpoint, resolve_device(opts.device)).dtype

    out = {"model": dtype(ctx.backend, unit.model.checkpoint)}
    if local_judge:  # the judged suite's judge is a local model (harness.engines.judge_backend._local)
        judge = ctx.options.judge_backend
        own = judge is None and ctx.backend.backend == "hf" and \
            resolve_checkpoint(ctx.settings, None) == resolve_checkpoint(ctx.settings, unit.model.checkpoint)
        out["judge"] = out["model"] if own else dtype(judge or BackendOptions(backend="hf"), judge.model if judge else None)
    return out


def unit_keys(units: Sequence[Unit], ctx: RunContext) -> dict[Unit, str]:
    """Every unit's key, computed once per run (a judged suite's key reads its data and judge prompt)."""
    return {u: unit_key(u, ctx) for u in units}
