"""Judge calibration: how a judge's verdicts agree with the official judge's on published pairs.

`sppo-bench judge calibrate --suite alpaca_eval` asks a judge (the official spec over any OpenAI-compatible endpoint, the
local choice judge on the embedded model, or any registered judge id) about AlpacaEval 2 pairs whose official verdicts
are published: alpaca_eval's `results/<model>/weighted_alpaca_eval_gpt4_turbo/annotations.json` (output_1 = the
gpt4_1106_preview baseline, output_2 = the model's, `preference` in [1, 2], > 1.5 = the model's output preferred),
pulled by `sppo-bench data pull --suites judge_calibration`. The judge is opened exactly as the judged engine opens it
(`open_judge`: the same backend choice, fingerprint and judge cache) and asked through the suite's own `annotate`, so
what is calibrated is what evaluates.

Reported (DESIGN.md, Statistics): agreement of the binarized verdicts, Cohen's kappa, the majority-class baseline, the
win-rate bias (judge - official, in points; win rate = alpaca_eval's mean(preference - 1) x 100) with a paired bootstrap
95% CI over pairs, and position consistency: the judge asked again with each pair's outputs in the other order (the same
prompt builder), the fraction of pairs whose binarized verdict stays the same.

The result is stored per judge (id, prompt hash, backend fingerprint) under the cache home, and every later record of
that judge carries it (`JudgeInfo.calibration`). Kappa is undefined when both judges give one and the same verdict on
every pair: such a calibration is reported (kappa null) but not stored, since it cannot tell whether the judge
discriminates at all.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.alpaca_eval import judging
from harness.backends.base import BackendOptions
from harness.engines.context import Injected, ModelRef, RunContext, RunOptions
from harness.engines.judge_backend import JudgeRun, UnitModels, calibration_path, open_judge
from harness.errors import UserError
from harness.io import atomic_write_text, read_text
from harness.records import CalibrationSummary, JudgeInfo, now
from harness.settings import Settings
from harness.stats import ItemTable, agreement, paired_bootstrap
from harness.store import RunDir

SUITES_WITH_REFERENCE = ("alpaca_eval",)
"""Suites with published official verdicts to calibrate against."""
THRESHOLD = 1.5
"""A preference above this is a verdict for the model's output (alpaca_eval's binarization; 1.5 is a draw)."""
RESAMPLES = 10_000


@dataclass(frozen=True)
class Pair:
    """One published judgment: the baseline's and a model's output for an instruction, and the official preference."""

    instruction: str
    baseline_output: str
    output: str
    generator: str
    baseline: str
    dataset: str | None
    official: float | None
    """alpaca_eval preference in [1, 2]; None where the published verdict is missing or out of range."""


@dataclass(frozen=True)
class Reference:
    pairs: tuple[Pair, ...]
    description: str
    """The files (and how many of their rows) the pairs come from: CalibrationSummary.reference."""


@dataclass(frozen=True)
class Verdict:
    pair: Pair
    judge: float | None
    """The judge's preference on the pair as published (output_1 = baseline); None when unreadable."""
    swapped: float | None
    """The judge's preference with the two outputs shown in the other order, on the same scale (> 1.5 = model)."""


@dataclass(frozen=True)
class Calibration:
    suite: str
    judge: JudgeInfo
    summary: CalibrationSummary
    verdicts: tuple[Verdict, ...]
    judge_win_rate: float
    official_win_rate: float
    left_out: int = 0
    """Reference pairs without a usable official verdict (not judged)."""
    stored: Path | None = None
    not_stored: str | None = None
    """Why the calibration was not stored (kappa undefined), when it was not."""


# --- reference pairs -------------------------------------------------------------------------------------------------


def published_reference(settings: Settings, limit: int | None = None) -> Reference:
    """The pulled published annotations, files sorted by model name, the first `limit` rows of each in file order."""
    from harness.data import load_manifest, require
    from harness.data.sources import ALPACA_EVAL

    folder = require(settings, "judge_calibration", part="alpaca_eval")
    manifest = load_manifest(folder)
    names = [n for p in (manifest.parts if manifest else []) if p.name == "alpaca_eval" for n in p.files]
    files = sorted((folder / n for n in names), key=lambda p: p.parent.parent.name)  # results/<model>/<annotator>/
    pairs, labels = _read_files(files, limit, label=lambda p: f"{p.parent.parent.name}/{p.parent.name}/{p.name}")
    repo, _, commit = ALPACA_EVAL.partition("@")
    return Reference(tuple(pairs), f"{', '.join(labels)} ({repo}@{commit[:8]})")


