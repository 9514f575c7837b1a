"""Shared test fixtures. Tests are offline and CPU-only; hub access is disabled for every test."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

for _k, _v in {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "TOKENIZERS_PARALLELISM": "false"}.items():
    os.environ.setdefault(_k, _v)

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def require_shared(relative: str = "data") -> Path:
    """A path under ../shared (published reference artifacts beside the checkout). Absent: a skip with the reason on a
    developer's machine, a failure in CI (CI=true), where the reproduction tests must run."""
    path = SHARED / relative
    if not path.exists():
        message = f"{path} is absent: the published reference artifacts sit beside the checkout"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message + " (CI must run the reproduction tests)")
        pytest.skip(message)
    return path


@pytest.fixture
def shared_data() -> Path:
    """../shared/data (published reference artifacts)."""
    return require_shared("data")


@pytest.fixture
def seed_card() -> Path:
    return require_shared("cards/Mistral7B-PairRM-SPPO-Iter1.md")


@pytest.fixture
def cli(capsys):
    """Run the CLI in-process: returns (exit code, stdout, stderr)."""
    from harness.cli import main

    def _run(*args: str) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return _run


@pytest.fixture(scope="module")
def data_home(tmp_path_factory) -> Path:
    """A cache home holding the judged suites' data, pulled from the published mirror (../shared/data) as `sppo-bench
    data pull --data-dir` does; one per test module (tests add caches to it)."""
    from harness.data import pull
    from harness.settings import Settings

    shared = require_shared("data")
    home = tmp_path_factory.mktemp("home")
    for outcome in pull(Settings(home=home, offline=True), ["alpaca_eval", "arena_hard", "mt_bench"], data_dir=shared):
        if outcome.status == "failed":
            pytest.fail(f"cannot pull {outcome.target} from the mirror: {outcome.message}")
    return home


@pytest.fixture(scope="module")
def published() -> dict[str, dict[int, dict]]:
    """task -> doc_id -> lm-eval's logged sample, from every published results file with embedded samples."""
    out: dict[str, dict[int, dict]] = {}
    for path in sorted(require_shared("data/published/lm_eval_samples").rglob("*.json")):
        for task, rows in (json.loads(path.read_text(encoding="utf-8")).get("samples") or {}).items():
            for row in rows:
                out.setdefault(task, {})[row["doc_id"]] = row
    return out
