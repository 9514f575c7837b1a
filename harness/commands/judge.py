"""`sppo-bench judge calibrate`: check a judge against the official judge's published verdicts before trusting it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from harness.commands.options import add_judge_choice, judge_backend, judge_calls, positive
from harness.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("judge", help="check a judge against the official judge's published verdicts")
    jsub = p.add_subparsers(dest="judge_command", metavar="ACTION", required=True, parser_class=type(p))
    cal = jsub.add_parser("calibrate", help="run a judge on published pairs that carry the official verdicts: agreement, "
                          "Cohen's kappa, majority baseline, win-rate bias with a paired 95%% CI, position consistency; "
                          "stored so that every record of this judge cites it")
    cal.add_argument("--suite", default="alpaca_eval", help="the judged suite (alpaca_eval: the only one with "
                     "published official verdicts)")
    cal.add_argument("--limit", type=int, help="the first N pairs of each reference file (files sorted by model name)")
    cal.add_argument("--reference-judgments", type=Path, action="append", metavar="FILE",
                     help="an alpaca_eval annotations.json to calibrate on instead of the pulled ones (repeatable)")
    cal.add_argument("--format", choices=("markdown", "json"), default="markdown")
    g = cal.add_argument_group("judge")
    add_judge_choice(g)
    g.add_argument("--device", default="auto", help="local judge: cpu, cuda, or auto")
    g.add_argument("--dtype", default="auto", help="local judge: auto, float32, bfloat16, float16")
    g.add_argument("--batch-size", type=int, default=8, help="local judge batch size")
    g.add_argument("--no-cache", action="store_true", help="bypass the generation cache (judgments stay cached)")
    cal.set_defaults(func=cmd_calibrate)


def cmd_calibrate(args: argparse.Namespace, settings: Settings) -> int:
    from harness import calibration as cal
    from harness.judges import resolve_choice

    cal.check_suite(args.suite)
    positive(args.batch_size, "--batch-size")
    if args.limit is not None:
        positive(args.limit, "--limit")
    backend = judge_backend(args)
    choice = args.judge or resolve_choice(backend.api_key_env if backend else "OPENAI_API_KEY")
    reference = (cal.reference_files(args.reference_judgments, args.limit) if args.reference_judgments
                 else cal.published_reference(settings, args.limit))
    timeout, retries = judge_calls(args)
    result = cal.store(settings, cal.calibrate(settings, reference, choice, backend, suite=args.suite,
                                               batch_size=args.batch_size, judge_timeout=timeout,
                                               judge_max_retries=retries))
    print(json.dumps(cal.to_json(result), indent=2, ensure_ascii=False) if args.format == "json" else cal.markdown(result),
          end="\n" if args.format == "json" else "")
    return 0
