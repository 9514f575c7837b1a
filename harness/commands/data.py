"""`sppo-bench data pull` and `sppo-bench models prepare` (issue #3)."""

from __future__ import annotations

import argparse

from harness.errors import CapabilityMissing
from harness.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    for name, help_ in (("data", "materialise suite data for offline use"), ("models", "prepare the embedded default model")):
        p = sub.add_parser(name, help=help_)
        p.set_defaults(func=_missing)


def _missing(args: argparse.Namespace, settings: Settings) -> int:
    raise CapabilityMissing(f"`{args.command}` is not built yet (issue #3)")
