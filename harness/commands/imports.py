"""`sppo-bench import lm-eval|alpaca-eval|arena-hard|mt-bench FILE --model NAME --out RUN_DIR`: published raw results
into records (and per-item rows), scored as upstream scores them. The judged kinds are the judged suites' own
importers (benchmarks/<suite>); lm-eval results go through the lm-eval engine's record builder."""

from __future__ import annotations

import argparse
from pathlib import Path

from pydantic import ValidationError

from harness.catalog import get_suite, suites
from harness.commands.options import label_arg
from harness.engines.judged import JUDGED_SUITES, ImportRequest
from harness.errors import UserError
from harness.io import refuse_links
from harness.records import ItemRow, ResultRecord
from harness.runlock import run_lock
from harness.settings import Settings
from harness.store import RunDir, checked_json, write_items

LM_EVAL = "lm-eval"


def kinds() -> list[str]:
    suites()  # registers the judged suites
    return sorted([LM_EVAL, *(getattr(s, "import_kind", s.name) for s in JUDGED_SUITES)])


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="turn published results (lm-eval, alpaca_eval, arena-hard, FastChat) into records")
    p.add_argument("kind", choices=kinds(), help="what kind of file it is")
    p.add_argument("path", type=Path, help="the results / annotations / judgments file")
    p.add_argument("--model", required=True, help="the model's row label in records and cards")
    p.add_argument("--out", required=True, type=Path, help="run directory to write the records into")
    p.add_argument("--iteration", type=int, help="SPPO iteration this model is (for cards and checks)")
    p.add_argument("--variant", help="decoding variant shown as its own row, e.g. best-of-16")
    p.add_argument("--baseline", help="baseline model name, where the kind needs one")
    p.add_argument("--wait", action="store_true", help="wait for another process using the same run folder to finish")
    p.set_defaults(func=cmd_import)


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    """Everything is read, scored and validated first; then, holding the run lock as `eval` does, written."""
    model = label_arg(args.model, "--model")
    variant = None if args.variant is None else label_arg(args.variant, "--variant")
    try:
        imported = import_results(args.kind, args.path, model, settings, iteration=args.iteration,
                                  variant=variant, baseline=args.baseline)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "value"
        raise UserError(f"{args.path}: {where}: {err['msg'].removeprefix('Value error, ')}; fix the file or import "
                        "the one upstream wrote") from None
    run = RunDir(args.out)
    for record, _ in imported:
        if record.status == "failed":
            raise UserError(f"{args.path}: {record.error}; nothing imported (is this the file upstream wrote?)")
        checked_json(record, run.record_path(record.model, record.variant, record.suite))
        refuse_links(run.root, run.record_path(record.model, record.variant, record.suite))
        run.items_path(record.model, record.variant, record.suite)  # refuses a symbolic link on the way
    with run_lock(run.root, wait=args.wait):
        for record, items in imported:
            if items is not None:
                write_items(run.items_path(record.model, record.variant, record.suite), items)
            print(f"{record.label} / {record.suite}: {record.status} -> {run.write(record)}")
    return 0


def import_results(kind: str, path: Path, model: str, settings: Settings, iteration: int | None = None,
                   variant: str | None = None, baseline: str | None = None
                   ) -> list[tuple[ResultRecord, list[ItemRow] | None]]:
    """Records (and per-item rows where the file has them) of one published results file."""
    if kind == LM_EVAL:
        from harness.engines.lmeval.items import imported_items
        from harness.engines.lmeval.results import import_file, leaves_of

        out: list[tuple[ResultRecord, list[ItemRow] | None]] = []
        for record in import_file(path, model, list(suites()), iteration=iteration, variant=variant):
            spec = get_suite(record.suite)
            task = spec.lm_eval_task or spec.name
            rule = spec.leaderboard.filter if spec.leaderboard else "none"
            out.append((record, imported_items(path, task, rule, leaves_of(path, task))))
        return out
    suite = next(s for s in JUDGED_SUITES if getattr(s, "import_kind", s.name) == kind)
    request = ImportRequest(path=path, model=model, variant=variant, iteration=iteration, baseline=baseline,
                            data_dir=settings.data_dir)
    record, items = suite.import_file(request)
    return [(record, items)]
