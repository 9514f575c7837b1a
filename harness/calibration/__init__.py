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
95% CI over pairs and kappa with a bootstrap 95% CI, for the judge as the harness reports it (a local judge: both
orders combined by the mean log-odds); and, next to them, the judge model one order at a time: agreement and kappa of
the single-order verdicts, position consistency (the fraction of pairs whose binarized verdict stays the same when the
outputs are swapped) and position bias (how often the output shown first wins).

The result is stored per judge (id, prompt hash, backend fingerprint) under the cache home, and every later record of
that judge carries it (`JudgeInfo.calibration`). Kappa is undefined when both judges give one and the same verdict on
every pair: such a calibration is reported (kappa null) but not stored, since it cannot tell whether the judge
discriminates at all. `sppo-bench train-and-eval` calibrates its local judge once per judge fingerprint
(harness.calibration.main_job).

Modules: `pairs` (the published reference pairs), `run` (asking the judge, the statistics), `output` (storing, JSON,
markdown), `main_job` (the cached calibration of the main job).
"""

from harness.calibration.output import markdown, store, to_json
from harness.calibration.pairs import (
    SUITES_WITH_REFERENCE,
    THRESHOLD,
    Pair,
    Reference,
    check_suite,
    published_reference,
    reference_files,
)
from harness.calibration.run import (
    Calibration,
    SingleOrder,
    Verdict,
    calibrate,
    kappa_interval,
    open_calibration_judge,
    single_order,
    summarize,
    win_rate,
)

__all__ = ["SUITES_WITH_REFERENCE", "THRESHOLD", "Calibration", "Pair", "Reference", "SingleOrder", "Verdict",
           "calibrate", "check_suite", "kappa_interval", "markdown", "open_calibration_judge", "published_reference",
           "reference_files", "single_order", "store", "summarize", "to_json", "win_rate"]
