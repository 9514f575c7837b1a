"""nox sessions: tests, lint, typecheck, perf. All run in the current environment (`--no-venv` semantics):
the project's heavy, pinned stack is installed once per the README, not re-resolved per session."""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.options.default_venv_backend = "none"
nox.options.sessions = ["lint", "typecheck", "tests"]

OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}  # 2 cores, 2 pytest workers: 1 thread each


def _home() -> dict[str, str]:
    """The cache home the tests share: data pulled and the embedded model prepared once, then reused."""
    home = os.environ.get("SPPO_BENCH_HOME") or os.path.expanduser("~/.cache/sppo-bench")
    return {**OFFLINE, "SPPO_BENCH_HOME": home, "SPPO_TEST_HOME": home}


@nox.session
def prepare(session: nox.Session) -> None:
    """Offline data and the embedded default model (idempotent: seconds once done)."""
    env = _home()
    mirror = Path(__file__).resolve().parent.parent / "shared" / "data"
    session.run("sppo-bench", "data", "pull", *(["--data-dir", str(mirror)] if mirror.is_dir() else []), env=env)
    session.run("sppo-bench", "models", "prepare", env=env)


@nox.session
def tests(session: nox.Session) -> None:
    prepare(session)
    workers = os.environ.get("SPPO_TEST_WORKERS", "2")
    session.run("pytest", "-n", workers, "--dist", "loadfile", *session.posargs, env=_home())


@nox.session
def lint(session: nox.Session) -> None:
    session.run("ruff", "check", "harness", "benchmarks", "tests", "noxfile.py")
    session.run("lint-imports")  # the dependency direction in .importlinter (ARCHITECTURE.md)


@nox.session
def typecheck(session: nox.Session) -> None:
    session.run("mypy", "harness")


@nox.session
def perf(session: nox.Session) -> None:
    """Speed and memory benchmarks, printing ratios against baselines measured side by side."""
    prepare(session)
    session.run("python", "-m", "tests.perf", *session.posargs, env=_home())


@nox.session
def gpu(session: nox.Session) -> None:
    """On a CUDA machine with the [vllm] extra installed (`pip install -e '.[vllm]'`): the embedded SmolLM2 on vLLM
    and on hf, IFEval limit 20 (lm-eval's own vllm model) + AlpacaEval limit 5 (our vllm backend); greedy answers
    compared item by item, wall seconds side by side (written to runs/engine-compare/compare.json)."""
    prepare(session)
    session.run("python", "-c", "import torch, vllm; assert torch.cuda.is_available(), 'no CUDA device'", env=_home())
    session.run("python", "-m", "tests.engine_compare", "--backends", "hf,vllm", "--device", "cuda",
                "--suites", "ifeval,alpaca_eval", "--limits", "20,5", *session.posargs, env=_home())
