"""df_gamed.csv (AlpacaEval's LC GLM needs it; hub-only): pulled from the hub when reachable or from a mirror,
never invented; where it lands is where the LC scorer reads it."""

from __future__ import annotations

import json

import pytest

from benchmarks.alpaca_eval.scoring import df_gamed_path
from harness.data import fetch
from harness.data.pulling import pull
from harness.settings import Settings
from tests.test_data import _no_pypi, wheel_cache  # noqa: F401  (session fixture reused)

CSV = b"model,index,preference,std_delta_len,instruction_difficulty,not_gamed_baseline\nm,0,1.5,0.1,0.2,True\n"


@pytest.fixture(autouse=True)
def _no_canonical_urls(monkeypatch):
    def unreachable(url_file):
        raise fetch.Unavailable(f"{url_file.url}: network disabled in tests")

    monkeypatch.setattr(fetch, "fetch_url", unreachable)


def test_df_gamed_from_the_hub_lands_where_lc_reads_it(tmp_path, shared_data, monkeypatch):
    calls = []

    def fake_hub_file(settings, repo, filename):
        calls.append((repo, filename))
        return CSV, "cafe1234"

    monkeypatch.setattr(fetch, "hub_file", fake_hub_file)
    monkeypatch.setattr(fetch, "wheel_file", _no_pypi)
    settings = Settings(home=tmp_path / "home", offline=False)
    [outcome] = pull(settings, ["alpaca_eval"], data_dir=shared_data)
    assert outcome.status == "pulled", outcome.message
    assert calls == [("tatsu-lab/alpaca_eval", "df_gamed.csv")]
    assert df_gamed_path(settings).read_bytes() == CSV
    manifest = json.loads((settings.data_dir / "alpaca_eval" / "manifest.json").read_text())
    lc = {p["name"]: p for p in manifest["parts"]}["lc"]
    assert lc["source"] == {"kind": "hub", "id": "tatsu-lab/alpaca_eval", "revision": "cafe1234", "sha256": None}


def test_offline_without_a_copy_lc_is_listed_missing_not_invented(tmp_path, shared_data, monkeypatch):
    monkeypatch.setattr(fetch, "wheel_file", _no_pypi)
    settings = Settings(home=tmp_path / "home", offline=True)
    [outcome] = pull(settings, ["alpaca_eval"], data_dir=shared_data)
    assert outcome.status == "pulled"
    assert not df_gamed_path(settings).exists()
    manifest = json.loads((settings.data_dir / "alpaca_eval" / "manifest.json").read_text())
    assert "HF_HUB_OFFLINE" in manifest["missing"]["lc"]


def test_df_gamed_from_a_mirror(tmp_path, shared_data, monkeypatch):
    monkeypatch.setattr(fetch, "wheel_file", _no_pypi)
    mirror = tmp_path / "mirror" / "alpaca_eval"
    mirror.mkdir(parents=True)
    (mirror / "results").symlink_to(shared_data / "alpaca_eval" / "results", target_is_directory=True)
    (mirror / "df_gamed.csv").write_bytes(CSV)
    settings = Settings(home=tmp_path / "home", offline=True)
    [outcome] = pull(settings, ["alpaca_eval"], data_dir=tmp_path / "mirror")
    assert outcome.status == "pulled", outcome.message
    assert df_gamed_path(settings).read_bytes() == CSV
    manifest = json.loads((settings.data_dir / "alpaca_eval" / "manifest.json").read_text())
    assert manifest["missing"] == {}
