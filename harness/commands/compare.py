"""`sppo-bench compare RUN_OR_CARD_A RUN_B`: B - A for every (suite, metric) both carry, with a 95% CI, a paired
p-value over the items both scored and Holm-adjusted p-values (harness.compare), as markdown, csv or json.

Exit status: 0; 1 when a row is "not comparable" (its two sides were judged by different judges) and
`--allow-judge-mismatch` was not given (that option tests such rows and marks them in a `judges` column); 2 on bad
input."""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from dataclasses import asdict
from pathlib import Path

from harness.catalog import get_suite
from harness.compare import NOT_COMPARABLE, Row, Side, compare, unshared_suites
from harness.errors import UserError
from harness.settings import Settings
from harness.sides import load_side
from harness.stats import DEFAULT_RESAMPLES

CSV_COLUMNS = ("suite", "metric", "a", "b", "delta", "ci_low", "ci_high", "p_value", "p_holm", "n_paired", "method",
               "note", "judges")
MIN_RESAMPLES = 100


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="B - A per suite and metric with a 95%% CI and a paired p-value")
    p.add_argument("a", type=Path, metavar="RUN_OR_CARD_A",
                   help="run directory, train-and-eval folder, reference JSON or model card (.md)")
    p.add_argument("b", type=Path, metavar="RUN_B", help="the same kinds of source as A")
    p.add_argument("--format", choices=("markdown", "csv", "json"), default="markdown")
    p.add_argument("--resamples", type=int, default=DEFAULT_RESAMPLES,
                   help=f"bootstrap resamples (default {DEFAULT_RESAMPLES})")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--model-a", help="the model of A to compare, when A holds several (its row label)")
    p.add_argument("--model-b", help="the model of B to compare, when B holds several (its row label)")
    p.add_argument("--allow-judge-mismatch", action="store_true",
                   help="test judged suites whose two sides had different judges (default: not comparable, exit 1); "
                        "the rows say so in a judges column")
    p.set_defaults(func=cmd_compare)


def cmd_compare(args: argparse.Namespace, settings: Settings) -> int:
    if args.resamples < MIN_RESAMPLES:
        raise UserError(f"--resamples {args.resamples}: use at least {MIN_RESAMPLES} (default {DEFAULT_RESAMPLES})")
    a = load_side(args.a, args.model_a, "--model-a")
    b = load_side(args.b, args.model_b, "--model-b")
    rows = compare(a, b, resamples=args.resamples, seed=args.seed, allow_judge_mismatch=args.allow_judge_mismatch)
    if not rows:
        raise UserError(f"A ({a.label}) and B ({b.label}) share no suite with results (A: "
                        f"{', '.join(sorted(a.records)) or 'none'}; B: {', '.join(sorted(b.records)) or 'none'}); "
                        "compare runs of the same suites")
    render = {"markdown": markdown, "csv": to_csv, "json": to_json}[args.format]
    sys.stdout.write(render(rows, a, b, args.resamples, args.seed))
    return 1 if any(r.method == NOT_COMPARABLE for r in rows) else 0


def markdown(rows: list[Row], a: Side, b: Side, resamples: int, seed: int) -> str:
    lines = [f"A: {a.label} ({a.source})", f"B: {b.label} ({b.source})", "",
             "| suite | metric | A | B | Δ (B − A) | 95% CI | p | p (Holm) | n | method |"
             + (" judges |" if any(r.judges for r in rows) else ""),
             "|---|---|---:|---:|---:|---|---:|---:|---:|---|" + ("---|" if any(r.judges for r in rows) else "")]
    notes = []
    for r in rows:
        d = get_suite(r.suite).metric(r.metric).decimals if r.metric in _keys(r.suite) else 2
        ci = "—" if r.ci_low is None or r.ci_high is None else f"[{r.ci_low:+.{d}f}, {r.ci_high:+.{d}f}]"
        cells = [r.suite, r.metric, f"{r.a:.{d}f}", f"{r.b:.{d}f}", f"{r.delta:+.{d}f}", ci, _p(r.p_value),
                 _p(r.p_holm), "—" if r.n_paired is None else str(r.n_paired), r.method]
        if any(x.judges for x in rows):
            cells.append(f"**{r.judges}**" if r.judges else "—")
        lines.append("| " + " | ".join(cells) + " |")
        if r.note:
            notes.append(f"- {r.suite} / {r.metric}: {r.note}")
    tested = sum(r.p_value is not None for r in rows)
    lines += ["", f"Bootstrap: {resamples} resamples, seed {seed}. p (Holm): adjusted across the {tested} rows with a "
              "test. n: items both sides scored (MT-Bench: questions, both turns resampled together)."]
    only_a, only_b = unshared_suites(a, b)
    if only_a or only_b:
        lines.append(f"Not compared (on one side only): A {', '.join(only_a) or '—'}; B {', '.join(only_b) or '—'}.")
    if notes:
        lines += ["", "Notes:", *notes]
    return "\n".join(lines) + "\n"


def to_csv(rows: list[Row], a: Side, b: Side, resamples: int, seed: int) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        record = asdict(r)
        writer.writerow(["" if record[c] is None else record[c] for c in CSV_COLUMNS])
    return out.getvalue()


def to_json(rows: list[Row], a: Side, b: Side, resamples: int, seed: int) -> str:
    only_a, only_b = unshared_suites(a, b)
    doc = {"a": {"label": a.label, "source": a.source}, "b": {"label": b.label, "source": b.source},
           "resamples": resamples, "seed": seed, "rows": [_finite(asdict(r)) for r in rows],
           "only_in_a": only_a, "only_in_b": only_b}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _finite(row: dict) -> dict:
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()}


def _keys(suite: str) -> set[str]:
    return {m.key for m in get_suite(suite).metrics}


def _p(p: float | None) -> str:
    if p is None:
        return "—"
    return "<0.0001" if p < 1e-4 else f"{p:.4f}"
