"""Asking a judge about the published pairs in both orders, and the statistics of its verdicts against the official
ones (see harness.calibration)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.alpaca_eval import judging
from harness.backends.base import BackendOptions
from harness.calibration.pairs import THRESHOLD, Pair, Reference, check_suite
from harness.engines.context import Injected, ModelRef, RunContext, RunOptions
from harness.engines.judge_backend import JudgeRun, UnitModels, open_judge
from harness.errors import UserError
from harness.judges.pairwise import COMBINATION
from harness.records import CalibrationSummary, JudgeInfo
from harness.settings import Settings
from harness.stats import ItemTable, agreement, cohen_kappa, paired_bootstrap
from harness.store import RunDir

RESAMPLES = 10_000

@dataclass(frozen=True)
class Verdict:
    pair: Pair
    judge: float | None
    """The judge's preference on the pair as the harness reports it (output_1 = baseline; a local judge: both orders
    combined, the official spec: alpaca_eval's seeded order); None when unreadable. > 1.5 = the model's output."""
    swapped: float | None
    """The same judge with the pair given the other way round (output_1 = the model), on the same scale."""
    baseline_first: float | None = None
    """One order alone: the judge's preference with the baseline's output shown first (> 1.5 = model)."""
    model_first: float | None = None
    """One order alone: the judge's preference with the model's output shown first (> 1.5 = model)."""


@dataclass(frozen=True)
class SingleOrder:
    """What the judge model does in one order at a time (before the harness combines the orders)."""

    reads: int
    """Readable single-order verdicts (up to 2 per pair)."""
    agreement: float | None
    """Binarized single-order verdicts agreeing with the official one, over all reads of both orders."""
    kappa: float | None
    position_consistency: float | None
    """Pairs with the same binarized verdict in both orders."""
    position_bias: float | None
    """Share of reads in which the output shown first wins."""


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
    single_order: SingleOrder | None = None
    kappa_ci: tuple[float, float] | None = None
    """95% percentile bootstrap interval of the combined judge's kappa over pairs (None: too few pairs to vary)."""
    combination: str = ""
    """How the reported verdict combines the two orders."""


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
    verdicts = tuple(_verdict(p, a, b) for p, a, b in zip(pairs, annotations[: len(pairs)], annotations[len(pairs):],
                                                         strict=True))
    scored = [v for v in verdicts if v.judge is not None]
    if not scored:
        raise UserError(f"the judge {run.info.id} ({run.endpoint}) gave no readable verdict on any of the {len(pairs)} "
                        "pairs; check that the endpoint serves the judge model with logprobs, or pick another judge")
    official = np.array([v.pair.official for v in scored], dtype=float)
    judged = np.array([v.judge for v in scored], dtype=float)
    raw = single_order(scored)
    summary = summarize(official, judged, [v.swapped for v in scored], reference.description,
                        str(run.info.fingerprint), seed=seed)
    # the stored position consistency is the raw model's, one order against the other (a judge combining both orders
    # gives the same verdict either way by construction)
    summary = summary.model_copy(update={"position_consistency": raw.position_consistency})
    combination = "one order per pair (alpaca_eval's seeded switch)" if run.spec.official else COMBINATION
    return Calibration(suite, run.info.model_copy(update={"calibration": None}), summary, verdicts,
                       judge_win_rate=win_rate(judged), official_win_rate=win_rate(official),
                       left_out=len(reference.pairs) - len(pairs), single_order=raw,
                       kappa_ci=kappa_interval(official, judged, seed=seed), combination=combination)


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


def _row(pair: Pair, swap: bool) -> dict[str, Any]:
    """An annotate row; `swap` puts the model's output first, so the judge sees the pair in the other order."""
    base = (pair.baseline_output, pair.baseline)
    model = (pair.output, pair.generator)
    (o1, g1), (o2, g2) = (model, base) if swap else (base, model)
    return {"instruction": pair.instruction, "output_1": o1, "generator_1": g1, "output_2": o2, "generator_2": g2,
            "dataset": pair.dataset}


def _verdict(pair: Pair, row: dict[str, Any], swapped: dict[str, Any]) -> Verdict:
    """The pair's verdicts from the annotation of the row as published (output_1 = baseline) and of the swapped row
    (output_1 = model); the single-order reads from whichever annotation asked that order (`single_order`, on the
    annotation's own scale: > 1.5 = its output_2)."""
    own, other = row.get("single_order") or {}, swapped.get("single_order") or {}
    baseline_first = _first(_number(own.get("output_1_first")), _flip(_number(other.get("output_2_first"))))
    model_first = _first(_number(own.get("output_2_first")), _flip(_number(other.get("output_1_first"))))
    return Verdict(pair, _number(row.get("preference")), _flip(_number(swapped.get("preference"))), baseline_first,
                   model_first)


def _number(value: Any) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def _first(*values: float | None) -> float | None:
    return next((v for v in values if v is not None), None)




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


def single_order(verdicts: Sequence[Verdict]) -> SingleOrder:
    """The raw model, one order at a time: agreement and kappa of every readable single-order verdict (both orders
    pooled) with the official one, position consistency (pairs whose two orders give the same binarized verdict),
    position bias (share of reads won by the output shown first: baseline-first reads < 1.5, model-first > 1.5)."""
    reads = [(v.baseline_first, v.pair.official, True) for v in verdicts if v.baseline_first is not None] + \
            [(v.model_first, v.pair.official, False) for v in verdicts if v.model_first is not None]
    if not reads:
        return SingleOrder(0, None, None, None, None)
    pooled = agreement([r > THRESHOLD for r, _, _ in reads], [float(o or 0) > THRESHOLD for _, o, _ in reads])
    first_wins = [r < THRESHOLD if baseline_first else r > THRESHOLD for r, _, baseline_first in reads]
    both = [(v.baseline_first > THRESHOLD, v.model_first > THRESHOLD) for v in verdicts
            if v.baseline_first is not None and v.model_first is not None]
    return SingleOrder(reads=len(reads), agreement=pooled.agreement,
                       kappa=pooled.kappa if math.isfinite(pooled.kappa) else None,
                       position_consistency=float(np.mean([a == b for a, b in both])) if both else None,
                       position_bias=float(np.mean(first_wins)))


def kappa_interval(official: np.ndarray, judge: np.ndarray, seed: int = 0, resamples: int = 2000,
                   level: float = 0.95) -> tuple[float, float] | None:
    """Percentile bootstrap interval of Cohen's kappa over pairs (resamples where kappa is undefined are dropped);
    None when fewer than half of the resamples define it."""
    x, y = judge > THRESHOLD, official > THRESHOLD
    idx = np.random.default_rng(seed).integers(0, len(x), size=(resamples, len(x)))
    draws = np.array([cohen_kappa(x[i], y[i]) for i in idx])
    draws = draws[np.isfinite(draws)]
    if len(draws) < resamples / 2:
        return None
    tail = (1 - level) / 2
    return float(np.quantile(draws, tail)), float(np.quantile(draws, 1 - tail))


def win_rate(preferences: np.ndarray) -> float:
    """alpaca_eval's win rate: mean(preference - 1) x 100."""
    return float(100.0 * np.mean(preferences - 1.0))
