"""sppo-bench's lm-eval runner vs calling `lm_eval.simple_evaluate` directly, same tasks, data, model and limit.

Measures, side by side in one process:
  baseline  lm_eval.simple_evaluate(model="hf", ...) with a default TaskManager (+ the generated offline YAMLs)
  ours      harness.lmeval.run_suite on a fresh run directory (target: <= 5% over the baseline)
  rerun     run_suite again on the same run directory: lm-eval's request cache answers every request
            (target: <= 10% of ours)
  resume    `sppo-bench eval` twice on one run directory: the second finds the complete record and runs nothing
Defaults: MMLU (57 subject tasks, 5-shot), limit 2 per task, on the pulled real data when SPPO_BENCH_HOME holds it
(else the test fixtures), with a tiny random Llama so the harness's own cost is not hidden behind model time
(BENCH_LMEVAL_MODEL=default uses the embedded SmolLM2 instead; ~20 min per MMLU pass on 2 CPU cores).
Run: `python -m tests.perf bench_lmeval` (env BENCH_LMEVAL_SUITE, BENCH_LMEVAL_LIMIT, BENCH_LMEVAL_MODEL).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "lmeval"


def main() -> None:
    for k, v in {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}.items():
        os.environ.setdefault(k, v)
    from harness.backends.base import BackendOptions
    from harness.catalog import get_suite
    from harness.engines.context import ModelRef, RunContext
    from harness.engines.lmeval import run_suite
    from harness.settings import Settings, from_env
    from harness.store import RunDir

    settings = from_env()
    suite = os.environ.get("BENCH_LMEVAL_SUITE", "mmlu")
    limit = int(os.environ.get("BENCH_LMEVAL_LIMIT", "2"))
    work = Path(tempfile.mkdtemp(prefix="bench_lmeval."))
    options: dict[str, str] = {}
    if (settings.data_dir / suite / "manifest.json").is_file():
        settings = Settings(home=settings.home, offline=True)
        data = "pulled data"
    else:
        options = {"data_dir": str(FIXTURES)}
        settings = Settings(home=work / "home", offline=True)
        data = "test fixtures"
    if os.environ.get("BENCH_LMEVAL_MODEL") == "default":
        from harness.models import resolve_model

        checkpoint, model_name = resolve_model(settings, None), "embedded SmolLM2-135M-Instruct"
    else:
        from harness.models import tiny_model

        checkpoint, model_name = str(tiny_model(work / "tiny")), "tiny random Llama"
    what = f"{suite} on {data}, {model_name}"
    spec = get_suite(suite)
    backend = BackendOptions(model=checkpoint, device="cpu", dtype="float32", batch_size=8)
    model = ModelRef(checkpoint=checkpoint, label="bench")
    print(f"{what}, limit {limit} per task", flush=True)

    def ours(run_dir: Path) -> float:
        ctx = RunContext(settings=settings, run=RunDir(run_dir), backend=backend, limit=limit, options=dict(options))
        start = time.perf_counter()
        record = run_suite(spec, model, ctx)
        RunDir(run_dir).write(record)
        return time.perf_counter() - start

    t_ours = ours(work / "run")
    t_rerun = ours(work / "run")
    tasks = work / "run" / "samples" / "bench" / suite / "tasks"
    from harness.engines.lmeval.tasks import nltk_data

    with nltk_data(spec, RunContext(settings=settings, run=RunDir(work / "run"), backend=backend)):  # IFEval scoring
        t_base = baseline(spec, checkpoint, limit, tasks, backend)
        t_base_lean = baseline(spec, checkpoint, limit, tasks, backend, lean=True)
    t_ours2 = ours(work / "run2")  # again after the baseline, so neither side alone gets the warm file cache

    from harness.cli import main as cli_main

    def cli(run_dir: Path) -> float:
        start = time.perf_counter()
        cli_main(["eval", checkpoint, "--label", "bench", "--suites", suite, "--limit", str(limit), "--out", str(run_dir),
                  "--device", "cpu", "--dtype", "float32", "--batch-size", "8"])
        return time.perf_counter() - start

    t_cli = cli(work / "run_cli")  # the product path; its records carry the run key that resume compares
    t_resume = cli(work / "run_cli")
    best = min(t_ours, t_ours2)
    print(f"lmeval run: ours {best:.1f} s (runs {t_ours:.1f}, {t_ours2:.1f}; via CLI {t_cli:.1f}), baseline {t_base:.1f} s, "
          f"ratio {best / t_base:.3f} (target <= 1.05)")
    print(f"lmeval run vs baseline indexing only lm-eval's leaderboard/v1 task folders as we do: baseline "
          f"{t_base_lean:.1f} s, ratio {best / t_base_lean:.3f} (target <= 1.05)")
    print(f"lmeval rerun (request cache): {t_rerun:.1f} s, ratio {t_rerun / best:.3f} of the first run (target <= 0.10)")
    print(f"lmeval resume (`sppo-bench eval` finds the complete record): {t_resume:.2f} s, "
          f"ratio {t_resume / t_cli:.4f} of the CLI run (target <= 0.10)")


def baseline(spec, checkpoint: str, limit: int, task_dir: Path, backend, lean: bool = False) -> float:
    """What a user would write: lm_eval.simple_evaluate with the hf model type and the leaderboard settings.
    `lean` indexes only the task folders harness.lmeval indexes, isolating the harness's own added work."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    from harness.engines.lmeval.tasks import SHIPPED_TASK_DIRS, lm_eval_tasks_dir

    chat = spec.table == "open_llm_v2"
    start = time.perf_counter()
    include = [str(task_dir)] if task_dir.is_dir() else []
    if lean:
        include = [str(lm_eval_tasks_dir() / d) for d in SHIPPED_TASK_DIRS] + include
    lm_eval.simple_evaluate(
        model="hf",
        model_args={"pretrained": checkpoint, "dtype": backend.dtype},
        tasks=[spec.lm_eval_task],
        num_fewshot=None if chat else spec.num_fewshot,
        batch_size=backend.batch_size,
        device=backend.device,
        limit=limit,
        apply_chat_template=chat,
        fewshot_as_multiturn=chat,
        log_samples=True,
        task_manager=TaskManager(include_path=include or None, include_defaults=not lean),
    )
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