def reference_files(paths: Sequence[Path], limit: int | None = None) -> Reference:
    """Other alpaca_eval annotations.json files (`--reference-judgments`), in the order given."""
    pairs, labels = _read_files(list(paths), limit, label=str)
    return Reference(tuple(pairs), ", ".join(labels))


def _read_files(files: Sequence[Path], limit: int | None,
                label: Callable[[Path], str]) -> tuple[list[Pair], list[str]]:
    from benchmarks.alpaca_eval.suite import parse_annotations  # the importer's validated reader

    pairs: list[Pair] = []
    labels = []
    for path in files:
        rows = parse_annotations(path, read_text(path, "alpaca_eval annotations file"))[: limit or None]
        pairs += [_pair(row) for row in rows]
        labels.append(f"{label(path)}[:{len(rows)}]" if limit else label(path))
    return pairs, labels


def _pair(row: dict[str, Any]) -> Pair:
    official = row.get("preference")
    official = 1.5 if official == 0 else official  # alpaca_eval's legacy draw
    if official is None or math.isnan(official) or not 1.0 <= official <= 2.0:
        official = None
    return Pair(instruction=row["instruction"], baseline_output=row.get("output_1") or "", output=row["output_2"],
                generator=str(row["generator_2"]), baseline=str(row.get("generator_1") or "baseline"),
                dataset=row.get("dataset"), official=official)


# --- running the judge -----------------------------------------------------------------------------------------------


def calibrate(settings: Settings, reference: Reference, choice: str | None = None,
              judge_backend: BackendOptions | None = None, suite: str = "alpaca_eval", batch_size: int = 8,
              judge_timeout: float | None = None, judge_max_retries: int | None = None,
              injected: Injected = Injected(), seed: int = 0) -> Calibration:
    """Judge every reference pair twice (the suite's order, then the other order) and compare with the official
    verdicts. `choice`: "official", "local" or a judge id (None: official when its API key is set, else local)."""
    run = open_calibration_judge(settings, suite, choice, judge_backend, batch_size, injected,
                                 calls=(judge_timeout, judge_max_retries))
    pairs = [p for p in reference.pairs if p.official is not None]
    if not pairs:
        raise UserError(f"{reference.description}: no pair with an official verdict (preference in [1, 2]) to "
                        "calibrate on; pass alpaca_eval annotations.json files")
    rows = [_row(p, swap=False) for p in pairs] + [_row(p, swap=True) for p in pairs]
    annotations = judging.annotate(run.spec, rows, run.backend, run.cache, run.concurrency, run.endpoint)
    first, second = annotations[: len(pairs)], annotations[len(pairs):]
    verdicts = tuple(Verdict(p, _preference(a), _flip(_preference(b)))
                     for p, a, b in zip(pairs, first, second, strict=True))
    scored = [v for v in verdicts if v.judge is not None]
    if not scored:
        raise UserError(f"the judge {run.info.id} ({run.endpoint}) gave no readable verdict on any of the {len(pairs)} "
                        "pairs; check that the endpoint serves the judge model with logprobs, or pick another judge")
    official = np.array([v.pair.official for v in scored], dtype=float)
    judged = np.array([v.judge for v in scored], dtype=float)
    summary = summarize(official, judged, [v.swapped for v in scored], reference.description,
                        str(run.info.fingerprint), seed=seed)
    return Calibration(suite, run.info.model_copy(update={"calibration": None}), summary, verdicts,
                       judge_win_rate=win_rate(judged), official_win_rate=win_rate(official),
                       left_out=len(reference.pairs) - len(pairs))


