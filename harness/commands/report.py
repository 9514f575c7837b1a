"""`sppo-bench report`, `sppo-bench reference import`, `sppo-bench check` (issues #2, #12).

Each command reads and renders everything in memory first, checks its output paths, then writes (atomically), so
bad input leaves nothing behind.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from harness import cards, check, evalresults
from harness.commands.options import finite, label_arg
from harness.errors import UserError
from harness.io import atomic_write_text, read_text, slug
from harness.records import ReferenceSet
from harness.reporting import check_output, plots_dir, refuse_inside_sources, write_report
from harness.results import load_records, run_dir
from harness.settings import Settings
from harness.store import load_reference, write_reference


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="render a markdown model card (and plots) from result records")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", type=Path, help="run directory written by `sppo-bench eval` (or a train-and-eval folder)")
    src.add_argument("--reference", type=Path, help="reference JSON (from `reference import`) or a model card")
    p.add_argument("--out", type=Path, required=True, help="card to write, e.g. reports/MyModel.md")
    p.add_argument("--model", help="the model the card is about (its model-index name); default: latest iteration")
    p.add_argument("--plots", action=argparse.BooleanOptionalAction, default=True,
                   help="write one PNG per suite beside the card (OUT-stem-plots/) and link them")
    p.add_argument("--eval-results", nargs="?", choices=("official", "all"), const="official", default="official",
                   help="write the card's model's scores as Hub .eval_results/<suite>.yaml beside the card: complete "
                        "records with the official judge or lm-eval's full set (official, the default), or every "
                        "record with its caveat in the notes (all)")
    p.add_argument("--no-eval-results", dest="eval_results", action="store_const", const=None,
                   help="write no .eval_results files")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("reference", help="published reference scores")
    rsub = p.add_subparsers(dest="reference_command", metavar="ACTION", required=True, parser_class=type(p))
    imp = rsub.add_parser("import", help="parse a published model card (or Hub .eval_results) into a reference JSON")
    imp.add_argument("card", type=Path, nargs="+", help="model card (.md) with model-index front matter and/or "
                     "results tables; or a .eval_results/ folder, the folder holding one, or its .yaml files")
    imp.add_argument("--model", help=".eval_results only: the model they are about (default: README.md's model-index)")
    imp.add_argument("--out", type=Path, help="reference JSON to write (default: results/reference/<card name>.json)")
    imp.set_defaults(func=cmd_reference_import)

    p = sub.add_parser("check", help="regression check against reference scores")
    p.add_argument("--reference", type=Path, required=True, help="reference JSON, model card, or run directory")
    p.add_argument("--results", type=Path, required=True, help="run directory, reference JSON, or model card")
    p.add_argument("--abs-tol", type=float, default=0.5, help="always-allowed drop, on the card's scale (default 0.5)")
    p.add_argument("--sigma", type=float, default=2.0, help="allowed drop in standard errors (default 2)")
    p.add_argument("--two-sided", action="store_true", help="also fail on improvements beyond the tolerance")
    p.add_argument("--match", choices=("label", "iteration"), default="label",
                   help="pair records by model label (default) or by iteration number")
    p.add_argument("--allow-missing", action="append", default=[], metavar="SUITE[:METRIC]",
                   help="accept a headline metric the reference has and the results lack (default: it fails); "
                        "repeatable")
    p.add_argument("--allow-partial", action="store_true",
                   help="compare partial (--limit) result records with a complete reference instead of failing")
    p.add_argument("--allow-judge-mismatch", action="store_true",
                   help="compare judged suites whose reference and result had different judges (default: not "
                        "comparable, which fails); the table names the difference in a judges column")
    p.add_argument("--junit", type=Path, help="also write a JUnit XML report here")
    p.set_defaults(func=cmd_check)


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    if args.model is not None:
        label_arg(args.model, "--model")
    source_path = args.run if args.run is not None else args.reference
    refuse_inside_sources([args.out, plots_dir(args.out), args.out.parent / evalresults.FOLDER],
                          [source_path])
    run = None
    if args.run is not None:
        records = cards.with_averages(load_records(args.run))
        source, card_model, run = str(args.run), None, run_dir(args.run)
    else:
        ref = _load_reference(args.reference)
        records, source, card_model = ref.records, str(args.reference), ref.card_model
    report = write_report(records, args.out, source=source, subject=args.model or card_model, plots=args.plots,
                          eval_results=args.eval_results, run=run, settings=settings)
    print(f"wrote {args.out} ({report.records} records"
          + (f", {len(report.plots)} plots in {report.plots[0].parent}" if report.plots else "")
          + (f", {len(report.eval_results)} .eval_results files for {report.hub_model}" if report.eval_results else "")
          + ")")
    return 0


def cmd_reference_import(args: argparse.Namespace, settings: Settings) -> int:
    from harness.cardparse import parse_card

    first = args.card[0]
    if args.out is not None:
        refuse_inside_sources([args.out], list(args.card))
    if len(args.card) == 1 and first.suffix.lower() in {".md", ".markdown"}:
        ref = parse_card(read_text(first, "model card"), source=str(first))
    else:
        ref = evalresults.import_paths(args.card, args.model)
    stem = first.stem if first.suffix.lower() in {".md", ".markdown"} else slug(ref.name)
    out = args.out or Path("results") / "reference" / f"{stem}.json"
    check_output(out)
    refuse_inside_sources([out], list(args.card))
    write_reference(out, ref)
    n_metrics = sum(len(r.metrics) for r in ref.records)
    models = sorted({r.label for r in ref.records})
    print(f"wrote {out}: {len(ref.records)} records, {n_metrics} metrics, {len(models)} rows ({'; '.join(models)})")
    return 0


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    finite(args.abs_tol, "--abs-tol")
    finite(args.sigma, "--sigma")
    if args.junit is not None:
        refuse_inside_sources([args.junit], [args.reference, args.results])
    reference = load_records(args.reference)
    results = load_records(args.results)
    comparisons = check.compare(reference, results, abs_tol=args.abs_tol, sigma=args.sigma,
                                two_sided=args.two_sided, match=args.match, allow_missing=args.allow_missing,
                                allow_partial=args.allow_partial,
                                allow_judge_mismatch=args.allow_judge_mismatch, reference_run=run_dir(args.reference),
                                results_run=run_dir(args.results))
    if args.junit is not None:
        check_output(args.junit)
        atomic_write_text(args.junit, check.junit_xml(comparisons))
    print(check.markdown(comparisons), end="")
    return check.exit_code(comparisons)


def _load_reference(path: Path) -> ReferenceSet:
    if path.suffix.lower() in {".md", ".markdown"}:
        from harness.cardparse import parse_card

        return parse_card(read_text(path, "model card"), source=str(path))
    if path.is_dir():
        raise UserError(f"{path} is a folder; for a run directory use --run")
    return load_reference(path)
