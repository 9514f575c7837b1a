"""lm-eval generation (IFEval's requests) through lm-eval's HFLM vs through sppo-bench's hf backend
(harness.engines.lmeval.generation), side by side in one process on the embedded SmolLM2-135M: wall time, CPU time of
this process (steadier on a shared machine), and whether the answers are equal.

Workload: the first N_PROMPTS IFEval prompts, chat-templated as the leaderboard task does, greedy, MAX_GEN tokens.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

N_PROMPTS = 16
MAX_GEN = 128
BATCH = 16


def main() -> None:
    import torch
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    from harness.engines.lmeval.generation import BatchedGenerationHFLM
    from harness.models import resolve_model
    from harness.settings import from_env

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    settings = from_env({**os.environ, "HF_HUB_OFFLINE": "1"})
    model = resolve_model(settings, None)
    data = Path(settings.data_dir) / "ifeval" / "train.jsonl"
    rows = [json.loads(line) for line in data.read_text().splitlines()[:N_PROMPTS]]
    arms = {"baseline HFLM (transformers.generate, batch 8)": HFLM(pretrained=model, device="cpu", dtype="float32",
                                                                    batch_size=8),
            f"ours (hf backend, batch {BATCH})": BatchedGenerationHFLM(pretrained=model, device="cpu", dtype="float32",
                                                                      batch_size=BATCH, generation_batch_size=BATCH)}
    tok = next(iter(arms.values())).tokenizer
    contexts = [tok.apply_chat_template([{"role": "user", "content": r["prompt"]}], add_generation_prompt=True,
                                        tokenize=False) for r in rows]
    answers, times = {}, {}
    for name, lm in arms.items():
        requests = [Instance("generate_until", {}, (c, {"until": [], "max_gen_toks": MAX_GEN, "do_sample": False}), i)
                    for i, c in enumerate(contexts)]
        wall, cpu = time.perf_counter(), time.process_time()
        answers[name] = lm.generate_until(requests, disable_tqdm=True)
        times[name] = (time.perf_counter() - wall, time.process_time() - cpu)
    (base_name, (bw, bc)), (our_name, (ow, oc)) = times.items()
    equal = sum(a == b for a, b in zip(*answers.values(), strict=True))
    print(f"{N_PROMPTS} IFEval prompts, {MAX_GEN} tokens, greedy, {torch.get_num_threads()} thread(s)")
    print(f"  {base_name}: {bw:.1f} s wall, {bc:.1f} s CPU")
    print(f"  {our_name}: {ow:.1f} s wall, {oc:.1f} s CPU")
    print(f"  ratio: {bw / ow:.2f}x wall, {bc / oc:.2f}x CPU; answers equal on {equal}/{N_PROMPTS}")
