"""Which floating-point precision a checkpoint runs in: its own, where this machine computes in it.

`--dtype auto` (the default) means the dtype the checkpoint's config.json declares (`dtype`, or `torch_dtype` as
transformers < 4.56 wrote it), as the Open LLM Leaderboard evaluates models at their own precision; bfloat16 for
SmolLM2. On a CPU it is used only where the CPU computes bfloat16 natively (AVX512-BF16 or AMX); elsewhere, and for
float16 on CPU, the run falls back to float32 and says so in `Precision.reason`. An explicit --dtype is honoured
as given. The resolved dtype is part of every backend fingerprint, generation cache key, unit key and record, so a
float32 and a bfloat16 run of the same checkpoint never share a result.

Generation, lm-eval scoring and local judging load the weights in the resolved dtype; training keeps float32 master
weights and runs the forward and backward passes under bfloat16 autocast (harness/sppo/trainer.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from harness.errors import UserError

DTYPES = ("auto", "float32", "bfloat16", "float16")
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
"""/proc/cpuinfo flags of x86 CPUs with native bfloat16 matrix instructions (oneDNN uses them)."""


@dataclass(frozen=True)
class Precision:
    dtype: str
    """"float32", "bfloat16" or "float16": what the weights are loaded in and the matmuls run in."""
    declared: str | None
    """What the checkpoint's config declares (None: nothing, or a hub id not in the local cache)."""
    reason: str
    """One line: why this dtype (recorded in provenance)."""

    def as_dict(self) -> dict[str, str | None]:
        return {"dtype": self.dtype, "declared": self.declared, "reason": self.reason}


def resolve_precision(requested: str, checkpoint: str | None, device: str,
                      cpu_flags: frozenset[str] | None = None) -> Precision:
    """The dtype a run of `checkpoint` on `device` ("cpu", "cuda[:N]"; resolve "auto" first) uses for `requested`."""
    if requested not in DTYPES:
        raise UserError(f"--dtype {requested}: choose one of {', '.join(DTYPES)}")
    declared = declared_dtype(checkpoint) if checkpoint else None
    if requested != "auto":
        return Precision(requested, declared, "--dtype given")
    if device.startswith("cuda"):
        return _cuda_precision(declared)
    flags = cpu_flags if cpu_flags is not None else cpu_features()
    native = sorted(flags & set(CPU_BF16_FLAGS))
    if declared == "bfloat16":
        if native:
            return Precision("bfloat16", declared, f"the checkpoint's own dtype (CPU has {', '.join(native)})")
        return Precision("float32", declared, "the checkpoint declares bfloat16 but this CPU has no native bfloat16 "
                                              "(no avx512_bf16/amx_bf16): float32")
    if declared == "float16":
        return Precision("float32", declared, "the checkpoint declares float16, which CPUs compute slowly: float32")
    if declared == "float32":
        return Precision("float32", declared, "the checkpoint's own dtype")
    return Precision("float32", declared, "the checkpoint declares no dtype: float32")


def options_dtype(backend: str, dtype: str, device: str, checkpoint: str) -> str:
    """The dtype a local backend (hf, vllm) runs the resolved `checkpoint` in, as records and keys name it; an API
    backend's dtype option as given."""
    if backend not in ("hf", "vllm"):
        return dtype
    return resolve_precision(dtype, checkpoint, resolve_device(device)).dtype


def resolve_device(device: str) -> str:
    """`auto` -> cuda when a GPU is visible, else cpu; other values as given."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def declared_dtype(checkpoint: str) -> str | None:
    """The dtype a checkpoint's config.json declares, normalized to a torch dtype name; None if none or unreadable."""
    path = Path(checkpoint).expanduser() / "config.json"
    if not path.is_file():
        path = _hub_config(checkpoint)  # type: ignore[assignment]
        if path is None:
            return None
    return _read_declared(str(path), path.stat().st_mtime_ns)


@lru_cache(maxsize=64)
def _read_declared(path: str, _mtime: int) -> str | None:
    try:
        config = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    value = config.get("dtype") or config.get("torch_dtype")
    if not isinstance(value, str):
        return None
    value = _ALIASES.get(value.removeprefix("torch."), value.removeprefix("torch."))
    return value if value in DTYPES[1:] else None


_ALIASES = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32", "float": "float32"}


def _hub_config(hub_id: str) -> Path | None:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    try:
        found = try_to_load_from_cache(hub_id, "config.json")
    except Exception:  # an id the hub library refuses: nothing declared here
        return None
    return Path(found) if isinstance(found, str) else None


@lru_cache(maxsize=1)
def cpu_features() -> frozenset[str]:
    """This CPU's feature flags (Linux /proc/cpuinfo); empty elsewhere, so other platforms fall back to float32."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    return parse_cpu_flags(text)


def parse_cpu_flags(cpuinfo: str) -> frozenset[str]:
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def _cuda_precision(declared: str | None) -> Precision:
    import torch

    bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if declared in ("float32", "float16"):
        return Precision(declared, declared, "the checkpoint's own dtype")
    if declared == "bfloat16" and not bf16:
        return Precision("float16", declared, "the checkpoint declares bfloat16; this GPU has none: float16")
    if declared == "bfloat16":
        return Precision("bfloat16", declared, "the checkpoint's own dtype")
    return Precision("bfloat16" if bf16 else "float16", declared, "the checkpoint declares no dtype: the GPU's "
                                                                  "half precision")
