"""`sppo-bench eval CHECKPOINT... --suites ...`: run suites on checkpoints, one record per (checkpoint, suite)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from harness.backends.base import BackendOptions
from harness.bestofn import variant_name
from harness.catalog import get_suite, parse_suite_list
from harness.errors import UserError
from harness.executors import EXECUTORS, Outcome, make_executor, plan, run_matrix
from harness.runners import ModelRef, RunContext, runner_for
from harness.settings import Settings
from harness.store import RunDir

DEFAULT_SUITES = ["ifeval", "alpaca_eval", "mt_bench"]


def add_backend_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model backend")
    g.add_argument("--backend", default="hf", help="hf (default), openai, vllm or fake")
    g.add_argument("--device", default="auto", help="cpu, cuda, or auto")
    g.add_argument("--dtype", default="auto", help="auto, float32, bfloat16, float16")
    g.add_argument("--batch-size", type=int, default=8)
    g.add_argument("--chat-template", help="a Jinja chat template file for checkpoints that lack one")
    g.add_argument("--base-url", help="OpenAI-compatible endpoint (openai backend)")
    g.add_argument("--api-key-env", default="OPENAI_API_KEY", help="name of the env var holding the API key")
    g.add_argument("--max-concurrency", type=int, default=8, help="requests in flight (openai backend)")
    g.add_argument("--no-cache", action="store_true", help="bypass the generation cache")
    g.add_argument("--backend-opt", action="append", default=[], metavar="KEY=VALUE",
                   help="backend-specific option, e.g. timeout=60, max_retries=3 (openai), tensor_parallel_size=2 (vllm)")


def backend_options(args: argparse.Namespace, model: str | None = None) -> BackendOptions:
    return BackendOptions(
        model=model,
        backend=args.backend,
        device=args.device,
        dtype=args.dtype,
        batch_size=args.batch_size,
        chat_template=args.chat_template,
        base_url=args.base_url,
        api_key_env=args.api_key_env,
        max_concurrency=args.max_concurrency,
        use_cache=not args.no_cache,
        extra=parse_pairs(args.backend_opt, "--backend-opt"),
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate checkpoints (local folders or hub ids) on suites")
    p.add_argument("checkpoints", nargs="*", metavar="CHECKPOINT",
                   help="local folders or hub ids (default: the embedded SmolLM2-135M-Instruct)")
    p.add_argument("--suites", help=f"comma-separated suite names (default: {','.join(DEFAULT_SUITES)})")
    p.add_argument("--out", required=True, help="run directory to write records into (resumes if it exists)")
    p.add_argument("--label", action="append", default=[], help="card row label per checkpoint, in order")
    p.add_argument("--limit", type=int, help="evaluate at most N items per task (smoke runs; records marked partial)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", help="a local mirror of suite data (layout <suite>/...), tried before the cache home")
    add_judge_options(p)
    p.add_argument("--force", action="store_true", help="rerun suites that already have a complete record")
    add_backend_options(p)
    add_executor_options(p)
    p.set_defaults(func=cmd_eval)


def add_judge_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("judged suites (AlpacaEval, Arena-Hard, MT-Bench)")
    g.add_argument("--judge", help="official, local, or a judge id (default: official when its API key is set, else local)")
    g.add_argument("--judge-backend", help="backend of the judge model: openai (official judges) or hf (local judges)")
    g.add_argument("--judge-model", help="judge model: an API model name, or a local checkpoint for a local judge")
    g.add_argument("--judge-base-url", help="OpenAI-compatible endpoint of the judge")
    g.add_argument("--judge-api-key-env", help="name of the env var holding the judge's API key (default OPENAI_API_KEY)")
    g.add_argument("--judge-concurrency", type=int, help="judge requests in flight")
    g.add_argument("--max-new-tokens", type=int, help="cap every answer's length (default: each suite's upstream cap)")
    g.add_argument("--best-of-n", type=int, help="also evaluate best-of-N decoding as its own row, chosen by the judge")


def judge_context(args: argparse.Namespace) -> tuple[BackendOptions | None, dict[str, Any]]:
    """The judge backend (None = the suite's default) and the judged-suite options from the command line."""
    options: dict[str, Any] = {}
    for flag in ("max_new_tokens", "best_of_n"):
        value = getattr(args, flag, None)
        if value is not None and value < 1:
            raise UserError(f"--{flag.replace('_', '-')} {value}: must be at least 1")
    if args.max_new_tokens is not None:
        options["max_new_tokens"] = args.max_new_tokens
    given = [args.judge_backend, args.judge_model, args.judge_base_url, args.judge_api_key_env, args.judge_concurrency]
    if all(v is None for v in given):
        return None, options
    backend = args.judge_backend or ("openai" if args.judge_base_url or args.judge_api_key_env else "hf")
    judge = BackendOptions(model=args.judge_model, backend=backend, device=args.device, dtype=args.dtype,
                           batch_size=args.batch_size, base_url=args.judge_base_url,
                           api_key_env=args.judge_api_key_env or "OPENAI_API_KEY",
                           max_concurrency=args.judge_concurrency or 8, use_cache=not args.no_cache)
    return judge, options


def add_executor_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("scale-out")
    g.add_argument("--executor", choices=EXECUTORS, default="local", help="where units of work run (default: local)")
    g.add_argument("--workers", type=int, default=1, help="parallel workers (local process pool, local Ray cluster CPUs)")
    g.add_argument("--ray-address", help="address of an existing Ray cluster (default: start a local one)")
    g.add_argument("--shards", action="append", default=[], metavar="SUITE=K",
                   help="split a suite's items over K units that merge exactly, e.g. alpaca_eval=4")
    g.add_argument("--retries", type=int, default=2, help="retries of a failing unit before it is recorded as failed")
    g.add_argument("--slurm", action="append", default=[], metavar="KEY=VALUE",
                   help="submitit/SLURM option, e.g. partition=gpu, timeout_min=120, gpus_per_node=1, cluster=local")


def parse_pairs(items: list[str], flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise UserError(f"{flag} {item!r}: expected KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def run_units(args: argparse.Namespace, models: list[ModelRef], suite_names: list[str], ctx: RunContext) -> list[Outcome]:
    """Plan the (checkpoint x suite) matrix, plus best-of-N rows of the judged suites when asked, run it on the
    chosen executor, print one line per unit."""
    shards = {k: _positive(v, f"--shards {k}") for k, v in parse_pairs(args.shards, "--shards").items()}
    for name in shards:
        if name not in suite_names:
            raise UserError(f"--shards {name}=...: {name!r} is not among the suites being run ({', '.join(suite_names)})")
    if args.workers < 1:
        raise UserError(f"--workers {args.workers}: must be at least 1")
    executor = make_executor(args.executor, ctx.run.root, workers=args.workers, ray_address=args.ray_address,
                             slurm=parse_pairs(args.slurm, "--slurm"))
    units = plan(models, suite_names, shards)
    judged = [n for n in suite_names if get_suite(n).engine == "judge"]
    if getattr(args, "best_of_n", None) and judged:
        variants = [dataclasses.replace(m, variant=variant_name(args.best_of_n)) for m in models]
        units += plan(variants, judged, shards)
    outcomes = run_matrix(units, ctx, executor, retries=args.retries, force=args.force)
    for o in outcomes:
        if o.unit.num_shards > 1 and not o.unit.is_merge:
            continue
        where = ctx.run.record_path(o.unit.model.label, o.unit.model.variant, o.unit.suite)
        if o.status == "skipped":
            print(f"{o.unit.name}: done already ({where})")
        elif o.status == "failed":
            print(f"{o.unit.name}: FAILED after {o.attempts} attempts: {o.error} ({where})")
        else:
            print(f"{o.unit.name}: {o.record.status if o.record else '?'} -> {where}")
    if hasattr(executor, "shutdown"):
        executor.shutdown()
    return outcomes


def _positive(text: str, flag: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise UserError(f"{flag}={text!r}: expected a whole number") from None
    if value < 1:
        raise UserError(f"{flag}={value}: must be at least 1")
    return value


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit {args.limit}: must be a positive number of items")
    specs = parse_suite_list(args.suites, DEFAULT_SUITES)
    for s in specs:
        runner_for(s)  # fail before any work when an engine is missing
    if not args.checkpoints:
        from harness.models import DEFAULT_NAME, resolve_model

        args.checkpoints = [resolve_model(settings, None)]
        args.label = args.label or [DEFAULT_NAME]
    from harness.backends import LOCAL_BACKENDS

    if args.backend in LOCAL_BACKENDS:
        from harness.models import resolve_model

        for checkpoint in args.checkpoints:
            resolve_model(settings, checkpoint)  # a missing or broken checkpoint fails here, before any work
    if args.label and len(args.label) != len(args.checkpoints):
        raise UserError(f"{len(args.label)} --label for {len(args.checkpoints)} checkpoints; give one label per checkpoint")
    labels = args.label or args.checkpoints
    models = [ModelRef(checkpoint=c, label=label) for c, label in zip(args.checkpoints, labels, strict=True)]
    judge_backend, options = judge_context(args)
    if args.data_dir:
        options["data_dir"] = args.data_dir
    ctx = RunContext(settings=settings, run=RunDir(Path(args.out)), backend=backend_options(args), limit=args.limit,
                     seed=args.seed, judge=args.judge, judge_backend=judge_backend, options=dict(options))
    outcomes = run_units(args, models, [s.name for s in specs], ctx)
    return 1 if any(o.status == "failed" for o in outcomes) else 0
