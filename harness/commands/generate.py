"""`sppo-bench generate --prompts FILE.jsonl --out FILE.jsonl` (issue #3)."""

from __future__ import annotations

import argparse

from harness.errors import CapabilityMissing
from harness.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="generate completions for a prompt file")
    p.set_defaults(func=_missing)


def _missing(args: argparse.Namespace, settings: Settings) -> int:
    raise CapabilityMissing("`generate` is not built yet (issue #3)")
