"""A calibration stored where the judged engine finds it, as JSON, and as the markdown `judge calibrate` prints."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, replace
from typing import Any

from harness.calibration.run import Calibration, SingleOrder
from harness.engines.judge_backend import calibration_path
from harness.io import atomic_write_text
from harness.records import now
from harness.settings import Settings

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
        "combination": result.combination,
        "kappa_ci": list(result.kappa_ci) if result.kappa_ci else None,
        "single_order": asdict(result.single_order) if result.single_order else None,
        "scale": "alpaca_eval preference in [1, 2] of the generator's output over the baseline's; > 1.5 = generator "
                 "preferred; judge = the verdict as the harness reports it (combination), judge_swapped = the same "
                 "judge given the pair the other way round; judge_baseline_first / judge_model_first = one order alone",
        "pairs": [{"instruction": v.pair.instruction, "generator": v.pair.generator, "official": v.pair.official,
                   "judge": v.judge, "judge_swapped": v.swapped, "judge_baseline_first": v.baseline_first,
                   "judge_model_first": v.model_first} for v in result.verdicts],
    }


def markdown(result: Calibration) -> str:
    s, info = result.summary, result.judge
    kappa = f"{s.kappa:.2f}" if math.isfinite(s.kappa) else "undefined (both judges constant)"
    if result.kappa_ci:
        kappa += f" [{result.kappa_ci[0]:.2f}, {result.kappa_ci[1]:.2f}]"
    raw = result.single_order or SingleOrder(0, None, None, s.position_consistency, None)
    lines = [
        f"## Judge calibration: {info.id} vs the official {result.suite} judge",
        "",
        f"judge: {info.id} ({'official spec' if info.official else 'local'}), model {info.model}, backend "
        f"{info.backend}, fingerprint {info.fingerprint}, prompt {info.prompt_hash}",
        f"reference: {s.reference}",
        f"reported verdict: {result.combination or 'as the judged suite asks'}",
        "",
        "| measure | value |",
        "|---|---|",
        f"| pairs judged (n) | {s.n} |",
        "| **the judge as the harness reports it** | |",
        f"| agreement (binarized: preference > 1.5 = model's output preferred) | {100 * s.agreement:.1f}% |",
        f"| majority-class baseline (always the official judge's majority verdict) | {100 * s.majority_baseline:.1f}% |",
        f"| Cohen's kappa [95% CI, bootstrap over pairs] | {kappa} |",
        f"| win rate: judge / official | {result.judge_win_rate:.1f} / {result.official_win_rate:.1f} |",
        f"| bias (judge - official), points [95% CI, paired bootstrap] | {s.bias:+.1f} "
        f"[{s.bias_ci_low:+.1f}, {s.bias_ci_high:+.1f}] |",
        f"| **the judge model in one order at a time** ({raw.reads} reads) | |",
        f"| agreement / Cohen's kappa (both orders' reads pooled) | {_pct(raw.agreement)} / "
        f"{'undefined' if raw.kappa is None else f'{raw.kappa:.2f}'} |",
        f"| position consistency (same verdict in both orders) | {_pct(raw.position_consistency)} |",
        f"| position bias (reads won by the output shown first; 50% = none) | {_pct(raw.position_bias)} |",
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


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _unreadable(result: Calibration) -> dict[str, int]:
    return {"official": result.left_out, "judge": sum(v.judge is None for v in result.verdicts),
            "judge_swapped": sum(v.swapped is None for v in result.verdicts)}
