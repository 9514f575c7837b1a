"""`sppo-bench train` and `sppo-bench train-and-eval` (issue #6)."""

from __future__ import annotations

import argparse

from harness.errors import CapabilityMissing
from harness.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    for name, help_ in (("train-and-eval", "train SPPO iterations, evaluate every checkpoint, render the card"),
                        ("train", "train SPPO iterations only")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--iters", type=int, default=3)
        p.set_defaults(func=_missing)


def _missing(args: argparse.Namespace, settings: Settings) -> int:
    raise CapabilityMissing(f"`{args.command}` is not built yet (issue #6)")