def open_calibration_judge(settings: Settings, suite: str, choice: str | None, judge_backend: BackendOptions | None,
                           batch_size: int = 8, injected: Injected = Injected(),
                           calls: tuple[float | None, int | None] = (None, None)) -> JudgeRun:
    """The judge as a judged unit of `suite` would open it (backend, fingerprint, cache), without a generator."""
    from harness.catalog import suites
    from harness.judges import choose_judge

    suites()  # registers the judged suites and their judges
    check_suite(suite)
    spec = choose_judge(suite, choice, judge_backend.api_key_env if judge_backend else "OPENAI_API_KEY")
    # No checkpoint is evaluated here: the "unit" backend is a placeholder that open_judge never loads (it only
    # reuses an hf generator for a local judge that is the same model).
    ctx = RunContext(settings=settings, run=RunDir(settings.home / "calibration"),
                     backend=BackendOptions(backend="none", model=None, batch_size=batch_size),
                     options=RunOptions(judge=choice, judge_backend=judge_backend, judge_timeout=calls[0],
                                        judge_max_retries=calls[1]), injected=injected)
    return open_judge(spec, ctx, judging.spec_prompt_hash(spec), UnitModels(ctx, ModelRef("", "judge calibration")))


def check_suite(suite: str) -> None:
    if suite not in SUITES_WITH_REFERENCE:
        raise UserError(f"--suite {suite}: published official verdicts to calibrate against exist for "
                        f"{', '.join(SUITES_WITH_REFERENCE)} only; pass --suite alpaca_eval")


def _row(pair: Pair, swap: bool) -> dict[str, Any]:
    """An annotate row; `swap` puts the model's output first, so the judge sees the pair in the other order."""
    base = (pair.baseline_output, pair.baseline)
    model = (pair.output, pair.generator)
    (o1, g1), (o2, g2) = (model, base) if swap else (base, model)
    return {"instruction": pair.instruction, "output_1": o1, "generator_1": g1, "output_2": o2, "generator_2": g2,
            "dataset": pair.dataset}


def _preference(annotation: dict[str, Any]) -> float | None:
    value = annotation.get("preference")
    return None if value is None or math.isnan(value) else float(value)


def _flip(preference: float | None) -> float | None:
    """A preference of the swapped row (output_2 = baseline) on the model's scale again."""
    return None if preference is None else 3.0 - preference


# --- statistics ------------------------------------------------------------------------------------------------------


def summarize(official: Sequence[float] | np.ndarray, judge: Sequence[float] | np.ndarray,
              swapped: Sequence[float | None], reference: str, fingerprint: str, seed: int = 0,
              resamples: int = RESAMPLES) -> CalibrationSummary:
    """The calibration of preferences `judge` against `official` on the same pairs (both in [1, 2], > 1.5 = the model's
    output preferred); `swapped[i]`: the judge's preference on pair i with the outputs in the other order (None:
    unreadable). Kappa is NaN when undefined (both sides constant and equal)."""
    off, jud = np.asarray(official, dtype=float), np.asarray(judge, dtype=float)
    agree = agreement(jud > THRESHOLD, off > THRESHOLD)
    statistic = {"win_rate": lambda s: 100.0 * s.mean("win")}
    official_side, judge_side = (ItemTable.build({"win": (x - 1.0).tolist()}) for x in (off, jud))
    bias = paired_bootstrap(official_side, judge_side, statistic, resamples=resamples, seed=seed)["win_rate"]
    both = [(j > THRESHOLD, s > THRESHOLD) for j, s in zip(jud, swapped, strict=True) if s is not None]
    consistency = float(np.mean([a == b for a, b in both])) if both else None
    return CalibrationSummary(n=agree.n, agreement=agree.agreement, kappa=agree.kappa,
                              majority_baseline=agree.majority_baseline, bias=bias.delta, bias_ci_low=bias.ci_low,
                              bias_ci_high=bias.ci_high, position_consistency=consistency, reference=reference,
                              judge_fingerprint=fingerprint)


def win_rate(preferences: np.ndarray) -> float:
    """alpaca_eval's win rate: mean(preference - 1) x 100."""
    return float(100.0 * np.mean(preferences - 1.0))


# --- storing and showing ---------------------------------------------------------------------------------------------


