"""A number is about the checkpoint its record names, end to end with no injected backend.

Two real tiny checkpoints that differ only in one perturbed weight tensor, evaluated in one `sppo-bench eval` call on
every engine (the three judged suites with a local judge, and an lm-eval suite), give different answer files and
records that name each checkpoint's content fingerprint. `train-and-eval` on the tiny model gives per-iteration answer
files that differ whenever the checkpoints' weights differ. Identity is by content: the same bytes at another path
share the fingerprint, a change in the middle of the weights does not.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from harness.identity import fingerprint
from harness.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures" / "lmeval"
JUDGED = ("alpaca_eval", "arena_hard", "mt_bench")


@pytest.fixture(scope="module")
def tiny_pair(tmp_path_factory) -> tuple[Path, Path]:
    """The tiny test model and a copy whose last MLP projection is perturbed (every other tensor byte-identical)."""
    import torch
    from safetensors.torch import load_file, save_file

    from harness.models import tiny_model

    root = tmp_path_factory.mktemp("pair")
    a = tiny_model(root / "a")
    b = root / "b"
    shutil.copytree(a, b)
    weights = load_file(str(b / "model.safetensors"))
    name = "model.layers.1.mlp.down_proj.weight"
    weights[name] = weights[name] + 2.0 * torch.randn(weights[name].shape, generator=torch.Generator().manual_seed(1))
    save_file(weights, str(b / "model.safetensors"), metadata={"format": "pt"})
    return a, b


def test_fingerprint_is_by_content_not_path(tiny_pair, tmp_path):
    a, b = tiny_pair
    moved = tmp_path / "elsewhere"
    shutil.copytree(a, moved)
    assert fingerprint(a) == fingerprint(moved)
    assert fingerprint(a) != fingerprint(b)
    assert fingerprint(a, chat_template="{{ messages }}") != fingerprint(a)


def test_loader_only_tokenizer_keys_do_not_change_the_fingerprint_and_real_ones_do(tiny_pair, tmp_path):
    """save_pretrained writes the loading call's `local_files_only` into tokenizer_config.json: the same weights saved
    online and offline must share a fingerprint (found by a clean-clone run that missed every cache entry)."""
    a, _ = tiny_pair
    offline, longer = tmp_path / "offline", tmp_path / "longer"
    for folder, key, value in ((offline, "local_files_only", True), (longer, "model_max_length", 7)):
        shutil.copytree(a, folder)
        config = json.loads((folder / "tokenizer_config.json").read_text())
        config[key] = value
        (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=1))
    assert fingerprint(offline) == fingerprint(a)
    assert fingerprint(longer) != fingerprint(a)


def test_a_change_in_the_middle_of_the_weights_changes_the_fingerprint(tmp_path):
    """The old identity hashed the first and last MiB: two files differing only in the middle shared cache entries."""
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    data = bytearray(os.urandom(5 << 20))
    (folder / "model.safetensors").write_bytes(bytes(data))
    before = fingerprint(folder, cache_db=tmp_path / "fp.sqlite")
    data[len(data) // 2] ^= 0xFF
    (folder / "model.safetensors").write_bytes(bytes(data))
    assert fingerprint(folder, cache_db=tmp_path / "fp.sqlite") != before


@pytest.mark.slow
def test_one_eval_call_two_checkpoints_every_engine(tiny_pair, data_home, tmp_path, cli, monkeypatch):
    a, b = tiny_pair
    home = data_home
    monkeypatch.setenv("SPPO_BENCH_HOME", str(home))
    out = tmp_path / "run"
    code, _, err = cli("eval", a, b, "--label", "A", "--label", "B", "--suites", ",".join((*JUDGED, "gsm8k")),
                       "--limit", "2", "--max-new-tokens", "12", "--judge", "local", "--judge-model", a,
                       "--data-dir", FIXTURES, "--batch-size", "4", "--out", out)
    assert code == 0, err
    from harness.store import RunDir

    run = RunDir(out)
    for suite in (*JUDGED, "gsm8k"):
        ra, rb = run.find("A", None, suite), run.find("B", None, suite)
        assert ra is not None and rb is not None and ra.status != "failed" and rb.status != "failed", suite
        assert ra.provenance.checkpoint_sha256 == fingerprint(a, cache_db=home / "fingerprints.sqlite")
        assert rb.provenance.checkpoint_sha256 == fingerprint(b, cache_db=home / "fingerprints.sqlite")
        assert _answers(run, "A", suite) != _answers(run, "B", suite), f"{suite}: both checkpoints answered alike"
    assert run.find("A", None, "alpaca_eval").judge.fingerprint == run.find("B", None, "alpaca_eval").judge.fingerprint


def _answers(run, label: str, suite: str) -> list[str]:
    """The answers a checkpoint gave, from the suite's upstream-format files (lm-eval: its logged responses)."""
    folder = run.samples_dir(label, None, suite)
    if suite == "alpaca_eval":
        return [o["output"] for o in json.loads((folder / "model_outputs.json").read_text())]
    if suite in ("arena_hard", "mt_bench"):
        rows = [json.loads(x) for x in next((folder / "model_answer").glob("*.jsonl")).read_text().splitlines()]
        return [str(r["choices"][0]["turns"]) for r in rows]
    rows = [json.loads(x) for p in sorted(folder.glob("samples_*.jsonl")) for x in p.read_text().splitlines()]
    return [str(r["resps"]) for r in rows]


