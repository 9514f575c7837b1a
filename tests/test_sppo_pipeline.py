"""The SPPO pipeline for real on a tiny random Llama: training moves the policy the right way, an interrupted run
resumes to the same result, NaN preference scores stop the iteration and keep the earlier ones."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from harness.settings import Settings
from harness.sppo import pipeline
from harness.sppo.config import SPPOConfig, parse_config
from harness.sppo.rank import Ranked

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    from harness.models import tiny_model

    return tiny_model(tmp_path_factory.mktemp("sppo-pipe") / "tiny")


def write_prompts(path: Path, n: int = 8) -> Path:
    path.write_text("".join(json.dumps({"id": f"p{i}", "prompt": f"Tell me one fact about the number {i}."}) + "\n"
                            for i in range(n)))
    return path


TRAIN = {"eta": 1.0, "learning_rate": 1e-5, "per_device_batch_size": 4, "global_batch_size": 4, "epochs": 3.0,
         "max_length": 128, "max_prompt_length": 64, "device": "cpu", "gradient_checkpointing": False}


def tiny_config(tiny: Path, prompts: Path, **train: object) -> SPPOConfig:
    section = "".join(f"{k} = {json.dumps(v)}\n" for k, v in {**TRAIN, **train}.items())
    return parse_config(f"""
name = "Tiny-SPPO"
[model]
base = "{tiny}"
[prompts]
source = "{prompts}"
parts = 1
[sampling]
k = 3
max_new_tokens = 8
batch_size = 12
[train]
{section}""", "test config")


class HashRanker:
    """A deterministic preference model: a response's score is a hash of its text, spread over [-3, 3]."""

    fingerprint = "test:hash-ranker"

    def __init__(self, nan_from_call: int | None = None) -> None:
        self.calls = 0
        self.nan_from_call = nan_from_call

    def rank(self, rows, progress=None):
        self.calls += 1
        bad = self.nan_from_call is not None and self.calls >= self.nan_from_call
        return [Ranked(r.prompt_id, [float("nan") if bad else _score(x) for x in r.responses]) for r in rows]


def _score(text: str) -> float:
    return int(hashlib.sha256(text.encode()).hexdigest()[:4], 16) / 0xFFFF * 6 - 3


def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", offline=True)


