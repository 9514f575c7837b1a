"""`sppo-bench import lm-eval|alpaca-eval|arena-hard|mt-bench FILE --model NAME --out RUN_DIR`."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from harness.errors import CapabilityMissing
from harness.importers import KINDS
from harness.settings import Settings
from harness.store import RunDir


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="turn published results (lm-eval, alpaca_eval, arena-hard, FastChat) into records")
    p.add_argument("kind", choices=sorted(KINDS), help="what kind of file it is")
    p.add_argument("path", help="the results / annotations / judgments file")
    p.add_argument("--model", required=True, help="the model's row label in records and cards")
    p.add_argument("--out", required=True, help="run directory to write the records into")
    p.add_argument("--iteration", type=int, help="SPPO iteration this model is (for cards and checks)")
    p.add_argument("--variant", help="decoding variant shown as its own row, e.g. best-of-16")
    p.add_argument("--baseline", help="baseline model name or file, where the kind needs one")
    p.set_defaults(func=cmd_import)


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    module_name = KINDS[args.kind]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise CapabilityMissing(f"`import {args.kind}` is not built yet") from None
    records = module.import_file(Path(args.path), args.model, args)
    run = RunDir(Path(args.out))
    for record in records:
        print(f"{record.label} / {record.suite}: {record.status} -> {run.write(record)}")
    return 0
