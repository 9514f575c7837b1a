"""Typed, versioned result records (pydantic v2).

One `ResultRecord` per (model, variant, suite). Metric values are stored on the model card's scale (50.47, not
0.5047), with nested stderr / CI / n instead of lm-eval's packed "acc,none" keys. Every record carries provenance.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION: Literal[1] = 1

Status = Literal["complete", "partial", "failed"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Metric(_Strict):
    value: float
    stderr: float | None = None
    ci_low: float | None = None
    """Absolute lower bound of the 95% interval, on the same scale as `value`."""
    ci_high: float | None = None
    n: int | None = None


class Coverage(_Strict):
    """How many items were attempted, scored and failed (e.g. unparsable judge verdicts)."""

    total: int
    scored: int
    failed: int = 0


class JudgeInfo(_Strict):
    id: str
    model: str
    prompt_hash: str
    backend: str
    official: bool
    """False for local judges: their numbers are not comparable with the official judge's."""


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

    @property
    def label(self) -> str:
        return f"{self.model} ({self.variant})" if self.variant else self.model

    @property
    def key(self) -> tuple[str, str | None, str]:
        return (self.model, self.variant, self.suite)


class ReferenceSet(_Strict):
    """Published scores, e.g. imported from a model card; committed under results/reference/."""

    schema_version: Literal[1] = SCHEMA_VERSION
    name: str
    source: str
    card_model: str | None = None
    """The model the card is about (its model-index name)."""
    records: list[ResultRecord]


def now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)
