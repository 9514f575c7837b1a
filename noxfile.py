"""nox sessions: tests, lint, typecheck, perf. All run in the current environment (`--no-venv` semantics):
the project's heavy, pinned stack is installed once per the README, not re-resolved per session."""

from __future__ import annotations

import os

import nox

nox.options.default_venv_backend = "none"
nox.options.sessions = ["lint", "typecheck", "tests"]

OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


@nox.session
def tests(session: nox.Session) -> None:
    workers = os.environ.get("SPPO_TEST_WORKERS", "2")
    session.run("pytest", "-n", workers, "--dist", "loadfile", *session.posargs, env=OFFLINE)


@nox.session
def lint(session: nox.Session) -> None:
    session.run("ruff", "check", "harness", "benchmarks", "tests", "noxfile.py")


@nox.session
def typecheck(session: nox.Session) -> None:
    session.run("mypy", "harness")


@nox.session
def perf(session: nox.Session) -> None:
    """Speed and memory benchmarks, printing ratios against baselines measured side by side."""
    session.run("python", "-m", "tests.perf", *session.posargs, env=OFFLINE)
