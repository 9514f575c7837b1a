"""Typed, versioned result records (pydantic v2).

One `ResultRecord` per (model, variant, suite). Metric values are stored on the model card's scale (50.47, not
0.5047), with nested stderr / CI / n instead of lm-eval's packed "acc,none" keys. Every record carries provenance.
"""

from __future__ import annotations

import datetime as _dt
import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

SCHEMA_VERSION: Literal[1] = 1

Status = Literal["complete", "partial", "failed"]


PERCENT = (0.0, 100.0)
COUNT = (0.0, math.inf)
RATING = (1.0, 10.0)
BOUNDS: dict[tuple[str, str], tuple[float, float]] = {("mt_bench", "turn_1"): RATING, ("mt_bench", "turn_2"): RATING,
                                                      ("mt_bench", "average"): RATING}
"""Metrics that are not percentages: MT-Bench means of FastChat's 1..10 ratings."""
COUNT_METRICS = frozenset({"avg_length", "avg_tokens", "empty_answers", "repeated_token_answers", "base_empty_answers",
                           "base_repeated_token_answers"})
"""Lengths and counts (>= 0, no upper bound); so is every `n_*` (alpaca_eval's head-to-head counts)."""


def metric_bounds(suite: str, key: str) -> tuple[float, float]:
    """The range a recorded value must lie in: records hold the card's scale, so a percentage is 0..100 (an
    accuracy of 1.7 read as 170 is refused), an MT-Bench rating mean 1..10, a length or count >= 0."""
    if key in COUNT_METRICS or key.startswith("n_"):
        return COUNT
    return BOUNDS.get((suite, key), PERCENT)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Finite(BaseModel):
    """Numbers are finite: NaN, Infinity and 1e309 (which JSON readers turn into inf) are refused on read."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Metric(_Finite):
    value: float
    stderr: float | None = Field(default=None, ge=0)
    ci_low: float | None = None
    """Absolute lower bound of the 95% interval, on the same scale as `value`."""
    ci_high: float | None = None
    n: int | None = Field(default=None, ge=0)
    repeat_sd: float | None = Field(default=None, ge=0)
    """Standard deviation between repeated runs (`--repeats`), next to the within-run `stderr`."""

    @field_validator("stderr", "ci_low", "ci_high", "repeat_sd", mode="before")
    @classmethod
    def _undefined(cls, value: Any, info: ValidationInfo) -> Any:
        """A spread computed in memory may be NaN where it is undefined (pandas' sem of one item): it is stored as
        null, as it always was. Read from a file, NaN is refused like any other non-finite number."""
        if info.mode == "python" and isinstance(value, float) and math.isnan(value):
            return None
        return value

    @model_validator(mode="after")
    def _interval(self) -> Metric:
        if self.ci_low is not None and self.ci_high is not None and self.ci_low > self.ci_high:
            raise ValueError(f"ci_low {self.ci_low} is above ci_high {self.ci_high} (an inverted interval)")
        return self


class Coverage(_Finite):
    """How many items were attempted, scored and failed (e.g. unparsable judge verdicts)."""

    total: int = Field(ge=0)
    """Items attempted (after --limit)."""
    scored: int = Field(ge=0)
    failed: int = Field(default=0, ge=0)
    available: int | None = Field(default=None, ge=0)
    """Items in the whole suite (805 for AlpacaEval), when known: a partial record says "2 of 805"."""

    @model_validator(mode="after")
    def _counts(self) -> Coverage:
        if self.scored > self.total or self.failed > self.total:
            raise ValueError(f"{self.scored} scored and {self.failed} failed of {self.total} items (more than exist)")
        return self


class CalibrationSummary(_Strict):
    """How a judge's verdicts agree with the official judge's on published pairs (`sppo-bench judge calibrate`)."""

    n: int
    """Published pairs judged."""
    agreement: float
    """Fraction (0..1) of pairs where the binarized verdicts agree."""
    kappa: float
    """Cohen's kappa of the binarized verdicts."""
    majority_baseline: float
    """Agreement of always answering the official judge's majority verdict."""
    bias: float
    """Judge win rate minus official win rate, in points (0..100 scale)."""
    bias_ci_low: float
    bias_ci_high: float
    position_consistency: float | None = None
    """Fraction of pairs with the same verdict when the two outputs are swapped."""
    reference: str
    """What the judge was calibrated on (file names)."""
    judge_fingerprint: str


class JudgeInfo(_Strict):
    id: str
    model: str
    prompt_hash: str
    backend: str
    official: bool
    """False for local judges: their numbers are not comparable with the official judge's."""
    fingerprint: str | None = None
    """Content fingerprint of the judge backend (model weights + template, or API model + endpoint)."""
    calibration: CalibrationSummary | None = None


class DatasetProvenance(_Strict):
    id: str | None = None
    revision: str | None = None
    source: str | None = None
    sha256: str | None = None


class Provenance(_Strict):
    source: str
    """"run", "card", "import:lm-eval", "import:alpaca-eval", ..."""
    location: str | None = None
    """Path or URL of what was imported or the checkpoint that was evaluated."""
    packages: dict[str, str] = Field(default_factory=dict)
    dataset: DatasetProvenance | None = None
    generation: dict[str, Any] = Field(default_factory=dict)
    seed: int | None = None
    checkpoint_sha256: str | None = None
    """Content fingerprint of the evaluated checkpoint (weights, tokenizer, chat template); None for imports."""
    git_sha: str | None = None
    command: str | None = None
    started_at: _dt.datetime | None = None
    finished_at: _dt.datetime | None = None


class ResultRecord(_Strict):
    schema_version: Literal[1] = SCHEMA_VERSION
    model: str
    """The row label a card prints, e.g. "Mistral7B-PairRM-SPPO Iter 1"."""
    variant: str | None = None
    """A decoding variant shown as its own row, e.g. "best-of-16"."""
    iteration: int | None = None
    checkpoint: str | None = None
    suite: str
    status: Status = "complete"
    metrics: dict[str, Metric] = Field(default_factory=dict)
    subtasks: dict[str, dict[str, Metric]] = Field(default_factory=dict)
    limit: int | None = None
    coverage: Coverage | None = None
    judge: JudgeInfo | None = None
    error: str | None = None
    notes: list[str] = Field(default_factory=list)
    provenance: Provenance
    run_key: str | None = None
    """Content key of the unit of work that produced the record; a rerun skips units whose key matches."""

    @model_validator(mode="after")
    def _in_range(self) -> ResultRecord:
        if self.status == "complete" and not self.metrics:
            raise ValueError("status is complete but there are no metrics (a complete record holds its numbers)")
        tables = [("metrics", self.metrics), *((f"subtasks.{t}", ms) for t, ms in self.subtasks.items())]
        for where, metrics in tables:
            for key, m in metrics.items():
                lo, hi = metric_bounds(self.suite, key)
                if not lo <= m.value <= hi:
                    raise ValueError(f"{where}.{key}.value {m.value} is outside {self.suite}'s range "
                                     f"{lo:g}..{hi:g}")
        return self

    @property
    def label(self) -> str:
        return f"{self.model} ({self.variant})" if self.variant else self.model

    @property
    def key(self) -> tuple[str, str | None, str]:
        return (self.model, self.variant, self.suite)


class ItemRow(_Finite):
    """One scored unit of a suite, in `RUN/samples/<model-slug>/<suite>/items.jsonl`: what paired comparisons,
    bootstrap intervals and the run viewer read. Items whose generation failed or whose verdict could not be read are
    absent (the record's coverage counts them)."""

    schema_version: Literal[1] = SCHEMA_VERSION
    item: str
    """Stable item id, the same for every checkpoint: AlpacaEval instruction index, Arena-Hard / MT-Bench question_id,
    lm-eval doc_id."""
    subtask: str | None = None
    """lm-eval leaf task (e.g. leaderboard_bbh_navigate); None for one-task suites."""
    turn: int | None = None
    """MT-Bench turn (1 or 2)."""
    scores: dict[str, float] = Field(default_factory=dict)
    """Per-item values the suite aggregates, by metric name (lm-eval per-sample metrics; alpaca_eval "preference" in
    [1, 2] and "length"; mt_bench "rating")."""
    games: list[str | None] | None = None
    """Arena-Hard: verdicts of game 1 (baseline is A) and game 2 (swapped); None = no verdict."""
    judgment: str | None = None
    prompt: str | None = None
    answer: str | None = None
    target: str | None = None
    extracted: str | None = None
    length: int | None = Field(default=None, ge=0)
    """Output length: characters (alpaca_eval), tokens (arena_hard, mt_bench)."""


class ReferenceSet(_Strict):
    """Published scores, e.g. imported from a model card; committed under results/reference/."""

    schema_version: Literal[1] = SCHEMA_VERSION
    name: str
    source: str
    card_model: str | None = None
    """The model the card is about (its model-index name)."""
    records: list[ResultRecord]

    @model_validator(mode="after")
    def _one_row_each(self) -> ReferenceSet:
        seen: dict[tuple[str, str | None, str], int] = {}
        for i, r in enumerate(self.records):
            if r.key in seen:
                raise ValueError(f"records {seen[r.key]} and {i} are both {r.label!r} / {r.suite} (a reader would "
                                 "silently keep one); keep one record per model and suite")
            seen[r.key] = i
        return self


def now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)