@pytest.mark.slow
def test_train_and_eval_iterations_answer_with_their_own_weights(tiny_pair, data_home, tmp_path, cli, monkeypatch):
    home = data_home
    from harness.models import default_model_dir

    embedded = Path(os.environ.get("SPPO_BENCH_HOME") or Path.home() / ".cache" / "sppo-bench")
    if not (default_model_dir(Settings(home=embedded, offline=True)) / "config.json").is_file():
        pytest.skip("the embedded default (the local judge) is not prepared; run `sppo-bench models prepare`")
    train_home = tmp_path / "home"
    shutil.copytree(home / "data", train_home / "data")
    (train_home / "models").symlink_to(embedded / "models", target_is_directory=True)
    monkeypatch.setenv("SPPO_BENCH_HOME", str(train_home))
    a, _ = tiny_pair
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"Name a color, number {i}."}) + "\n" for i in range(4)))
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(f"""
name = "Tiny-SPPO"
[model]
base = "{a}"
[prompts]
source = "{prompts}"
parts = 1
[sampling]
k = 2
max_new_tokens = 6
[train]
eta = 1.0
learning_rate = 0.05
per_device_batch_size = 2
global_batch_size = 2
max_length = 96
max_prompt_length = 64
device = "cpu"
gradient_checkpointing = false
[eval]
suites = ["alpaca_eval", "mt_bench"]
limit = 2
max_new_tokens = 8
judge = "local"
""")
    out = tmp_path / "out"
    code, stdout, err = cli("train-and-eval", "--iters", "2", "--config", cfg, "--out", out, "--no-progress")
    assert code == 0, err
    from harness.store import RunDir

    run = RunDir(out / "eval")
    labels = ["Tiny-SPPO Iter 1", "Tiny-SPPO Iter 2", a.name]
    for suite in ("alpaca_eval", "mt_bench"):
        records = {label: run.find(label, None, suite) for label in labels}
        assert all(r is not None for r in records.values()), (suite, stdout)
        shas = {label: r.provenance.checkpoint_sha256 for label, r in records.items()}
        for x in labels:
            for y in labels:
                if x < y and shas[x] != shas[y]:
                    assert _answers(run, x, suite) != _answers(run, y, suite), f"{suite}: {x} and {y} answered alike"
        assert len(set(shas.values())) >= 2  # training moved the weights at least once (identical samples give the
        # soft SPPO loss a zero gradient, so an iteration may legitimately leave them as they were)


def test_multiple_choice_log_likelihoods_follow_the_weights(tiny_pair, data_home, tmp_path, cli, monkeypatch):
    """lm-eval's log-likelihood requests (GPQA's options, scored through the hf backend's prefix reuse) give each
    checkpoint its own log-probabilities, and each record names its checkpoint's content."""
    a, b = tiny_pair
    monkeypatch.setenv("SPPO_BENCH_HOME", str(data_home))
    out = tmp_path / "run"
    code, _, err = cli("eval", a, b, "--label", "A", "--label", "B", "--suites", "gpqa", "--limit", "2",
                       "--data-dir", FIXTURES, "--batch-size", "4", "--out", out)
    assert code == 0, err
    from harness.store import RunDir

    run = RunDir(out)
    for label, path in (("A", a), ("B", b)):
        record = run.find(label, None, "gpqa")
        assert record is not None and record.status != "failed"
        assert record.provenance.checkpoint_sha256 == fingerprint(path, cache_db=data_home / "fingerprints.sqlite")
    answers = {label: _answers(run, label, "gpqa") for label in ("A", "B")}
    assert answers["A"] and len(answers["A"]) == len(answers["B"])
    assert all(x != y for x, y in zip(answers["A"], answers["B"], strict=True))  # every option's log-prob moved
