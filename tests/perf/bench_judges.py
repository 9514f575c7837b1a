"""Judge throughput against a local OpenAI-compatible server with 100 ms latency per request, at concurrency C,
through the real `openai` backend and our judge runner (batches, cache); then the same judgments with a warm cache.

Targets (issue #5): cold >= 0.8 x C / latency judgments per second; warm rerun >= 50x faster than cold.
Run: `python -m tests.perf bench_judges`.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

LATENCY_S = 0.1


def main() -> None:
    from benchmarks.arena_hard import judging as arena
    from benchmarks.arena_hard.judging import OFFICIAL as ARENA_OFFICIAL
    from harness.backends import load_backend
    from harness.backends.base import BackendOptions, ChatRequest, SamplingParams
    from harness.judges.calls import JudgeCache, cache_namespace
    from harness.settings import Settings
    from tests.openai_server import judge_replies, openai_server

    for concurrency in (8, 16):
        with tempfile.TemporaryDirectory() as tmp, openai_server(judge_replies, latency_s=LATENCY_S) as server:
            settings = Settings(home=Path(tmp), offline=True)
            backend = load_backend(BackendOptions(backend="openai", base_url=server.url, model=ARENA_OFFICIAL.model,
                                                  api_key_env="", max_concurrency=concurrency, use_cache=False),
                                   settings)
            backend.generate([])  # imports (the openai SDK: ~1.5 s) are paid once per process: not timed here
            n_questions = 24 * concurrency  # two games each: 1.5 batches of the runner
            items = [{"question_id": f"q{i}", "question": f"question {i}", "answer": f"model answer {i}",
                      "baseline_answer": f"baseline answer {i}"} for i in range(n_questions)]
            cache = JudgeCache(settings.cache_db, cache_namespace(ARENA_OFFICIAL.id, "bench", backend.fingerprint))

            start = time.perf_counter()
            rows = arena.judge(ARENA_OFFICIAL, items, "m", backend, cache, concurrency, server.url)
            cold = time.perf_counter() - start
            n = sum(len(r["games"]) for r in rows)
            assert all(g["score"] == "A>B" for r in rows for g in r["games"]), "judgments lost or unparsed"
            calls = server.total

            start = time.perf_counter()
            arena.judge(ARENA_OFFICIAL, items, "m", backend, cache, concurrency, server.url)
            warm = time.perf_counter() - start
            assert server.total == calls, "a warm rerun must cost no calls"

            # baseline, side by side: the same number of bare requests through the backend alone (no judge layer)
            bare = [ChatRequest(({"role": "user", "content": f"bare {i}"},), SamplingParams()) for i in range(n)]
            start = time.perf_counter()
            backend.generate(bare)
            backend_only = n / (time.perf_counter() - start)

            ideal = concurrency / LATENCY_S
            ours = n / cold
            print(f"judge throughput C={concurrency}: ours {ours:.1f} judgments/s ({n} in {cold:.2f} s), "
                  f"bare backend {backend_only:.1f}/s, ideal C/latency {ideal:.1f}/s; ratio to ideal {ours / ideal:.2f} "
                  f"(target >= 0.80), to bare backend {ours / backend_only:.2f}")
            print(f"warm-cache rerun C={concurrency}: cold {cold:.3f} s, warm {warm:.4f} s, speed-up {cold / warm:.0f}x "
                  "(target >= 50x)")


if __name__ == "__main__":
    main()
