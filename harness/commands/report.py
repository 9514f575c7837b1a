"""`sppo-bench report`, `sppo-bench reference import`, `sppo-bench check` (issue #2)."""

from __future__ import annotations

import argparse

from harness.errors import CapabilityMissing
from harness.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="render a markdown model card (and plots) from result records")
    p.set_defaults(func=_missing)
    p = sub.add_parser("reference", help="published reference scores")
    p.set_defaults(func=_missing)
    p = sub.add_parser("check", help="regression check against reference scores")
    p.set_defaults(func=_missing)


def _missing(args: argparse.Namespace, settings: Settings) -> int:
    raise CapabilityMissing(f"`{args.command}` is not built yet (issue #2)")
