"""Open LLM Leaderboard suites (v2 six, v1 six) through lm-eval's own shipped tasks and `lm_eval.simple_evaluate`.

Settings are the leaderboard's: v2 applies the chat template with few-shot examples as multi-turn, greedy decoding and
the generation limits of the shipped YAMLs; v1 (which predates chat templates) prompts plainly with its shot counts.
Where the tasks and data come from: tasks.py; the model and its JSON request cache (an interrupted suite resumes, and
nothing in a run directory is ever unpickled): model.py; lm-eval output into leaderboard-normalized records: results.py.
lm-eval's per-sample outputs are kept beside the record.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.engines.context import ModelRef, RunContext, content_sha256, identified
from harness.engines.lmeval.items import lmeval_items
from harness.engines.lmeval.model import (
    apply_user_cap,
    cached_lm,
    fit_generation_to_context,
    load_lm,
    run_dtype,
    truncation_notes,
)
from harness.engines.lmeval.results import build_record
from harness.engines.lmeval.tasks import TaskSources, nltk_data, task_sources
from harness.errors import UserError
from harness.io import atomic_write_text, ensure_dir
from harness.provenance import MODEL_PACKAGES, SCORING_PACKAGES, git_sha, package_versions
from harness.records import ResultRecord, now
from harness.specs import SuiteSpec
from harness.store import ITEMS_FILE, write_items


def run_suite(spec: SuiteSpec, model: ModelRef, ctx: RunContext) -> ResultRecord:
    started = now()
    if not spec.lm_eval_task:
        raise UserError(f"suite {spec.name!r} has no lm-eval task; it cannot run through lm-eval")
    out_dir = ensure_dir(ctx.run.samples_dir(model.label, model.variant, spec.name))
    sources = task_sources(spec, ctx, out_dir / "tasks")
    with nltk_data(spec, ctx):
        model = identified(model, ctx)
        lm = load_lm(model, ctx)
        leaderboard_v2 = spec.table == "open_llm_v2"
        gen_kwargs, notes = fit_generation_to_context(lm, sources.max_gen_toks)
        gen_kwargs, notes = apply_user_cap(gen_kwargs, notes, sources.max_gen_toks, ctx.options.max_new_tokens)
        results = evaluate(cached_lm(lm, model, ctx), spec, sources, ctx, chat=leaderboard_v2, gen_kwargs=gen_kwargs)
    notes += sources.notes + truncation_notes(lm, results, gen_kwargs or {}, sources.max_gen_toks)
    write_outputs(results, out_dir)
    rule = spec.leaderboard.filter if spec.leaderboard else "none"
    write_items(out_dir / ITEMS_FILE, lmeval_items(results.get("samples") or {}, sources.task, rule))
    record = build_record(
        spec,
        results,
        model=model.label,
        source="run",
        location=model.checkpoint,
        iteration=model.iteration,
        variant=model.variant,
        checkpoint=model.checkpoint,
        limit=ctx.options.limit_for(spec.name),
        dataset=sources.dataset,
        notes=notes,
        extra_generation={"apply_chat_template": leaderboard_v2, "fewshot_as_multiturn": leaderboard_v2,
                          "backend": ctx.backend.backend, "dtype": run_dtype(model, ctx), "device": ctx.backend.device,
                          "batch_size": ctx.backend.batch_size, "gen_kwargs_override": gen_kwargs},
        git_sha=git_sha(),
    )
    record.provenance.started_at = started
    record.provenance.checkpoint_sha256 = content_sha256(model.fingerprint)
    record.provenance.packages.update(package_versions((*SCORING_PACKAGES, *MODEL_PACKAGES)))
    return record


def evaluate(lm: Any, spec: SuiteSpec, sources: TaskSources, ctx: RunContext, *, chat: bool,
             gen_kwargs: dict[str, Any] | None) -> dict[str, Any]:
    import lm_eval
    from lm_eval.tasks import TaskManager

    with _quiet("lm_eval.tasks._index"):  # each generated YAML "overrides" its shipped task: that is the point
        task_manager = TaskManager(include_path=[str(p) for p in sources.include_paths], include_defaults=False)
    samples = shard_samples(task_manager, sources.task, ctx, ctx.options.limit_for(spec.name))
    try:
        results = lm_eval.simple_evaluate(
            model=lm,
            tasks=[sources.task],
            task_manager=task_manager,
            num_fewshot=None if chat else spec.num_fewshot,
            apply_chat_template=chat,
            fewshot_as_multiturn=chat,
            limit=None if samples else ctx.options.limit_for(spec.name),
            samples=samples,
            log_samples=True,
            random_seed=ctx.options.seed,
            gen_kwargs=gen_kwargs,
        )
    except (FileNotFoundError, ConnectionError) as exc:
        raise UserError(f"suite {spec.name!r}: lm-eval could not load its data ({exc.__class__.__name__}: {exc}); "
                        f"pull it with `sppo-bench data pull --suites {spec.name}` or go online") from None
    if results is None:
        raise UserError("lm-eval returned no results on this rank; run a single process")
    return dict(results)


def shard_samples(task_manager: Any, task: str, ctx: RunContext, limit: int | None) -> dict[str, list[int]] | None:
    """Shard k of K evaluates items i % K == k of each leaf task (within --limit): it fills the shared request cache,
    and the merge unit's unsharded run then finds every answer there."""
    if not ctx.shard:
        return None
    k, num = ctx.shard
    tasks = task_manager.load([task])["tasks"]
    out = {}
    for name, t in tasks.items():
        n = len(t.eval_docs) if limit is None else min(len(t.eval_docs), limit)
        # lm-eval evaluates a task absent from `samples` in full and cannot run an empty one: a shard with no item
        # of a tiny task redoes item 0 (its answer is cached, so the merge is unaffected).
        out[name] = [i for i in range(n) if i % num == k] or [0]
    return out


@contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def write_outputs(results: dict[str, Any], out_dir: Path) -> None:
    """lm-eval's per-sample outputs (one JSONL per leaf task) and its results JSON, beside the record."""
    from lm_eval.utils import handle_non_serializable

    samples = results.pop("samples", None) or {}
    for task, rows in samples.items():
        text = "".join(json.dumps(r, default=handle_non_serializable, ensure_ascii=False) + "\n" for r in rows)
        atomic_write_text(out_dir / f"samples_{task}.jsonl", text)
    atomic_write_text(out_dir / "results.json",
                      json.dumps(results, indent=2, default=handle_non_serializable, ensure_ascii=False) + "\n")
    results["samples"] = samples
