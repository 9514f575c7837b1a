"""`sppo-bench train` and `sppo-bench train-and-eval` (issue #6).

`train --iters N`: base + N SPPO iterations (harness.sppo.pipeline), resumable. `train-and-eval --iters N`: the same,
then every configured suite on the base and every iteration checkpoint (the executor matrix `sppo-bench eval` uses),
then the model card + plots and, when the config names a reference, the regression check.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness import cards, check
from harness.backends.base import BackendOptions
from harness.catalog import get_suite
from harness.commands.options import add_executor_options, scale_out
from harness.engines import runner_for
from harness.engines.context import ModelRef, RunOptions
from harness.errors import UserError
from harness.evaluation import ScaleOut, evaluate, outcome_line
from harness.executors import Outcome
from harness.identity import fingerprint
from harness.io import slug
from harness.judges import resolve_choice
from harness.reporting import write_report
from harness.results import load_records
from harness.runlock import run_lock
from harness.settings import Settings
from harness.sppo import objective
from harness.sppo.config import SPPOConfig, load_config, load_profile
from harness.sppo.pipeline import TrainRun, run_training
from harness.store import RunDir, write_items


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
            add_executor_options(p)
            p.add_argument("--calibration-pairs", type=int, metavar="N",
                           help="published AlpacaEval pairs (each asked in both orders) the local judge is calibrated "
                                "on, once per judge fingerprint, cached under the data home (default 100, "
                                "harness.calibration.main_job.DEFAULT_PAIRS; 0 = do not calibrate)")
        p.set_defaults(func=cmd_train_and_eval if name == "train-and-eval" else cmd_train)


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    cfg, out = _setup(args)
    start = time.perf_counter()
    with run_lock(out):
        run = run_training(cfg, out, args.iters, settings, progress=not args.no_progress)
    _print_training(run, time.perf_counter() - start)
    if run.stopped:
        raise UserError(run.stopped)
    return 0


def cmd_train_and_eval(args: argparse.Namespace, settings: Settings) -> int:
    cfg, out = _setup(args)
    scale = scale_out(args)
    with run_lock(out, wait=args.wait):
        start = time.perf_counter()
        run = run_training(cfg, out, args.iters, settings, progress=not args.no_progress)
        train_seconds = time.perf_counter() - start
        models = [ModelRef(checkpoint=run.base, label=run.base_label, iteration=0)] + [
            ModelRef(checkpoint=str(it.checkpoint), label=f"{cfg.name} Iter {it.iteration}", iteration=it.iteration)
            for it in run.iterations
        ]
        evaluation = evaluate_checkpoints(cfg, models, out / "eval", settings, scale, progress=not args.no_progress)
        measure_objective(cfg, run, RunDir(out / "eval"), settings, evaluation)
        calibrate_local_judges(evaluation, settings, args.calibration_pairs)
        report = render_report(cfg, out, evaluation, settings)
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
class TrainReport:
    card: Path | None = None
    site: Path | None = None
    """The run viewer's index.html (sppo-bench view), written next to the card."""
    plots: list[Path] = field(default_factory=list)
    check: str | None = None
    check_failed: bool = False
    notes: list[str] = field(default_factory=list)


def evaluate_checkpoints(cfg: SPPOConfig, models: list[ModelRef], run_dir: Path, settings: Settings,
                         scale: ScaleOut = ScaleOut(), progress: bool = True) -> Evaluation:
    """Every configured suite on every checkpoint, through the function `sppo-bench eval` runs; a suite whose engine
    or data is unavailable here is skipped and named."""
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
        backend = BackendOptions(backend=cfg.eval.backend, batch_size=cfg.eval.batch_size,
                                 chat_template=cfg.model.chat_template)
        options = RunOptions(limit=cfg.eval.limit, suite_limits=tuple(sorted(cfg.eval.limits.items())), seed=cfg.eval.seed, judge=cfg.eval.judge or resolve_choice(),
                             max_new_tokens=cfg.eval.max_new_tokens, note=cfg.note)
        run = RunDir(run_dir)

        def report(o: Outcome) -> None:
            line = outcome_line(o, run)
            if line:
                print(line, flush=True)

        outcomes = evaluate(models, ev.ran, run_dir, settings, backend=backend, options=options, scale=scale,
                            progress=progress, on_outcome=report)
        for o in outcomes:
            ev.outcomes[o.unit.name] = o.status
    ev.seconds = time.perf_counter() - start
    return ev


