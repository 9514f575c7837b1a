"""What every record says about the software that produced it: package versions and the git commit."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

SCORING_PACKAGES = ("sppo-bench", "lm_eval", "alpaca-eval", "fschat", "scikit-learn", "pandas", "numpy")
"""Libraries whose version can change a number (scoring rules, metrics); part of every unit's content key."""
MODEL_PACKAGES = ("transformers", "torch", "tokenizers", "datasets", "trl", "vllm", "gguf")


def package_versions(names: Iterable[str] = SCORING_PACKAGES) -> dict[str, str]:
    """Installed version of each package that is installed (absent ones are left out)."""
    out = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


@cache
def git_sha() -> str | None:
    """HEAD of the checkout this package runs from, or None (an installed wheel, no git)."""
    repo = Path(__file__).resolve().parents[1]
    if not (repo / ".git").exists():
        return None
    try:
        done = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (done.stdout.strip() or None) if done.returncode == 0 else None
