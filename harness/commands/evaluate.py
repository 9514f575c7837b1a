"""`sppo-bench eval CHECKPOINT... --suites ...`: run suites on checkpoints, one record per (checkpoint, suite)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.catalog import get_suite, parse_suite_list
from harness.commands.options import (
    add_backend_options,
    add_executor_options,
    add_judge_options,
    backend_options,
    label_arg,
    run_options,
    scale_out,
)
from harness.engines.context import ModelRef
from harness.engines.judged import failed_generations_note
from harness.errors import UserError
from harness.evaluation import evaluate, outcome_line
from harness.executors import Outcome
from harness.settings import Settings
from harness.store import RunDir

DEFAULT_SUITES = ["ifeval", "alpaca_eval", "mt_bench"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate checkpoints (local folders or hub ids) on suites")
    p.add_argument("checkpoints", nargs="*", metavar="CHECKPOINT",
                   help="local folders or hub ids (default: the embedded SmolLM2-135M-Instruct)")
    p.add_argument("--suites", help=f"comma-separated suite names (default: {','.join(DEFAULT_SUITES)})")
    p.add_argument("--out", required=True, help="run directory to write records into (resumes if it exists)")
    p.add_argument("--label", action="append", default=[], help="card row label per checkpoint, in order")
    p.add_argument("--limit", type=int, help="evaluate at most N items per task (smoke runs; records marked partial)")
    p.add_argument("--suite-limit", action="append", default=[], metavar="SUITE=N",
                   help="a suite's own item limit, overriding --limit for it (e.g. ifeval=100)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", help="a local mirror of suite data (layout <suite>/...), tried before the cache home")
    add_judge_options(p)
    p.add_argument("--force", action="store_true", help="rerun suites that already have a complete record")
    add_backend_options(p)
    add_executor_options(p)
    p.set_defaults(func=cmd_eval)


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    if args.suites is not None and not args.suites.strip(" ,"):
        raise UserError("--suites is empty; name at least one suite (see `sppo-bench suites`)")
    specs = parse_suite_list(args.suites, DEFAULT_SUITES)
    # an average (open_llm_v2, open_llm_v1) runs its member suites; the card computes the average from their records
    specs = list({m.name: m for s in specs for m in ([get_suite(n) for n in s.aggregate_of] or [s])}.values())
    options = run_options(args)
    for name, _ in options.suite_limits:
        get_suite(name)  # an unknown suite name fails with suggestions
    backend = backend_options(args)
    scale = scale_out(args)
    checkpoints, labels = list(args.checkpoints), [label_arg(x, "--label") for x in args.label]
    for c in checkpoints:
        label_arg(c, "CHECKPOINT")
    if not checkpoints:
        from harness.models import default_label, resolve_model

        checkpoints = [resolve_model(settings, None)]
        labels = labels or [default_label(settings)]
    if labels and len(labels) != len(checkpoints):
        raise UserError(f"{len(labels)} --label for {len(checkpoints)} checkpoints; give one label per checkpoint")
    models = [ModelRef(checkpoint=c, label=label) for c, label in zip(checkpoints, labels or checkpoints, strict=True)]
    run = RunDir(Path(args.out))

    def report(o: Outcome) -> None:
        line = outcome_line(o, run)
        if line:
            print(line, flush=True)

    outcomes = evaluate(models, [s.name for s in specs], Path(args.out), settings, backend=backend, options=options,
                        scale=scale, best_of_n=args.best_of_n, force=args.force, wait=args.wait, on_outcome=report)
    return failure_summary(outcomes)


def failure_summary(outcomes: list[Outcome]) -> int:
    """Exit status 1 when a unit failed, with one line on stderr saying which and why (the records say it in full)."""
    def unfinished(o: Outcome) -> str | None:  # why the unit is not done, or None
        if o.status == "failed":
            return o.error or "failed"
        if o.record is not None and o.record.status == "failed":
            return o.record.error or "the record says why"
        return failed_generations_note(o.record) if o.record is not None else None

    failed = [o for o in outcomes if not o.unit.is_shard and unfinished(o)]
    if not failed:
        return 0
    first = failed[0]
    why = unfinished(first)
    more = f" and {len(failed) - 1} more" if len(failed) > 1 else ""
    print(f"sppo-bench: error: {len(failed)} of {len(outcomes)} units failed: {first.unit.name}{more}: {why}; "
          "fix the cause and rerun the same command (finished units are kept)", file=sys.stderr)
    return 1
