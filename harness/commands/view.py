"""`sppo-bench view RUN [RUN ...] --out SITE/`: the static run viewer (harness.viewer)."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("view", help="write a static site to read a run's answers and judgments side by side")
    p.add_argument("sources", nargs="+", type=Path,
                   help="run directories (eval or import --out) and/or train-and-eval folders")
    p.add_argument("--out", type=Path, required=True, help="folder for the site; open OUT/index.html in a browser")
    p.set_defaults(func=cmd_view)


def cmd_view(args: argparse.Namespace, settings: Settings) -> int:
    from harness.reporting import refuse_inside_sources
    from harness.viewer import build_site

    refuse_inside_sources([args.out], list(args.sources))
    index = build_site(args.sources, args.out)
    print(f"wrote {index}")
    return 0
