"""The SPPO training summary of a `train-and-eval` / `train` folder (layout in harness.sppo.pipeline): per iteration,
the prompts, the sampled responses, the preference model's ranking and the training loss, read from the files the
pipeline wrote. A file that is missing (an iteration that stopped early) leaves its numbers empty, never invented."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean
from typing import Any

from harness.errors import UserError
from harness.io import read_text
from harness.sppo.checkpoint import META_FILE

_ITER_DIR = re.compile(r"^iter(\d+)$")
STEPS = ("prompts", "sample", "rank", "dataset", "train")


@dataclass
class IterationSummary:
    iteration: int
    folder: Path
    prompts: int | None = None
    responses: int | None = None
    per_prompt: int | None = None
    """K: responses sampled per prompt (the most any prompt has)."""
    truncated: int | None = None
    """Responses that stopped at the token cap (finish reason "length")."""
    ranked: int | None = None
    score_gap: float | None = None
    """Mean over prompts of the best minus the worst response's preference score."""
    nonfinite_scores: int | None = None
    train_steps: int | None = None
    first_loss: float | None = None
    last_loss: float | None = None
    train_loss: float | None = None
    """TRL's mean training loss over the iteration."""
    last_margin: float | None = None
    """TRL's rewards/margins at the last logged step (beta x shifted log-ratio margin, see train_log_note)."""
    seconds: dict[str, float] = field(default_factory=dict)
    checkpoint: Path | None = None
    weights_sha256: str | None = None
    loss: str | None = None
    """The loss the checkpoint's provenance names."""

    def file(self, name: str) -> Path:
        return self.folder / name


@dataclass
class TrainingSummary:
    out: Path
    name: str
    base: str
    ranker: str
    loss: str | None
    iterations: list[IterationSummary]


def training_summary(out: Path) -> TrainingSummary:
    manifest = _json(out / "run.json")
    if not isinstance(manifest, dict):
        raise UserError(f"{out / 'run.json'}: not a train-and-eval manifest; pass the folder `sppo-bench train` wrote")
    config = manifest.get("config") or {}
    ranker = config.get("ranker") or {}
    folders = sorted((int(m[1]), p) for p in out.iterdir() if p.is_dir() and (m := _ITER_DIR.match(p.name)))
    iterations = [_iteration(out, t, folder) for t, folder in folders]
    loss = next((it.loss for it in iterations if it.loss), None)
    return TrainingSummary(out=out, name=str(config.get("name") or out.name), base=str(manifest.get("base", "?")),
                           ranker=" ".join(str(v) for v in (ranker.get("kind"), ranker.get("model")) if v) or "?",
                           loss=loss, iterations=iterations)


def _iteration(out: Path, t: int, folder: Path) -> IterationSummary:
    it = IterationSummary(iteration=t, folder=folder)
    if (folder / "prompts.jsonl").is_file():
        it.prompts = len(_jsonl(folder / "prompts.jsonl"))
    if (folder / "samples.jsonl").is_file():
        samples = _jsonl(folder / "samples.jsonl")
        it.responses = sum(len(s.get("responses", [])) for s in samples)
        it.per_prompt = max((len(s.get("responses", [])) for s in samples), default=0)
        it.truncated = sum(r == "length" for s in samples for r in s.get("finish_reasons", []))
    if (folder / "scores.jsonl").is_file():
        _ranking(it, _jsonl(folder / "scores.jsonl"))
    for step in STEPS:
        record = _json(folder / "steps" / f"{step}.json") if (folder / "steps" / f"{step}.json").is_file() else None
        if isinstance(record, dict) and isinstance(record.get("seconds"), int | float):
            it.seconds[step] = float(record["seconds"])
    checkpoint = out / "checkpoints" / f"iter{t}"
    if (checkpoint / META_FILE).is_file():
        it.checkpoint = checkpoint
        _training(it, _json(checkpoint / META_FILE))
    return it


def _ranking(it: IterationSummary, rows: list[dict[str, Any]]) -> None:
    gaps, nonfinite = [], 0
    for row in rows:
        scores = [float(s) for s in row.get("scores", [])]
        finite = [s for s in scores if math.isfinite(s)]
        nonfinite += len(scores) - len(finite)
        if len(finite) >= 2:
            gaps.append(max(finite) - min(finite))
    it.ranked = len(rows)
    it.nonfinite_scores = nonfinite
    it.score_gap = fmean(gaps) if gaps else None


def _training(it: IterationSummary, meta: Any) -> None:
    if not isinstance(meta, dict):
        return
    log = [e for e in meta.get("train_log", []) if isinstance(e, dict)]
    losses = [e["loss"] for e in log if "loss" in e]
    margins = [e["rewards/margins"] for e in log if "rewards/margins" in e]
    it.train_steps = meta.get("train_steps")
    it.first_loss = losses[0] if losses else None
    it.last_loss = losses[-1] if losses else None
    it.train_loss = next((e["train_loss"] for e in reversed(log) if "train_loss" in e), None)
    it.last_margin = margins[-1] if margins else None
    it.weights_sha256 = meta.get("weights_sha256")
    it.loss = str(meta["loss"]) if meta.get("loss") else None


def _json(path: Path) -> Any:
    try:
        return json.loads(read_text(path, "training file", follow=False))
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not JSON ({exc.msg} at line {exc.lineno}); rerun `sppo-bench train` to rewrite it") from None


def _jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    for n, line in enumerate(read_text(path, "training file", follow=False).splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}:{n}: not JSON ({exc.msg}); rerun `sppo-bench train` to rewrite it") from None
    return rows
