"""Engines run one suite on one checkpoint: `runner_for(spec)(spec, model, ctx) -> ResultRecord`.

- "lm-eval": the Open LLM Leaderboard suites through lm-eval's own tasks (harness.engines.lmeval);
- "judge": the judged suites through one generic driver (harness.engines.judged) and each suite's module.
Engines import their heavy libraries lazily, so choosing a runner costs nothing.
"""

from __future__ import annotations

from typing import Protocol

from harness.engines.context import Injected, ModelRef, RunContext, RunOptions
from harness.errors import CapabilityMissing
from harness.records import ResultRecord
from harness.specs import SuiteSpec

__all__ = ["Injected", "ModelRef", "RunContext", "RunOptions", "SuiteRunner", "runner_for"]


class SuiteRunner(Protocol):
    def __call__(self, spec: SuiteSpec, model: ModelRef, ctx: RunContext) -> ResultRecord: ...


def runner_for(spec: SuiteSpec) -> SuiteRunner:
    if spec.engine == "lm-eval":
        from harness.engines.lmeval import run_suite as lm_eval_runner

        return lm_eval_runner
    if spec.engine == "judge":
        from harness.engines.judged import run_suite as judged_runner

        return judged_runner
    if spec.engine == "sppo":
        raise CapabilityMissing(f"suite {spec.name!r} is computed by `sppo-bench train-and-eval` from a training run "
                                "(the base and its iterations); it cannot run on a checkpoint alone")
    raise CapabilityMissing(
        f"suite {spec.name!r} is an average computed from {', '.join(spec.aggregate_of)}; run those suites instead"
    )
