"""Step 5: each iteration saved as a loadable checkpoint, atomically.

A checkpoint folder holds safetensors weights, the tokenizer with its chat template, and `sppo_checkpoint.json`
(the run config, the iteration, the parent checkpoint, the dataset and prompts it was trained on, package versions).
It is written into a hidden sibling folder and renamed into place only when complete, so a crash or a full disk
leaves the previous checkpoint (and any older one at the same path) intact.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.io import atomic_write_text, ensure_dir, swap_folder

META_FILE = "sppo_checkpoint.json"


def save_checkpoint(model: Any, tokenizer: Any, dest: Path, meta: dict[str, Any]) -> Path:
    """Write model + tokenizer + metadata to `dest` atomically; returns `dest`. Adds `weights_sha256` to the meta."""
    dest = Path(dest)
    ensure_dir(dest.parent)
    tmp = dest.parent / f".{dest.name}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        _declare_dtype(tmp / "config.json", getattr(model, "declared_dtype", None))
        tokenizer.save_pretrained(tmp)
        if not getattr(tokenizer, "chat_template", None):
            raise UserError(f"{dest}: the tokenizer has no chat template to save; set model.chat_template in the config")
        full = {**meta, "weights_sha256": weights_digest(tmp)}
        atomic_write_text(tmp / META_FILE, json.dumps(full, indent=2, sort_keys=True, default=str) + "\n")
        _fsync_tree(tmp)
        swap_folder(tmp, dest)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise UserError(f"out of disk space while saving {dest}; nothing was replaced (earlier checkpoints are "
                            "intact): free space and rerun the same command to resume") from None
        raise UserError(f"cannot save checkpoint {dest} ({exc.__class__.__name__}: {exc}); earlier checkpoints "
                        "are intact: fix the cause and rerun to resume") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def _declare_dtype(config_path: Path, dtype: str | None) -> None:
    """save_pretrained writes the dtype of the weights (float32 master weights after mixed-precision training); write
    the dtype the model was trained at instead, so evaluation and the next iteration run at it
    (harness.backends.precision)."""
    if not dtype:
        return
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config.pop("torch_dtype", None)
    config["dtype"] = dtype
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def read_meta(checkpoint: Path) -> dict[str, Any] | None:
    path = Path(checkpoint) / META_FILE
    if not path.exists():
        return None
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data


def weights_digest(folder: Path) -> str:
    """sha256 over the safetensors files (names and bytes), in name order."""
    h = hashlib.sha256()
    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        raise UserError(f"{folder}: no safetensors weights were written; check the model and free disk space")
    for f in files:
        h.update(f.name.encode())
        with f.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _fsync_tree(folder: Path) -> None:
    for f in folder.iterdir():
        if f.is_file():
            with contextlib.suppress(OSError), open(f, "rb") as fh:
                os.fsync(fh.fileno())
