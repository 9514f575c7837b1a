"""What each engine adds to a unit's content key: the inputs outside the model and the run options that change its
numbers. Judged suites: the judge resolved here and now (official or local, by the environment), its model, endpoint,
backend fingerprint and prompt hash, and the data's content identity. lm-eval suites: the data's identity (pulled
data's manifest, a mirror's files, or the hub revision).

A suite whose data or judge cannot be resolved yet gets a key that says so; running it then fails with the reason.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness.engines.context import ModelRef, RunContext
from harness.errors import UserError


def engine_inputs(suite: str, model: ModelRef, ctx: RunContext) -> dict[str, Any]:
    from harness.specs import SUITES

    if suite not in SUITES:
        return {}
    spec = SUITES.get(suite)
    try:
        if spec.engine == "judge":
            return _judged_inputs(suite, ctx)
        if spec.engine == "lm-eval":
            return {"data": _lm_eval_data(spec.name, ctx)}
    except UserError as exc:
        return {"unresolved": str(exc)}
    return {}


def _judged_inputs(suite: str, ctx: RunContext) -> dict[str, Any]:
    from harness.engines.judge_backend import judge_model_name
    from harness.engines.judged import JUDGED_SUITES, key_env, suite_folder
    from harness.judges import choose_judge

    impl = JUDGED_SUITES.get(suite)
    folder = suite_folder(ctx, suite)
    judge = choose_judge(suite, ctx.options.judge, key_env(ctx))
    data = _load(impl, folder)
    opts = ctx.options.judge_backend
    backend = asdict(opts) if opts else None
    if backend:
        backend.pop("max_concurrency", None)
        backend.pop("use_cache", None)
    return {
        "judge": judge.id,
        "official": judge.official,
        "judge_model": judge_model_name(judge, opts, ctx.settings) if opts else judge.model,
        "judge_backend": backend,
        "judge_checkpoint": _local_judge_fingerprint(ctx) if not judge.official else None,
        "prompt_hash": impl.prompt_hash(judge, data),
        "data": _data_identity(folder, ctx),
    }


def _load(impl: Any, folder: Path) -> Any:
    return impl.load(folder)


def _local_judge_fingerprint(ctx: RunContext) -> str | None:
    """Content identity of a local judge's checkpoint (the embedded default unless --judge-model names one)."""
    opts = ctx.options.judge_backend
    if opts is not None and opts.backend not in ("hf", "vllm"):
        return f"{opts.backend}:{opts.model}"
    from harness.backends import resolve_checkpoint
    from harness.identity import fingerprint

    checkpoint = resolve_checkpoint(ctx.settings, opts.model if opts else None)
    return fingerprint(checkpoint, cache_db=ctx.settings.fingerprint_db)


def _lm_eval_data(suite: str, ctx: RunContext) -> str | None:
    from harness.specs import SUITES

    spec = SUITES.get(suite)
    if ctx.options.data_dir and (Path(ctx.options.data_dir) / suite).is_dir():
        return _data_identity(Path(ctx.options.data_dir) / suite, ctx)
    folder = ctx.settings.data_dir / suite
    if ctx.options.data_dir and not folder.is_dir():
        # `--data-dir` with upstream files (../shared/data): converted into the data home now, as the run would, so
        # the key names the content the run reads (a hub-only suite the mirror lacks: an unresolved key)
        from harness.data import MissingData, from_mirror

        try:
            from_mirror(ctx.settings, suite, Path(ctx.options.data_dir))
        except MissingData as exc:
            raise UserError(str(exc)) from None
    if folder.is_dir():  # pulled (also what `--data-dir` with upstream files converted into the data home)
        return _data_identity(folder, ctx)
    if ctx.options.data_dir:
        return None
    return f"hub:{spec.dataset.id}@{spec.dataset.revision}" if spec.dataset else None


def _data_identity(folder: Path, ctx: RunContext) -> str:
    """The content identity of pulled data, every file checked against its manifest (a file changed since the pull is
    refused: UserError, so the key says so and never matches a finished unit); a user mirror: its files' sha256."""
    from harness.data import data_identity, memo_db
    from harness.data.verify import files_identity

    return data_identity(ctx.settings, folder) or files_identity(folder, memo_db(ctx.settings))
