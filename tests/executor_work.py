"""Units of work for executor tests: module-level so process pools, Ray and submitit can import them."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

from harness.io import atomic_write_text
from harness.records import Metric, Provenance, ResultRecord

N_ITEMS = 24


def item_score(checkpoint: str, suite: str, i: int, rounds: int = 200) -> float:
    """Deterministic, a little CPU per item (stands in for a generation + judgment)."""
    h = hashlib.sha256(f"{checkpoint}/{suite}/{i}".encode()).digest()
    for _ in range(rounds):
        h = hashlib.sha256(h).digest()
    return h[0] / 255


@dataclass(frozen=True)
class CachedItems:
    """Honours ctx.shard like a real runner: per-item results go through a content cache on shared disk."""

    cache_dir: str
    delay: float = 0.0

    def __call__(self, unit, ctx) -> ResultRecord:
        cache = Path(self.cache_dir)
        items = [i for i in range(N_ITEMS) if ctx.shard is None or i % ctx.shard[1] == ctx.shard[0]]
        computed = 0
        values = []
        for i in items:
            f = cache / f"{unit.model.checkpoint}-{unit.suite}-{i}.json"
            if f.exists():
                values.append(json.loads(f.read_text()))
            else:
                v = item_score(unit.model.checkpoint, unit.suite, i)
                atomic_write_text(f, json.dumps(v))
                values.append(v)
                computed += 1
        if ctx.shard is None:
            atomic_write_text(cache / f"computed-{unit.model.checkpoint}-{unit.suite}.txt", str(computed))
        if self.delay:
            time.sleep(self.delay)
        return ResultRecord(model=unit.model.label, suite=unit.suite, checkpoint=unit.model.checkpoint,
                            metrics={"score": Metric(value=round(100 * sum(values) / len(values), 6), n=len(values))},
                            provenance=Provenance(source="test"))


@dataclass(frozen=True)
class FailsOnMTBench(CachedItems):
    def __call__(self, unit, ctx) -> ResultRecord:
        if unit.suite == "mt_bench":
            raise RuntimeError("judge endpoint http://127.0.0.1:9/v1 refused the connection")
        return super().__call__(unit, ctx)


@dataclass(frozen=True)
class CpuBound:
    rounds: int = 200

    def __call__(self, unit, ctx) -> ResultRecord:
        total = 0.0
        for i in range(N_ITEMS):
            total += item_score(unit.model.checkpoint, unit.suite, i, self.rounds)
        return ResultRecord(model=unit.model.label, suite=unit.suite, metrics={"score": Metric(value=total)},
                            provenance=Provenance(source="test"))
