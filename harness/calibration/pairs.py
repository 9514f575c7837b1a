"""The published pairs a judge is calibrated on: alpaca_eval annotations.json files (output_1 = the gpt4_1106_preview
baseline, output_2 = a leaderboard model's output, `preference` in [1, 2] = the official judge's verdict)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.io import read_text
from harness.settings import Settings

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


def check_suite(suite: str) -> None:
    if suite not in SUITES_WITH_REFERENCE:
        raise UserError(f"--suite {suite}: published official verdicts to calibrate against exist for "
                        f"{', '.join(SUITES_WITH_REFERENCE)} only; pass --suite alpaca_eval")