def sequence_logps(model_dir: Path, rows) -> tuple[list[float], list[float]]:
    """Summed log-probs of the chosen and rejected completions given the prompt, via the chat template."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok, model = AutoTokenizer.from_pretrained(model_dir), AutoModelForCausalLM.from_pretrained(model_dir).eval()
    out: dict[str, list[float]] = {"chosen": [], "rejected": []}
    for _, row in rows.iterrows():
        prompt = list(row["prompt"])
        prompt_ids = tok.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True, return_dict=False)
        for key in ("chosen", "rejected"):
            full = tok.apply_chat_template(prompt + list(row[key]), tokenize=True, return_dict=False)
            ids = torch.tensor([full])
            with torch.no_grad():
                logp = torch.log_softmax(model(ids).logits[0, :-1].float(), -1)
            targets = ids[0, 1:]
            token_logps = logp.gather(1, targets[:, None])[:, 0]
            out[key].append(float(token_logps[len(prompt_ids) - 1 :].sum()))
    return out["chosen"], out["rejected"]


def test_one_iteration_raises_the_chosen_log_ratio_over_the_rejected(tmp_path, tiny):
    cfg = tiny_config(tiny, write_prompts(tmp_path / "p.jsonl"))
    run = pipeline.run_training(cfg, tmp_path / "out", 1, settings(tmp_path), progress=False,
                                ranker_factory=HashRanker, log=lambda _: None)
    assert [it.iteration for it in run.iterations] == [1] and run.stopped is None
    frame = pd_read(run.out / "iter1" / "train.parquet")
    assert list(frame.columns[:7]) == ["prompt_id", "prompt", "chosen", "rejected", "chosen_probs",
                                       "chosen_probs_win", "chosen_probs_lose"]
    assert (frame["chosen_probs_win"] > 0.5).all() and (frame["chosen_probs_lose"] < 0.5).all()
    base_w, base_l = sequence_logps(tiny, frame)
    new_w, new_l = sequence_logps(run.checkpoints[0], frame)
    margins = [(nw - bw) - (nl - bl) for nw, bw, nl, bl in zip(new_w, base_w, new_l, base_l, strict=True)]
    assert sum(margins) / len(margins) > 0.05, margins
    meta = json.loads((run.checkpoints[0] / "sppo_checkpoint.json").read_text())
    assert meta["iteration"] == 1 and meta["parent"]["checkpoint"] == str(tiny)
    assert meta["data"]["dataset_sha256"] == hashlib.sha256((run.out / "iter1" / "train.parquet").read_bytes()).hexdigest()


def test_resume_after_an_interruption_gives_the_uninterrupted_result(tmp_path, tiny, monkeypatch):
    prompts = write_prompts(tmp_path / "p.jsonl")
    cfg = tiny_config(tiny, prompts, epochs=1.0)
    straight = pipeline.run_training(cfg, tmp_path / "a", 2, settings(tmp_path), progress=False,
                                     ranker_factory=HashRanker, log=lambda _: None)

    from harness.sppo import trainer

    real = trainer.train_iteration
    calls = {"n": 0}

    def crash_on_second(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("simulated kill during iteration 2 training")
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer, "train_iteration", crash_on_second)
    with pytest.raises(RuntimeError, match="simulated kill"):
        pipeline.run_training(cfg, tmp_path / "b", 2, settings(tmp_path), progress=False, ranker_factory=HashRanker,
                              log=lambda _: None)
    assert (tmp_path / "b" / "checkpoints" / "iter1").is_dir()
    assert not (tmp_path / "b" / "checkpoints" / "iter2").exists()
    monkeypatch.setattr(trainer, "train_iteration", real)

    lines: list[str] = []
    resumed = pipeline.run_training(cfg, tmp_path / "b", 2, settings(tmp_path), progress=False,
                                    ranker_factory=HashRanker, log=lines.append)
    reused = {(it.iteration, s.name) for it in resumed.iterations for s in it.steps if s.reused}
    assert reused == {(1, "prompts"), (1, "sample"), (1, "rank"), (1, "dataset"), (1, "train"),
                      (2, "prompts"), (2, "sample"), (2, "rank"), (2, "dataset")}
    for t in (1, 2):
        for name in ("samples.jsonl", "scores.jsonl", "train.parquet"):
            assert (tmp_path / "a" / f"iter{t}" / name).read_bytes() == (tmp_path / "b" / f"iter{t}" / name).read_bytes()
    digests = [json.loads((c / "sppo_checkpoint.json").read_text())["weights_sha256"]
               for c in (straight.checkpoints[1], resumed.checkpoints[1])]
    assert digests[0] == digests[1]

    # A changed input (the learning rate) redoes only the steps downstream of it.
    changed = tiny_config(tiny, prompts, epochs=1.0, learning_rate=2e-5)
    again = pipeline.run_training(changed, tmp_path / "b", 1, settings(tmp_path), progress=False,
                                  ranker_factory=HashRanker, log=lambda _: None)
    assert [s.name for s in again.iterations[0].steps if not s.reused] == ["train"]


def test_nan_scores_stop_that_iteration_and_keep_the_earlier_ones(tmp_path, tiny):
    cfg = tiny_config(tiny, write_prompts(tmp_path / "p.jsonl"), epochs=1.0)
    ranker = HashRanker(nan_from_call=2)
    run = pipeline.run_training(cfg, tmp_path / "out", 3, settings(tmp_path), progress=False,
                                ranker_factory=lambda: ranker, log=lambda _: None)
    assert [it.iteration for it in run.iterations] == [1]
    assert run.stopped and "iteration 2" in run.stopped and "NaN" in run.stopped
    assert (run.out / "checkpoints" / "iter1" / "model.safetensors").exists()
    assert not (run.out / "checkpoints" / "iter2").exists() and not (run.out / "iter2" / "train.parquet").exists()
    assert json.loads((run.out / "run.json").read_text())["iterations"][0]["iteration"] == 1


def pd_read(path: Path):
    import pandas as pd

    return pd.read_parquet(path)
