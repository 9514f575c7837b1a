"""The main job's judge calibration: `sppo-bench train-and-eval` calibrates the local AlpacaEval judge its records
name, once per judge (id, prompt hash, fingerprint), on published pairs in both orders, and stores the result under
the cache home, where every later run (and every card) finds it. A stored calibration on at least as many pairs is
reused without a single judge call; one on fewer pairs is extended (pairs already judged come from the judge cache).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from harness.calibration.output import store
from harness.calibration.pairs import SUITES_WITH_REFERENCE, Pair, Reference, published_reference
from harness.calibration.run import calibrate
from harness.engines.context import Injected
from harness.engines.judge_backend import stored_calibration
from harness.errors import UserError
from harness.records import JudgeInfo, ResultRecord
from harness.settings import Settings

DEFAULT_PAIRS = 100
"""Published pairs (each asked in both orders) the main job calibrates on: enough for a kappa interval."""
BATCH_SIZE = 8
"""Judge batch for calibration: its prompts hold two long AlpacaEval outputs (up to ~4,800 tokens), so not the
evaluation's batch (32 in the default profile): the backend's logits for a batch grow with batch x tokens x vocab."""


@dataclass(frozen=True)
class Outcome:
    judge: JudgeInfo
    status: str
    """reused | calibrated | not stored | skipped"""
    line: str
    seconds: float = 0.0


def local_judges(records: Sequence[ResultRecord]) -> list[JudgeInfo]:
    """The distinct local judges of suites with published official verdicts, in record order."""
    found: dict[tuple[str, str, str], JudgeInfo] = {}
    for r in records:
        j = r.judge
        if r.suite in SUITES_WITH_REFERENCE and j is not None and not j.official and j.fingerprint:
            found.setdefault((j.id, j.prompt_hash, j.fingerprint), j)
    return list(found.values())


def ensure_calibrated(settings: Settings, records: Sequence[ResultRecord], pairs: int = DEFAULT_PAIRS,
                      batch_size: int = BATCH_SIZE, log: Callable[[str], None] = print,
                      injected: Injected = Injected()) -> list[Outcome]:
    """Calibrate every local judge of `records` that has no stored calibration on at least `pairs` pairs.
    `injected`: an in-process judge (tests), as the judged engine takes one."""
    outcomes = []
    for info in local_judges(records):
        outcome = _one(settings, info, pairs, batch_size, injected)
        log(outcome.line)
        outcomes.append(outcome)
    return outcomes


def _one(settings: Settings, info: JudgeInfo, pairs: int, batch_size: int, injected: Injected) -> Outcome:
    fingerprint = str(info.fingerprint)
    found = stored_calibration(settings, info.id, info.prompt_hash, fingerprint)
    if found is not None and found.n >= pairs:
        return Outcome(info, "reused", f"judge calibration: {info.id} ({fingerprint}) reused, {found.n} pairs, "
                                       f"kappa {found.kappa:.2f}")
    try:
        from harness.data import ensure

        ensure(settings, "judge_calibration")
        reference = published_reference(settings, limit=None)
    except UserError as exc:
        return Outcome(info, "skipped", f"judge calibration: {info.id} not calibrated ({exc})")
    chosen = spread(reference, pairs)
    start = time.perf_counter()
    result = calibrate(settings, chosen, "local", batch_size=batch_size, injected=injected)
    seconds = time.perf_counter() - start
    if result.judge.fingerprint != fingerprint or result.judge.prompt_hash != info.prompt_hash:
        return Outcome(info, "skipped", f"judge calibration: the judge opened for calibration ({result.judge.fingerprint}) "
                                        f"is not the records' ({fingerprint}); run `sppo-bench judge calibrate` with "
                                        "that judge", seconds)
    result = store(settings, result)
    n = result.summary.n
    per_pair = seconds / max(1, n)
    status = "calibrated" if result.stored else "not stored"
    where = f"stored {result.stored}" if result.stored else f"not stored: {result.not_stored}"
    kappa = f"{result.summary.kappa:.2f}" if math.isfinite(result.summary.kappa) else "undefined"
    return Outcome(info, status, f"judge calibration: {info.id} on {n} published pairs (both orders) in {seconds:.0f} s "
                                 f"({per_pair:.1f} s per pair), agreement {result.summary.agreement:.0%}, kappa {kappa}; "
                                 f"{where}", seconds)


def spread(reference: Reference, pairs: int) -> Reference:
    """`pairs` pairs with a published official verdict, taken in turn from each leaderboard model's file (so each
    model is represented), in file order within a file; the description says how many of each."""
    by_model: dict[str, list[Pair]] = {}
    for p in reference.pairs:
        if p.official is not None:
            by_model.setdefault(p.generator, []).append(p)
    chosen: list[Pair] = []
    queues = [list(v) for v in by_model.values()]
    while len(chosen) < pairs and any(queues):
        for q in queues:
            if q and len(chosen) < pairs:
                chosen.append(q.pop(0))
    counts = ", ".join(f"the first {sum(1 for p in chosen if p.generator == g)} of {g}" for g in by_model)
    return Reference(tuple(chosen), f"{reference.description}: {counts} (with an official verdict)")