def store(settings: Settings, result: Calibration) -> Calibration:
    """Write the calibration where the judged engine finds it (atomically); not when kappa is undefined."""
    if not math.isfinite(result.summary.kappa):
        return replace(result, not_stored="kappa is undefined (both judges gave one and the same verdict on every pair)"
                       "; calibrate on more pairs (a larger --limit) so that the official verdicts vary")
    info = result.judge
    path = calibration_path(settings, info.id, info.prompt_hash, str(info.fingerprint))
    content = {k: v for k, v in to_json(result).items() if k not in ("stored", "not_stored")}
    atomic_write_text(path, json.dumps({"schema_version": 1, "created": now().isoformat(), **content}, indent=2,
                                       ensure_ascii=False) + "\n")
    return replace(result, stored=path)


def to_json(result: Calibration) -> dict[str, Any]:
    """The calibration as JSON: the summary (kappa null when undefined), both win rates, the per-pair verdicts."""
    summary = result.summary.model_dump()
    summary["kappa"] = summary["kappa"] if math.isfinite(summary["kappa"]) else None
    return {
        "suite": result.suite,
        "judge": result.judge.model_dump(exclude={"calibration"}),
        "summary": summary,
        "judge_win_rate": result.judge_win_rate,
        "official_win_rate": result.official_win_rate,
        "unreadable": _unreadable(result),
        "stored": str(result.stored) if result.stored else None,
        "not_stored": result.not_stored,
        "scale": "alpaca_eval preference in [1, 2] of the generator's output over the baseline's; > 1.5 = generator "
                 "preferred; judge_swapped = the judge with the outputs shown in the other order",
        "pairs": [{"instruction": v.pair.instruction, "generator": v.pair.generator, "official": v.pair.official,
                   "judge": v.judge, "judge_swapped": v.swapped} for v in result.verdicts],
    }


def markdown(result: Calibration) -> str:
    s, info = result.summary, result.judge
    kappa = f"{s.kappa:.2f}" if math.isfinite(s.kappa) else "undefined (both judges constant)"
    consistency = "n/a (no pair readable in both orders)" if s.position_consistency is None else \
        f"{100 * s.position_consistency:.1f}%"
    lines = [
        f"## Judge calibration: {info.id} vs the official {result.suite} judge",
        "",
        f"judge: {info.id} ({'official spec' if info.official else 'local'}), model {info.model}, backend "
        f"{info.backend}, fingerprint {info.fingerprint}, prompt {info.prompt_hash}",
        f"reference: {s.reference}",
        "",
        "| measure | value |",
        "|---|---|",
        f"| pairs judged (n) | {s.n} |",
        f"| agreement (binarized: preference > 1.5 = model's output preferred) | {100 * s.agreement:.1f}% |",
        f"| majority-class baseline (always the official judge's majority verdict) | {100 * s.majority_baseline:.1f}% |",
        f"| Cohen's kappa | {kappa} |",
        f"| win rate: judge / official | {result.judge_win_rate:.1f} / {result.official_win_rate:.1f} |",
        f"| bias (judge - official), points [95% CI, paired bootstrap] | {s.bias:+.1f} "
        f"[{s.bias_ci_low:+.1f}, {s.bias_ci_high:+.1f}] |",
        f"| position consistency (same verdict with the outputs swapped) | {consistency} |",
        "",
    ]
    unreadable = _unreadable(result)
    if any(unreadable.values()):
        lines.append(f"unreadable verdicts (left out): official {unreadable['official']}, judge {unreadable['judge']}, "
                     f"judge with outputs swapped {unreadable['judge_swapped']}")
    if s.agreement <= s.majority_baseline:
        lines.append("agreement is not above the majority-class baseline: always answering the official judge's "
                     "majority verdict agrees at least as often as this judge does")
    lines.append(f"stored: {result.stored} (records judged by this judge cite it)" if result.stored else
                 f"not stored: {result.not_stored}")
    return "\n".join(lines) + "\n"


def _unreadable(result: Calibration) -> dict[str, int]:
    return {"official": result.left_out, "judge": sum(v.judge is None for v in result.verdicts),
            "judge_swapped": sum(v.swapped is None for v in result.verdicts)}
