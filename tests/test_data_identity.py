"""Data identity is the hash of the bytes read (issue 21, item 4): a pulled file edited afterwards (manifest untouched,
mtime restored) is refused with its path, the expected and the actual sha256, and a finished run is not "done already"
once a file it read has changed. Expected hashes are computed here with hashlib on the bytes."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from harness.data import pull, require
from harness.errors import UserError
from harness.settings import Settings
from tests.conftest import require_shared


def _flip_keep_mtime(path: Path) -> str:
    """Change one byte inside a JSON string (still valid JSONL), restore atime/mtime; return the new sha256."""
    st = path.stat()
    data = bytearray(path.read_bytes())
    i = data.index(b'"question": "') + len(b'"question": "')
    data[i] = ord("X") if data[i] != ord("X") else ord("Y")
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_mtime_ns == st.st_mtime_ns
    return hashlib.sha256(bytes(data)).hexdigest()


@pytest.fixture
def home(tmp_path) -> Settings:
    settings = Settings(home=tmp_path / "home", offline=True)
    outcome = pull(settings, ["truthfulqa_mc2"], data_dir=require_shared("data"))[0]
    assert outcome.status == "pulled", outcome.message
    return settings


def test_edited_pulled_file_is_refused_with_file_expected_and_actual(home):
    folder = require(home, "truthfulqa_mc2")  # hashes every file once; the memo remembers them
    path = folder / "multiple_choice" / "validation.jsonl"
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["parts"][0]["files"]["multiple_choice/validation.jsonl"]["sha256"] == expected

    actual = _flip_keep_mtime(path)
    with pytest.raises(UserError) as err:
        require(home, "truthfulqa_mc2")
    message = str(err.value)
    assert "\n" not in message and str(path) in message and expected in message and actual in message


def test_unit_key_follows_the_content(home, tmp_path):
    """The key of an lm-eval unit carries the data's identity by content: the same bytes give the same key, an edit
    (mtime kept) never gives the key of the finished unit."""
    from harness.backends.base import BackendOptions
    from harness.catalog import suites
    from harness.engines.context import ModelRef, RunContext, RunOptions
    from harness.executors.units import Unit, unit_key
    from harness.store import RunDir

    suites()
    ctx = RunContext(settings=home, run=RunDir(tmp_path / "run"), backend=BackendOptions(device="cpu"),
                     options=RunOptions(limit=2))
    unit = Unit(ModelRef(checkpoint="x", label="m"), "truthfulqa_mc2")
    before = unit_key(unit, ctx)
    assert unit_key(unit, ctx) == before
    path = home.data_dir / "truthfulqa_mc2" / "multiple_choice" / "validation.jsonl"
    original = path.read_bytes()
    _flip_keep_mtime(path)
    assert unit_key(unit, ctx) != before
    path.write_bytes(original)  # the same bytes again: the same key
    assert unit_key(unit, ctx) == before


def test_finished_run_is_not_done_already_after_the_file_changes(home, tmp_path, cli, monkeypatch):
    from harness.models import tiny_model

    model = tiny_model(tmp_path / "tiny")
    monkeypatch.setenv("SPPO_BENCH_HOME", str(home.home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    run = tmp_path / "run"
    args = ("eval", model, "--suites", "truthfulqa_mc2", "--limit", "2", "--out", run, "--dtype", "float32")
    code, out, err = cli(*args)
    assert code == 0, err
    code, out, _ = cli(*args)
    assert code == 0 and "done already" in out

    path = home.data_dir / "truthfulqa_mc2" / "multiple_choice" / "validation.jsonl"
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    actual = _flip_keep_mtime(path)
    code, out, err = cli(*args)
    assert code == 2 and "done already" not in out
    assert err.count("\n") == 1 and str(path) in err and expected in err and actual in err


def test_eval_data_dir_with_upstream_files_converts_once_and_resumes(tmp_path, cli, monkeypatch):
    """`eval --data-dir ../shared/data` on a data home without the suite: converted once (the manifest names the
    pinned source), the record's data identity is the pulled content, and the rerun is "done already"."""
    from harness.models import tiny_model

    shared = require_shared("data")
    home = tmp_path / "home"
    monkeypatch.setenv("SPPO_BENCH_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = tiny_model(tmp_path / "tiny")
    args = ("eval", model, "--suites", "truthfulqa_mc2", "--limit", "2", "--out", tmp_path / "run", "--dtype", "float32",
            "--data-dir", shared)
    code, out, err = cli(*args)
    assert code == 0, err
    manifest = json.loads((home / "data" / "truthfulqa_mc2" / "manifest.json").read_text())
    assert manifest["parts"][0]["source"]["revision"] == "sylinrl/TruthfulQA@013686a06be7"
    record = next((tmp_path / "run" / "records").rglob("truthfulqa_mc2.json"))
    assert json.loads(record.read_text())["provenance"]["dataset"]["source"] == str(home / "data" / "truthfulqa_mc2")
    code, out, err = cli(*args)
    assert code == 0 and "done already" in out, err