def measure_objective(cfg: SPPOConfig, run: TrainRun, store: RunDir, settings: Settings, ev: Evaluation) -> None:
    """The SPPO objective (harness.sppo.objective) for every iteration, written as records + items next to the suites'
    (suite `sppo_objective`); an iteration whose record has the same inputs is not measured again."""
    start = time.perf_counter()
    todo = []
    for it in run.iterations:
        label = f"{cfg.name} Iter {it.iteration}"
        key = _objective_key(cfg, run.base, str(it.checkpoint), settings)
        done = store.find(label, None, objective.SUITE)
        if done is not None and done.run_key == key:
            ev.outcomes[f"{label}/{objective.SUITE}"] = "skipped"
        else:
            todo.append((it.iteration, str(it.checkpoint), key))
    if todo:
        results = objective.evaluate_objective(cfg, run.base, [(t, c) for t, c, _ in todo], settings,
                                               log=lambda line: print(line, flush=True))
        for (_, _, key), (record, rows) in zip(todo, results, strict=True):
            write_items(store.items_path(record.model, None, record.suite), rows)
            store.write(record.model_copy(update={"run_key": key}))
            ev.outcomes[f"{record.model}/{objective.SUITE}"] = "done"
    ev.seconds += time.perf_counter() - start


def calibrate_local_judges(ev: Evaluation, settings: Settings, pairs: int | None) -> None:
    """The local AlpacaEval judge of the evaluation records, calibrated against the published official verdicts once
    per judge fingerprint (harness.calibration.main_job), so that the card cites it next to every local-judge number."""
    from harness.calibration.main_job import DEFAULT_PAIRS, ensure_calibrated

    pairs = DEFAULT_PAIRS if pairs is None else pairs
    if pairs <= 0 or not (ev.run_dir / "records").is_dir():
        return

    start = time.perf_counter()
    ensure_calibrated(settings, RunDir(ev.run_dir).records(), pairs, log=lambda line: print(line, flush=True))
    ev.seconds += time.perf_counter() - start


def _objective_key(cfg: SPPOConfig, base: str, checkpoint: str, settings: Settings) -> str:
    # objective-v2: the local judge's two orders combined by the mean log-odds (v1 summed them)
    parts = [cfg.digest("objective", "ranker", "model", "sampling"), "objective-v2",
             fingerprint(base, cfg.model.chat_template, settings.fingerprint_db),
             fingerprint(checkpoint, cache_db=settings.fingerprint_db)]
    return hashlib.sha256("/".join(parts).encode()).hexdigest()


def suite_unavailable(name: str, settings: Settings) -> str | None:
    """Why a suite cannot run here (it is an average, its data is unreachable), or None."""
    try:
        runner_for(get_suite(name))
    except UserError as exc:  # unknown name or an average
        return str(exc)
    from harness.data import ensure

    try:
        ensure(settings, name)  # the main job pulls what it can (offline packages, mirrors, the hub when reachable)
    except UserError as exc:
        return str(exc)
    return None


def render_report(cfg: SPPOConfig, out: Path, ev: Evaluation, settings: Settings) -> TrainReport:
    """The model card + plots from the evaluation records (the function `sppo-bench report` runs), and the regression
    check when the config names a reference."""
    report = TrainReport()
    records = RunDir(ev.run_dir).records() if (ev.run_dir / "records").is_dir() else []
    if not records:
        report.notes.append("report: no evaluation records, so no card")
        return report
    preface = ([f"**{cfg.note}**"] if cfg.note else []) + [f"Not run: `{s}` ({why})" for s, why in ev.not_run.items()]
    written = write_report(cards.with_averages(records), out / "report" / f"{slug(cfg.name)}.md", source=str(ev.run_dir),
                           preface=preface, run=RunDir(ev.run_dir), settings=settings)
    report.card, report.plots = written.card, written.plots
    from harness.viewer import build_site

    report.site = build_site([out], out / "report" / "site")
    if cfg.eval.reference:
        comparisons = check.compare(load_records(Path(cfg.eval.reference)), records, results_run=RunDir(ev.run_dir))
        report.check = check.markdown(comparisons)
        report.check_failed = check.exit_code(comparisons) != 0
    return report


def _setup(args: argparse.Namespace) -> tuple[SPPOConfig, Path]:
    if args.iters < 1:
        raise UserError(f"--iters {args.iters}: give a positive number of SPPO iterations (e.g. --iters 3)")
    if (getattr(args, "calibration_pairs", None) or 0) < 0:
        raise UserError(f"--calibration-pairs {args.calibration_pairs}: give 0 (no calibration) or a positive number")
    cfg = load_config(args.config) if args.config else load_profile(args.profile)
    if args.command == "train-and-eval":
        for name in [*cfg.eval.suites, *cfg.eval.limits]:
            get_suite(name)  # a typo fails now, not after hours of training
    out = args.out or Path("runs") / slug(cfg.name)
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


def _print_evaluation(ev: Evaluation, report: TrainReport) -> None:
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
    if report.site:
        print(f"Viewer: {report.site} (open it in a browser; no server needed)")
    for note in report.notes:
        print(f"  {note}")
    if report.check is not None:
        print(f"Regression check: {'FAILED' if report.check_failed else 'passed'}")

