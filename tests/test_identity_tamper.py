"""Identity by content is not defeated by a restored mtime (issue 21): flip one byte in the middle of a checkpoint's
weights, put the mtime back with os.utime, and a fresh identification (through the same fingerprint memo) differs, so
no unit counts as done and no cached generation is reused. The memo also re-reads sampled chunks on every hit."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from harness.identity import CHUNK, _FileHashes, identify, sample_offsets

EMBEDDED = Path(os.environ.get("SPPO_TEST_HOME", Path.home() / ".cache" / "sppo-bench")) / "models"


def flip_middle_byte_keeping_mtime(path: Path) -> None:
    st = path.stat()
    with path.open("r+b") as f:
        f.seek(st.st_size // 2)
        byte = f.read(1)
        f.seek(st.st_size // 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (st.st_size, st.st_mtime_ns, st.st_ino)


def true_fingerprint(folder: Path) -> str:
    return identify(folder, cache_db=None).sha256  # no memo: every file read in full


def test_a_byte_flip_with_the_mtime_restored_changes_the_identity(tmp_path):
    from harness.models import tiny_model

    model = tiny_model(tmp_path / "tiny")
    db = tmp_path / "fingerprints.sqlite"
    before = identify(model, cache_db=db).sha256
    assert identify(model, cache_db=db).sha256 == before == true_fingerprint(model)  # a memo hit
    flip_middle_byte_keeping_mtime(model / "model.safetensors")
    after = identify(model, cache_db=db).sha256
    assert after != before and after == true_fingerprint(model)


def test_a_hit_whose_sampled_chunk_changed_is_rehashed(tmp_path, monkeypatch):
    """Even with the whole stat key unchanged (here: ctime pinned by patching stat's view), a change inside a sampled
    chunk is caught on the next hit."""
    data = bytes(range(256)) * (5 * CHUNK // 256)  # 5 MiB: every chunk is sampled
    path = tmp_path / "w.bin"
    path.write_bytes(data)
    memo = _FileHashes(tmp_path / "fp.sqlite")
    assert memo.sha256(path) == hashlib.sha256(data).hexdigest()
    key_stat = path.stat()
    changed = bytearray(data)
    changed[3 * CHUNK + 17] ^= 1
    path.write_bytes(bytes(changed))
    real_stat = Path.stat
    monkeypatch.setattr(Path, "stat", lambda self, **kw: key_stat if self == path else real_stat(self, **kw))
    assert memo.sha256(path) == hashlib.sha256(bytes(changed)).hexdigest()
    assert sorted(sample_offsets(5 * CHUNK, "x")) == [k * CHUNK for k in range(5)]


def test_eval_after_an_mtime_preserving_flip_reruns_with_the_true_identity(cli, tmp_path, data_home, monkeypatch):
    from harness.models import tiny_model

    monkeypatch.setenv("SPPO_BENCH_HOME", str(data_home))
    model = tiny_model(tmp_path / "tiny")
    out = tmp_path / "run"
    args = ("eval", model, "--label", "tiny", "--judge-backend", "fake", "--suites", "mt_bench", "--limit", "1",
            "--max-new-tokens", "4", "--out", out)
    code, _, err = cli(*args)
    assert code == 0, err
    record = out / "records" / "tiny" / "mt_bench.json"
    first = json.loads(record.read_text())["provenance"]["checkpoint_sha256"]
    code, stdout, _ = cli(*args)
    assert code == 0 and "done already" in stdout
    flip_middle_byte_keeping_mtime(model / "model.safetensors")
    code, stdout, err = cli(*args)
    assert code == 0, err
    assert "done already" not in stdout  # the unit key (and the generation cache key) changed with the identity
    second = json.loads(record.read_text())["provenance"]["checkpoint_sha256"]
    assert second != first and second == true_fingerprint(model)


@pytest.mark.slow
def test_a_byte_flip_in_the_real_checkpoint_changes_its_identity(tmp_path):
    """The embedded 517 MB SmolLM2 checkpoint, copied (the flip must not touch the prepared one)."""
    found = sorted(EMBEDDED.glob("*/model.safetensors"))
    if not found:
        pytest.skip(f"no prepared checkpoint under {EMBEDDED} (run `sppo-bench models prepare`)")
    model = tmp_path / "model"
    shutil.copytree(found[0].parent, model)
    db = tmp_path / "fingerprints.sqlite"
    before = identify(model, cache_db=db).sha256
    assert identify(model, cache_db=db).sha256 == before
    flip_middle_byte_keeping_mtime(model / "model.safetensors")
    after = identify(model, cache_db=db).sha256
    assert after != before and after == true_fingerprint(model)
