"""The `sppo-bench` command line. Each command group lives in harness/commands/; this file wires them up.

Bad input raises `UserError`: printed as one line, exit status 2, no traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from harness import __version__
from harness.errors import UserError
from harness.settings import from_env


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse prints usage + error over two lines; we keep to the one-line contract.
        raise UserError(f"{message} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    from harness.commands import COMMAND_MODULES

    parser = _Parser(prog="sppo-bench", description="Train SPPO iterations, evaluate every checkpoint on the standard "
                     "suites, render model cards, and fail CI when a score drops below a reported one.")
    parser.add_argument("--version", action="version", version=f"sppo-bench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def quiet_libraries() -> None:
    """The libraries' own progress bars and advisory warnings stay out of a run's output: sppo-bench reports units,
    steps and the notes that matter (truncation, caps) itself. Read once here, before any of them is imported."""
    import logging
    import os

    for name in ("HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS"):
        os.environ.setdefault(name, "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    logging.getLogger("lm_eval").setLevel(logging.ERROR)


def main(argv: Sequence[str] | None = None) -> int:
    quiet_libraries()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        settings = from_env()
        return int(args.func(args, settings) or 0)
    except UserError as exc:
        print(f"sppo-bench: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # a read-only --out, a full disk: what failed and where, in one line
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"sppo-bench: error: {where}{exc.strerror or exc}; check that the path is writable and the disk has "
              "space (finished work is kept; rerun to resume)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sppo-bench: interrupted; finished work is saved, rerun the same command to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def run() -> None:
    sys.exit(main())
