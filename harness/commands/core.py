"""`sppo-bench suites` and `sppo-bench results table`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harness import tables
from harness.catalog import suites
from harness.results import load_records
from harness.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("suites", help="list the benchmark registry")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_suites)

    p = sub.add_parser("results", help="inspect result records")
    rsub = p.add_subparsers(dest="results_command", metavar="ACTION", required=True, parser_class=type(p))
    t = rsub.add_parser("table", help="flatten a run directory, reference file or card into rows")
    t.add_argument("path", help="run directory, reference JSON, record JSON or model card (.md)")
    t.add_argument("--format", choices=("markdown", "csv", "json"), default="markdown")
    t.add_argument("--subtasks", action="store_true", help="include per-subtask metrics")
    t.set_defaults(func=cmd_results_table)


def cmd_suites(args: argparse.Namespace, settings: Settings) -> int:
    specs = list(suites())
    if args.json:
        json.dump([s.model_dump(mode="json") for s in specs], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    header = f"{'suite':<16} {'engine':<9} {'shots':>5}  {'card table':<14} {'card title':<22} dataset"
    print(header)
    print("-" * len(header))
    for s in specs:
        shots = "" if s.num_fewshot is None else str(s.num_fewshot)
        ds = s.dataset.id if s.dataset else ("(mean of " + ", ".join(s.aggregate_of) + ")" if s.aggregate_of
                                             else "(held-out prompts bundled with sppo-bench; train-and-eval only)")
        print(f"{s.name:<16} {s.engine:<9} {shots:>5}  {s.table:<14} {s.title:<22} {ds}")
    return 0


def cmd_results_table(args: argparse.Namespace, settings: Settings) -> int:
    records = load_records(Path(args.path))
    sys.stdout.write(tables.render(tables.rows(records, subtasks=args.subtasks), args.format))
    return 0
