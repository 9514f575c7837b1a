"""Secrets (judge API keys) come from the environment and never reach a file, a log or a report."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

MIN_SECRET = 8
"""Shorter values are not treated as keys (replacing "1" everywhere would garble text)."""


def secret_values(env_names: Sequence[str] = ("OPENAI_API_KEY",), environ: Mapping[str, str] | None = None) -> list[str]:
    """The values of the named variables and of every *_API_KEY variable, longest first."""
    env = os.environ if environ is None else environ
    named = [env[n] for n in env_names if len(env.get(n, "")) >= MIN_SECRET]
    keys = [v for k, v in env.items() if k.endswith("_API_KEY") and len(v) >= MIN_SECRET]
    return sorted(set(named + keys), key=len, reverse=True)


def redact(obj: Any, env_names: Sequence[str] = ("OPENAI_API_KEY",)) -> Any:
    """`obj` with every API key value found in the environment replaced by "***" in the strings nested in it."""
    secrets = secret_values(env_names)
    if not secrets:
        return obj

    def walk(x: Any) -> Any:
        if isinstance(x, str):
            for s in secrets:
                x = x.replace(s, "***")
            return x
        if isinstance(x, dict):
            return {k: walk(v) for k, v in x.items()}
        if isinstance(x, list | tuple):
            return [walk(v) for v in x]
        return x

    return walk(obj)
