"""Greedy answers of one checkpoint through our backends (`harness.backends`): `python -m tests.vllm_cpu_generate
BACKEND MODEL OUT.json` writes 8 answers with load and generate seconds; `--compare A.json B.json` prints how many
answers are identical and both speeds. `nox -s vllm_cpu` runs it with hf (the project's venv) and vllm (vLLM's CPU
build, `vllm-cpu`, in its own venv: it pins its own transformers). vLLM spawns workers: keep the __main__ guard."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

PROMPTS = ["What is the capital of France?", "Give three tips for staying healthy.", "Write a haiku about the sea.",
           "Explain what a prime number is.", "How do I boil an egg?", "Name two uses of copper.",
           "Translate 'good morning' into Spanish.", "What is 12 times 12?"]


def generate(backend: str, model: str, out: Path, home: Path) -> None:
    from harness.backends import load_backend
    from harness.backends.base import BackendOptions, ChatRequest, SamplingParams
    from harness.settings import Settings

    extra = {"max_model_len": "2048"} if backend == "vllm" else {}
    opts = BackendOptions(backend=backend, model=model, device="cpu", dtype="float32", batch_size=8, extra=extra,
                          use_cache=False)
    start = time.monotonic()
    chat = load_backend(opts, Settings(home=home, offline=True))
    loaded = time.monotonic()
    done = chat.generate([ChatRequest(({"role": "user", "content": p},), SamplingParams(temperature=0.0,
                                                                                       max_new_tokens=64))
                          for p in PROMPTS])
    end = time.monotonic()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"backend": backend, "load_s": round(loaded - start, 1), "generate_s": round(end - loaded, 1),
                               "tokens": sum(c.completion_tokens for c in done), "texts": [c.text for c in done]},
                              indent=1))


def compare(a: Path, b: Path) -> int:
    left, right = json.loads(a.read_text()), json.loads(b.read_text())
    same = sum(x == y for x, y in zip(left["texts"], right["texts"], strict=True))
    print(f"{same}/{len(left['texts'])} greedy answers identical ({left['backend']} vs {right['backend']})")
    for side in (left, right):
        print(f"{side['backend']:5s} load {side['load_s']} s, generate {side['generate_s']} s for {side['tokens']} tokens "
              f"({side['tokens'] / max(side['generate_s'], 1e-9):.0f} tok/s)")
    return 0 if same == len(left["texts"]) else 1


if __name__ == "__main__":
    if sys.argv[1] == "--compare":
        sys.exit(compare(Path(sys.argv[2]), Path(sys.argv[3])))
    import os

    home = Path(os.environ.get("SPPO_BENCH_HOME") or Path.home() / ".cache" / "sppo-bench")
    generate(sys.argv[1], sys.argv[2], Path(sys.argv[3]), home)
