"""Declarative suite specs: what a benchmark is, where its data lives, and where its numbers go on a model card."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict

from harness.registry import Registry

CardTable = Literal["sppo_objective", "alpaca_eval", "arena_hard", "open_llm_v1", "mt_bench", "open_llm_v2"]
Engine = Literal["lm-eval", "judge", "aggregate", "sppo"]
"""lm-eval: lm-eval's own tasks; judge: generated answers judged; aggregate: a mean of other suites; sppo: computed by
`train-and-eval` from the training run itself (the SPPO objective)."""

# The five tables of the seed card, in the order the seed card prints them.
CARD_TABLES: tuple[CardTable, ...] = ("sppo_objective", "alpaca_eval", "arena_hard", "open_llm_v1", "mt_bench",
                                      "open_llm_v2")
"""The seed card's five tables in its order, after the SPPO objective of a train-and-eval run (absent elsewhere)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DatasetRef(_Frozen):
    id: str
    revision: str | None = None
    config: str | None = None
    split: str | None = None


class MetricSpec(_Frozen):
    key: str
    label: str
    column: str | None = None
    """Card table column; None when the metric is recorded but not printed."""
    decimals: int = 2
    padded: bool = True
    """True prints fixed decimals (7.90); False rounds then prints the shortest form (69.4), as the seed card does."""
    higher_is_better: bool | None = True
    """None marks an informational metric (an output length): shown and compared, never a regression."""

    def format(self, value: float) -> str:
        return format_number(value, self.decimals, self.padded)


class ModelIndexSpec(_Frozen):
    """How the Open LLM Leaderboard bot writes this suite into `model-index`."""

    dataset_type: str
    metric_type: str
    metric_name: str
    dataset_config: str | None = None
    dataset_split: str | None = None
    source_name: str = "Open LLM Leaderboard"
    source_url: str = "https://huggingface.co/spaces/open-llm-leaderboard/open_llm_leaderboard?query={model}"


@dataclass(frozen=True)
class LeaderboardRule:
    """How one lm-eval suite's output becomes the number on the card (formulas: harness.scoring.leaderboard)."""

    metric: str
    """lm-eval metric read from the results ("acc_norm", "acc", "exact_match", ...)."""
    kind: Literal["raw", "group", "subtasks", "ifeval"] = "raw"
    """raw: x100 of the group/task value; group: norm(group value, lower_bound); subtasks: mean of per-subtask
    norm(v, 1/choices); ifeval: mean of inst- and prompt-level strict accuracy x100."""
    filter: str = "none"
    """lm-eval filter name in the packed "metric,filter" key ("strict-match" for GSM8K)."""
    lower_bound: float = 0.0
    subtask_choices: Mapping[str, int] = field(default_factory=dict)
    """Answer choices per lm-eval leaf task, for kind "subtasks"."""
    also: tuple[str, ...] = ()
    """Further lm-eval metrics recorded beside the card's (MATH keeps both exact_match and exact_match_original)."""
    unweighted_too: bool = False
    """Also record `<metric>_unweighted`, the plain mean over the leaf tasks (the v1 leaderboard's own MMLU average)."""


class SuiteSpec(_Frozen):
    name: str
    title: str
    """The name a model card uses: `IFEval (0-Shot)`, `arc_challenge`, ..."""
    table: CardTable
    engine: Engine
    dataset: DatasetRef | None
    num_fewshot: int | None
    metrics: tuple[MetricSpec, ...]
    headline: str
    normalization: str
    description: str
    paper: str | None = None
    lm_eval_task: str | None = None
    leaderboard: LeaderboardRule | None = None
    """lm-eval suites: how lm-eval's output becomes the card's number."""
    model_index: ModelIndexSpec | None = None
    aggregate_of: tuple[str, ...] = ()

    def metric(self, key: str) -> MetricSpec:
        for m in self.metrics:
            if m.key == key:
                return m
        return METRIC_REGISTRY_HINT.get(f"{self.name}.{key}")  # raises with suggestions

    @property
    def headline_metric(self) -> MetricSpec:
        return self.metric(self.headline)


def format_number(value: float, decimals: int, padded: bool) -> str:
    if padded:
        return f"{value:.{decimals}f}"
    rounded = round(value, decimals)
    return str(int(rounded)) if decimals == 0 else repr(float(rounded))


SUITES: Registry[SuiteSpec] = Registry("suite")
METRIC_REGISTRY_HINT: Registry[MetricSpec] = Registry("metric")


def register(spec: SuiteSpec) -> SuiteSpec:
    if spec.headline not in {m.key for m in spec.metrics}:
        raise ValueError(f"suite {spec.name!r}: headline {spec.headline!r} is not one of its metrics")
    SUITES.add(spec.name, spec)
    for m in spec.metrics:
        METRIC_REGISTRY_HINT.add(f"{spec.name}.{m.key}", m)
    return spec


def suites_for_table(table: CardTable) -> list[SuiteSpec]:
    return [s for s in SUITES if s.table == table]
