"""`sppo-bench compare` on two synthetic runs of the 15 suites at full size (IFEval 541, BBH 5,761 in 24 subtasks,
MMLU 14,042 in 57, MMLU-Pro 12,032, HellaSwag 10,042, AlpacaEval 805, Arena-Hard 500, MT-Bench 80 x 2, ...) with
10,000 paired resamples per suite. Target (issue #12): <= 10 s on 2 cores.

Baselines, side by side: upstream's Arena-Hard bootstrap (100 scikit-learn Bradley-Terry refits on resampled battles)
against our closed-form refits of the same suite; and the textbook Python loop of a paired bootstrap (10,000 x draw
indices, recompute both means) on MMLU against ours. Run: `python -m tests.perf bench_compare`.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

RESAMPLES = 10_000
TARGET_S = 10.0


def main() -> None:
    from harness.compare import Side, compare
    from harness.sides import load_side
    from tests.fixtures.synthetic_runs import ALL_SUITES, write_pair

    with tempfile.TemporaryDirectory() as tmp:
        write_pair(Path(tmp) / "A", Path(tmp) / "B", ALL_SUITES, seed=1)
        start = time.perf_counter()
        a, b = load_side(Path(tmp) / "A"), load_side(Path(tmp) / "B")
        loaded = time.perf_counter() - start
        rows = compare(a, b, resamples=RESAMPLES, seed=0)
        total = time.perf_counter() - start
    n_items = sum(len(v) for v in a.items.values())
    print(f"compare, {len(ALL_SUITES)} suites, {n_items} items per side, {RESAMPLES} resamples, {len(rows)} rows: "
          f"{total:.2f} s ({loaded:.2f} s reading records + items.jsonl, {total - loaded:.2f} s statistics); "
          f"target <= {TARGET_S:.0f} s: {'met' if total <= TARGET_S else 'MISSED'}")

    def one(suite: str) -> float:
        t = time.perf_counter()
        compare(Side("A", "", {suite: a.records[suite]}, a.items), Side("B", "", {suite: b.records[suite]}, b.items),
                resamples=RESAMPLES)
        return time.perf_counter() - t

    _arena_baseline(a.items["arena_hard"], one("arena_hard"))
    _loop_baseline(a.items["mmlu"], b.items["mmlu"], one("mmlu"))


def _arena_baseline(rows: list, ours_s: float) -> None:
    from benchmarks.arena_hard.scoring import battles_from_judgments, bootstrap_elo

    judgments = [{"question_id": r.item, "model": "m", "games": [{"score": g} for g in r.games or []]} for r in rows]
    battles = battles_from_judgments(judgments)
    start = time.perf_counter()
    bootstrap_elo(battles, num_round=100)
    upstream_s = time.perf_counter() - start
    per_upstream, per_ours = upstream_s / 100, ours_s / RESAMPLES
    print(f"arena_hard Bradley-Terry refits: upstream sklearn 100 refits {upstream_s:.2f} s ({1e3 * per_upstream:.1f} ms "
          f"each, 10,000 would take {per_upstream * RESAMPLES:.0f} s); ours 10,000 paired refits (both sides) "
          f"{ours_s:.2f} s ({1e6 * per_ours:.1f} us each); ratio per refit {per_upstream / per_ours:.0f}x")


def _loop_baseline(rows_a: list, rows_b: list, ours_s: float) -> None:
    a = np.array([r.scores["acc"] for r in rows_a])
    b = np.array([r.scores["acc"] for r in rows_b])
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(RESAMPLES):
        idx = rng.integers(0, len(a), size=len(a))
        _ = b[idx].mean() - a[idx].mean()
    loop_s = time.perf_counter() - start
    print(f"mmlu paired bootstrap ({len(a)} items, {RESAMPLES} resamples): textbook numpy loop {loop_s:.2f} s "
          f"(one metric); ours {ours_s:.2f} s (both mmlu metrics, McNemar, stratified by subject); "
          f"ratio {loop_s / ours_s:.1f}x")


if __name__ == "__main__":
    main()
