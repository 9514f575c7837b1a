"""Tests that need the outside world: the Hugging Face Hub (network) and a paid judge API (paid). They skip with the
reason here; each has an offline stand-in that runs the same code against local data or a fake server:
- the hub default model and canonical data sources: tests/test_models.py, tests/test_data.py (PyPI/mirror sources);
- the official judges over the openai backend: tests/test_judge_openai.py (tests/openai_server.py)."""

from __future__ import annotations

import os

import pytest

from harness.settings import Settings


def _hub_or_skip() -> None:
    from harness.models import hub_reachable

    if os.environ.get("HF_HUB_OFFLINE") or not hub_reachable():
        pytest.skip("the Hugging Face Hub is not reachable from here (offline stand-ins: test_models, test_data)")


@pytest.mark.network
def test_the_embedded_default_is_the_hub_model_when_the_hub_is_reachable(tmp_path):
    from harness.models import DEFAULT_HUB_ID, DEFAULT_NAME, default_label, resolve_model

    _hub_or_skip()
    settings = Settings(home=tmp_path, offline=False)
    assert resolve_model(settings, None) == DEFAULT_HUB_ID and default_label(settings) == DEFAULT_NAME


@pytest.mark.network
def test_data_pull_from_the_canonical_hub_source(tmp_path):
    from harness.catalog import suites
    from harness.data import pull

    _hub_or_skip()
    suites()
    (outcome,) = pull(Settings(home=tmp_path, offline=False), ["ifeval"])
    assert outcome.status == "pulled", outcome.message


@pytest.mark.paid
def test_official_alpaca_eval_judge_on_two_items(cli, tmp_path, monkeypatch):
    """Two AlpacaEval items judged by gpt-4-1106-preview through the real API (costs a few cents)."""
    if not os.environ.get("OPENAI_API_KEY"):
        pytest.skip("OPENAI_API_KEY is not set (offline stand-in: tests/test_judge_openai.py on a fake server)")
    code, _, err = cli("eval", "--suites", "alpaca_eval", "--limit", "2", "--max-new-tokens", "32", "--judge",
                       "official", "--out", tmp_path / "run")
    assert code == 0, err
