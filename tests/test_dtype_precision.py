"""Precision as a recorded setting: `--dtype auto` is the checkpoint's own dtype where this machine computes in it,
float32 otherwise; the resolved dtype is part of the backend fingerprint, the generation cache key and the unit key."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.backends import precision
from harness.backends.base import BackendOptions, ChatRequest, SamplingParams
from harness.backends.cache import with_cache
from harness.backends.hf import HFBackend
from harness.backends.precision import parse_cpu_flags, resolve_precision
from harness.engines.context import ModelRef, RunContext, RunOptions
from harness.errors import UserError
from harness.executors.units import Unit, unit_key
from harness.models import tiny_model
from harness.settings import Settings
from harness.store import RunDir

BF16_CPU = frozenset({"avx512f", "avx512_bf16"})
PLAIN_CPU = frozenset({"avx2", "avx512f"})
# a /proc/cpuinfo excerpt of this project's CI machine (Intel, AVX512-BF16)
CPUINFO = "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu vme avx2 avx512f avx512_bf16 avx_vnni\n\n"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def _declaring(tiny: Path, where: Path, dtype: str | None, key: str = "dtype") -> Path:
    """A copy of the tiny model whose config.json declares `dtype` under `key` (None: declares nothing)."""
    folder = where / f"declares-{dtype}-{key}"
    shutil.copytree(tiny, folder)
    config = json.loads((folder / "config.json").read_text())
    config.pop("dtype", None)
    config.pop("torch_dtype", None)
    if dtype is not None:
        config[key] = dtype
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_cpu_flags_are_read_from_cpuinfo():
    assert {"avx512_bf16", "avx_vnni"} <= parse_cpu_flags(CPUINFO)
    assert parse_cpu_flags("processor : 0\n") == frozenset()


@pytest.mark.parametrize(("declared", "key", "cpu", "expected"), [
    ("bfloat16", "dtype", BF16_CPU, "bfloat16"),
    ("bfloat16", "torch_dtype", BF16_CPU, "bfloat16"),  # what transformers < 4.56 wrote (the hub's SmolLM2 config)
    ("bfloat16", "dtype", PLAIN_CPU, "float32"),  # no native bfloat16: fall back, and say so
    ("float16", "dtype", BF16_CPU, "float32"),
    ("float32", "dtype", BF16_CPU, "float32"),
    (None, "dtype", BF16_CPU, "float32"),
])
def test_auto_is_the_checkpoints_own_dtype_where_the_cpu_has_it(tiny, tmp_path, declared, key, cpu, expected):
    folder = _declaring(tiny, tmp_path, declared, key)
    chosen = resolve_precision("auto", str(folder), "cpu", cpu_flags=cpu)
    assert (chosen.dtype, chosen.declared) == (expected, declared)
    assert chosen.reason
    if declared == "bfloat16" and cpu == PLAIN_CPU:
        assert "no native bfloat16" in chosen.reason


def test_an_explicit_dtype_is_honoured_and_a_bad_one_refused(tiny, tmp_path):
    folder = _declaring(tiny, tmp_path, "bfloat16")
    assert resolve_precision("float32", str(folder), "cpu", cpu_flags=BF16_CPU).dtype == "float32"
    assert resolve_precision("bfloat16", str(folder), "cpu", cpu_flags=PLAIN_CPU).dtype == "bfloat16"
    with pytest.raises(UserError, match="--dtype float8: choose one of auto, float32, bfloat16, float16"):
        resolve_precision("float8", str(folder), "cpu")


def test_the_backend_runs_in_the_resolved_dtype_and_its_fingerprint_names_it(tiny, tmp_path, monkeypatch):
    folder = _declaring(tiny, tmp_path, "bfloat16")
    monkeypatch.setattr(precision, "cpu_features", lambda: BF16_CPU)
    auto = HFBackend.load(BackendOptions(model=str(folder), device="cpu"))
    assert auto.precision.dtype == "bfloat16" and str(auto.model.dtype) == "torch.bfloat16"
    assert "@bfloat16:" in auto.fingerprint
    # auto resolved to bfloat16 computes exactly what an explicit bfloat16 does: one fingerprint
    assert auto.fingerprint == HFBackend.load(BackendOptions(model=str(folder), device="cpu", dtype="bfloat16")).fingerprint
    monkeypatch.setattr(precision, "cpu_features", lambda: PLAIN_CPU)
    fallback = HFBackend.load(BackendOptions(model=str(folder), device="cpu"))
    assert fallback.precision.dtype == "float32" and "@float32:" in fallback.fingerprint
    assert fallback.fingerprint != auto.fingerprint


def test_a_float32_and_a_bfloat16_run_never_share_a_cache_entry(tiny, tmp_path):
    request = [ChatRequest(({"role": "user", "content": "Write a short poem about the sea."},),
                           SamplingParams(max_new_tokens=12))]
    runs = {}
    for dtype in ("float32", "bfloat16", "float32"):
        backend = with_cache(HFBackend.load(BackendOptions(model=str(tiny), device="cpu", dtype=dtype)),
                             tmp_path / "cache.sqlite")
        runs.setdefault(dtype, []).append(backend.generate(request)[0])
    assert not runs["float32"][0].cached and not runs["bfloat16"][0].cached  # bfloat16 ran, not served float32's
    assert runs["float32"][1].cached and runs["float32"][1].text == runs["float32"][0].text


def test_the_resolved_dtype_is_part_of_the_unit_key(tiny, tmp_path, monkeypatch):
    folder = _declaring(tiny, tmp_path, "bfloat16")
    unit = Unit(ModelRef(str(folder), "tiny", fingerprint="f" * 64), "ifeval")

    def key(dtype: str) -> str:
        ctx = RunContext(settings=Settings(home=tmp_path / "home", offline=True), run=RunDir(tmp_path / "run"),
                         backend=BackendOptions(backend="hf", device="cpu", dtype=dtype), options=RunOptions())
        return unit_key(unit, ctx)

    monkeypatch.setattr(precision, "cpu_features", lambda: BF16_CPU)
    on_bf16_cpu = key("auto")
    assert on_bf16_cpu == key("auto") and on_bf16_cpu != key("float32")
    monkeypatch.setattr(precision, "cpu_features", lambda: PLAIN_CPU)
    # the same command on a CPU without bfloat16 runs in float32: another result, another key
    assert key("auto") != on_bf16_cpu
