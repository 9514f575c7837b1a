"""Shared test fixtures. Tests are offline and CPU-only; hub access is disabled for every test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

for _k, _v in {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "TOKENIZERS_PARALLELISM": "false"}.items():
    os.environ.setdefault(_k, _v)

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture
def shared_data() -> Path:
    """../shared/data (published reference artifacts); skip with the reason when this checkout has none beside it."""
    path = SHARED / "data"
    if not path.is_dir():
        pytest.skip(f"{path} is absent: the published reference artifacts sit beside the checkout")
    return path


@pytest.fixture
def seed_card() -> Path:
    path = SHARED / "cards" / "Mistral7B-PairRM-SPPO-Iter1.md"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    return path


@pytest.fixture
def cli(capsys):
    """Run the CLI in-process: returns (exit code, stdout, stderr)."""
    from harness.cli import main

    def _run(*args: str) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return _run
