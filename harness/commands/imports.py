"""`sppo-bench import lm-eval|alpaca-eval|arena-hard|mt-bench`: published raw outputs into typed records."""

from __future__ import annotations

import argparse

from harness.errors import CapabilityMissing
from harness.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="turn published results (lm-eval, alpaca_eval, arena-hard, FastChat) into records")
    p.set_defaults(func=_missing)


def _missing(args: argparse.Namespace, settings: Settings) -> int:
    raise CapabilityMissing("`import` is not built yet (issues #4 and #5)")
