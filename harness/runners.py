"""Dispatch from a suite's engine to the code that runs it. Engines are imported lazily, where used."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from harness.backends.base import BackendOptions
from harness.errors import CapabilityMissing
from harness.records import ResultRecord
from harness.settings import Settings
from harness.specs import SuiteSpec
from harness.store import RunDir


@dataclass(frozen=True)
class ModelRef:
    checkpoint: str
    """Local folder or hub id."""
    label: str
    """Row label on the card."""
    iteration: int | None = None
    variant: str | None = None


@dataclass
class RunContext:
    settings: Settings
    run: RunDir
    backend: BackendOptions
    limit: int | None = None
    seed: int = 0
    judge: str | None = None
    """Judge spec id for judged suites; None = the suite's default for this environment."""
    judge_backend: BackendOptions | None = None
    options: dict[str, Any] = field(default_factory=dict)


class SuiteRunner(Protocol):
    def __call__(self, spec: SuiteSpec, model: ModelRef, ctx: RunContext) -> ResultRecord: ...


# engine -> (module path, function, the capability a user is missing when it is absent)
ENGINES: dict[str, tuple[str, str, str]] = {
    "lm-eval": ("harness.lmeval", "run_suite", "the lm-eval Open LLM Leaderboard runner (issue #4)"),
    "judge": ("harness.judged", "run_suite", "the judged-suite runner for AlpacaEval / Arena-Hard / MT-Bench (issue #5)"),
}


def runner_for(spec: SuiteSpec) -> SuiteRunner:
    if spec.engine == "aggregate":
        raise CapabilityMissing(
            f"suite {spec.name!r} is an average computed from {', '.join(spec.aggregate_of)}; run those suites instead"
        )
    module_name, func, capability = ENGINES[spec.engine]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise CapabilityMissing(f"suite {spec.name!r} needs {capability}, which is not built yet") from None
    runner: SuiteRunner = getattr(module, func)
    return runner


def results_dir(path: str | Path) -> RunDir:
    return RunDir(Path(path))
