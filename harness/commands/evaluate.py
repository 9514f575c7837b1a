"""`sppo-bench eval CHECKPOINT... --suites ...`: run suites on checkpoints, one record per (checkpoint, suite)."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.backends.base import BackendOptions
from harness.catalog import parse_suite_list
from harness.errors import UserError
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
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate checkpoints (local folders or hub ids) on suites")
    p.add_argument("checkpoints", nargs="+", metavar="CHECKPOINT")
    p.add_argument("--suites", help=f"comma-separated suite names (default: {','.join(DEFAULT_SUITES)})")
    p.add_argument("--out", required=True, help="run directory to write records into (resumes if it exists)")
    p.add_argument("--label", action="append", default=[], help="card row label per checkpoint, in order")
    p.add_argument("--limit", type=int, help="evaluate at most N items per task (smoke runs; records marked partial)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--judge", help="judge spec for judged suites (default: official when a key is set, else local)")
    p.add_argument("--force", action="store_true", help="rerun suites that already have a complete record")
    add_backend_options(p)
    p.set_defaults(func=cmd_eval)


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit {args.limit}: must be a positive number of items")
    specs = parse_suite_list(args.suites, DEFAULT_SUITES)
    if args.label and len(args.label) != len(args.checkpoints):
        raise UserError(f"{len(args.label)} --label for {len(args.checkpoints)} checkpoints; give one label per checkpoint")
    run = RunDir(Path(args.out))
    runners = {s.name: runner_for(s) for s in specs}  # fail before any work when an engine is missing
    labels = args.label or args.checkpoints
    for checkpoint, label in zip(args.checkpoints, labels, strict=True):
        model = ModelRef(checkpoint=checkpoint, label=label)
        ctx = RunContext(settings=settings, run=run, backend=backend_options(args, checkpoint), limit=args.limit,
                         seed=args.seed, judge=args.judge)
        for spec in specs:
            done = run.find(model.label, model.variant, spec.name)
            if done and done.status != "failed" and not args.force and (done.limit == args.limit):
                print(f"{label} / {spec.name}: done already ({run.record_path(label, None, spec.name)})")
                continue
            record = runners[spec.name](spec, model, ctx)
            path = run.write(record)
            print(f"{label} / {spec.name}: {record.status} -> {path}")
    return 0
