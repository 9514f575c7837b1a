"""SPPO training speed: ours (soft loss, reference log-probs precomputed once) vs TRL's
`DPOTrainer(loss_type="sppo_hard")` (reference model run on every batch), same model, data, batch and settings;
then the wall time per step of `sppo-bench train --iters 1` on the default profile.

Run: `python -m tests.perf bench_sppo`. Set SPPO_PERF_TRAIN_AND_EVAL=1 to also time `train-and-eval --iters 3`.
Uses the embedded SmolLM2-135M-Instruct when SPPO_BENCH_HOME holds it, else a tiny random model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROWS = 32
BATCH = 8
ROUNDS = 2
TARGET = 1.0


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    with tempfile.TemporaryDirectory(prefix="bench-sppo-") as tmp:
        compare_training(Path(tmp))
        _time_cli(Path(tmp) / "train", ["train", "--iters", "1"])
        if os.environ.get("SPPO_PERF_TRAIN_AND_EVAL"):
            _time_cli(Path(tmp) / "tae", ["train-and-eval", "--iters", "3"])


def compare_training(tmp: Path) -> float:
    """Ours vs TRL, alternating over ROUNDS rounds (a shared machine's load drifts); best round of each."""
    model = _model(tmp)
    print(f"model: {model}; {ROWS} preference rows, batch {BATCH}, 1 epoch, CPU float32, {ROUNDS} rounds", flush=True)
    theirs, ours = [], []
    for r in range(ROUNDS):
        theirs.append(_time_training(model, tmp / f"trl{r}", ours=False))
        ours.append(_time_training(model, tmp / f"ours{r}", ours=True))
        print(f"  round {r + 1}: ours {ours[-1]:.3f} samples/s, TRL sppo_hard {theirs[-1]:.3f} samples/s", flush=True)
    ratio = max(ours) / max(theirs)
    print(f"sppo training: ours {max(ours):.3f} samples/s, baseline TRL sppo_hard {max(theirs):.3f} samples/s, "
          f"ratio {ratio:.2f}x (target >= {TARGET}x)", flush=True)
    return ratio


def _model(tmp: Path) -> str:
    from harness.models import tiny_model
    from harness.settings import from_env

    settings = from_env()
    embedded = settings.models_dir / "SmolLM2-135M-Instruct"
    return str(embedded) if (embedded / "config.json").exists() else str(tiny_model(tmp / "tiny"))


def _rows() -> list[dict]:
    topics = ["rivers", "bread", "trains", "stars", "music", "gardens", "chess", "rain"]
    rows = []
    for i in range(ROWS):
        topic = topics[i % len(topics)]
        rows.append({
            "prompt": [{"role": "user", "content": f"Write two sentences about {topic} (case {i})."}],
            "chosen": [{"role": "assistant", "content": f"{topic.capitalize()} shape daily life in quiet ways. "
                                                        f"People notice them most when they are gone, case {i}."}],
            "rejected": [{"role": "assistant", "content": f"I like {topic}. That is all, case {i}."}],
            "chosen_probs": 0.7, "chosen_probs_win": 0.8, "chosen_probs_lose": 0.3,
        })
    return rows


def _time_training(model_dir: str, out: Path, ours: bool) -> float:
    """Samples per second over the whole job: trainer construction (incl. any reference precompute) + training."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    from harness.sppo.config import TrainConfig
    from harness.sppo.trainer import SPPOTrainer, dpo_config

    torch.manual_seed(0)
    cfg = TrainConfig(eta=1000.0, learning_rate=5e-7, per_device_batch_size=BATCH, global_batch_size=BATCH,
                      max_length=256, max_prompt_length=128, device="cpu", gradient_checkpointing=False)
    args = dpo_config(cfg, out)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(model_dir)
    data = Dataset.from_list(_rows())
    start = time.perf_counter()
    if ours:
        trainer: DPOTrainer = SPPOTrainer(model=model, args=args, train_dataset=data, processing_class=tok,
                                          max_prompt_length=cfg.max_prompt_length)
    else:
        # The same settings, TRL's own loss path: no precompute (a reference model forward per batch), weight 1.
        baseline: DPOConfig = dpo_config(cfg, out)
        baseline.precompute_ref_log_probs = False
        baseline.loss_weights = None
        trainer = DPOTrainer(model=model, args=baseline, train_dataset=data, processing_class=tok)
    trainer.train()
    return ROWS / (time.perf_counter() - start)


def _time_cli(out: Path, command: list[str]) -> None:
    """Run the CLI on the default profile in a fresh process; print the wall time of each step."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", "from harness.cli import run; run()", *command, "--out", str(out),
                           "--no-progress"], capture_output=True, text=True, check=False)
    total = time.perf_counter() - start
    name = " ".join(["sppo-bench", *command])
    if proc.returncode != 0:
        print(f"{name}: exit {proc.returncode} after {total:.0f} s: {proc.stderr.strip().splitlines()[-1:]}")
        return
    steps = []
    for record in sorted(out.glob("iter*/steps/*.json")):
        data = json.loads(record.read_text())
        steps.append(f"{record.parent.parent.name}/{data['step']} {data['seconds']:.1f}s")
    print(f"{name} (default profile): {total:.0f} s wall in all; steps: {', '.join(steps)}", flush=True)


if __name__ == "__main__":
    main()
