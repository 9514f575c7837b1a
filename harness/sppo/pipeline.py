"""Train N SPPO iterations, resumably: every step writes a file and is skipped when that file exists and was made
from the same inputs (a hash of the upstream files, the policy's weights and the config sections it reads).

Layout of an output folder:
    OUT/run.json                       the config, the base model, the finished iterations
    OUT/iter<t>/prompts.jsonl          prompts of iteration t
    OUT/iter<t>/samples.jsonl          K responses per prompt from the policy of iteration t-1
    OUT/iter<t>/scores.jsonl           preference-model scores per response
    OUT/iter<t>/train.parquet          the preference dataset (TRL format + chosen_probs_win / chosen_probs_lose)
    OUT/iter<t>/steps/<step>.json      what each step was made from (the resume key)
    OUT/checkpoints/iter<t>/           the trained policy (safetensors, tokenizer, chat template, provenance JSON)
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.identity import fingerprint
from harness.io import atomic_write_text, read_text
from harness.settings import Settings
from harness.sppo import checkpoint as ckpt
from harness.sppo import dataset as ds
from harness.sppo import rank, sample
from harness.sppo.config import SPPOConfig
from harness.sppo.probs import NonFiniteScores

RANK_VERSION = "scores-v2"
"""Part of the rank step's resume key: v2 = the local judge's two orders combined by the mean log-odds (v1 summed
them), so scores from before are not reused."""
RankerFactory = Callable[[], rank.PreferenceModel]
Log = Callable[[str], None]


@dataclass
class StepOutcome:
    name: str
    output: Path
    reused: bool
    seconds: float


@dataclass
class IterationOutcome:
    iteration: int
    checkpoint: Path
    steps: list[StepOutcome] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.steps)


@dataclass
class TrainRun:
    out: Path
    base: str
    base_label: str
    iterations: list[IterationOutcome]
    stopped: str | None = None
    """Set when an iteration stopped on bad data (e.g. NaN preference scores): the message; earlier ones are kept."""

    @property
    def checkpoints(self) -> list[Path]:
        return [it.checkpoint for it in self.iterations]


class IterationStopped(UserError):
    """An iteration could not finish on its data; the iterations before it are complete and kept."""


def run_training(
    cfg: SPPOConfig,
    out: Path,
    iters: int,
    settings: Settings,
    *,
    log: Log = print,
    progress: bool = True,
    ranker_factory: RankerFactory | None = None,
) -> TrainRun:
    """Base + `iters` iterations into `out`; rerunning the same call redoes only what was unfinished.

    An iteration whose data is unusable (NaN preference scores) stops the run there: `TrainRun.stopped` says why and
    the iterations before it stay complete on disk."""
    if iters < 1:
        raise UserError(f"--iters {iters}: give a positive number of SPPO iterations")
    out = Path(out)
    base = resolve_base(cfg, settings)
    template_file = cfg.model.chat_template
    template_text = read_text(Path(template_file), "chat template file") if template_file else None
    check_chat_template(base, template_text)
    run = TrainRun(out=out, base=base, base_label=base_label(base), iterations=[])
    policy = base
    for t in range(1, iters + 1):
        try:
            outcome = _iteration(cfg, out, t, policy, base, settings, log, progress, ranker_factory,
                                 template_file if policy == base else None, template_text if policy == base else None)
        except IterationStopped as exc:
            run.stopped = str(exc)
            log(f"iteration {t} stopped: {exc}")
            break
        run.iterations.append(outcome)
        policy = str(outcome.checkpoint)
        _write_manifest(out, cfg, run)
    return run


def resolve_base(cfg: SPPOConfig, settings: Settings) -> str:
    from harness.backends import resolve_checkpoint

    return resolve_checkpoint(settings, cfg.model.base)


def base_label(base: str) -> str:
    return Path(base.rstrip("/")).name or base


def check_chat_template(model: str, template_text: str | None) -> None:
    if template_text:
        return
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(model)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot load the tokenizer of base model {model} ({exc.__class__.__name__}); "
                        "check model.base (a local folder or a hub id)") from None
    if not getattr(tok, "chat_template", None):
        raise UserError(f"base model {model} has no chat template; use a chat/instruct model or set "
                        "model.chat_template = \"FILE.jinja\" in the config")


def _iteration(cfg: SPPOConfig, out: Path, t: int, policy: str, base: str, settings: Settings, log: Log,
               show: bool, ranker_factory: RankerFactory | None, template_file: str | None,
               template_text: str | None) -> IterationOutcome:
    folder = out / f"iter{t}"
    outcome = IterationOutcome(iteration=t, checkpoint=out / "checkpoints" / f"iter{t}")
    policy_id = fingerprint(policy, template_text, settings.fingerprint_db)

    def step(name: str, output: Path, inputs: dict[str, Any], make: Callable[[], object]) -> str:
        done = _run_step(folder / "steps" / f"{name}.json", output, inputs, make)
        outcome.steps.append(done)
        note = "reused (inputs unchanged)" if done.reused else f"{done.seconds:.1f} s"
        log(f"iter {t} {name:<8} -> {output}  [{note}]")
        return _output_digest(output)

    prompts_sha = step("prompts", folder / "prompts.jsonl",  # 1. the prompts of this iteration
                       {"prompts": cfg.digest("prompts"), "iteration": t, "source": _source_digest(cfg)},
                       lambda: sample.write_prompts(folder / "prompts.jsonl",
                                                    sample.prompts_for_iteration(cfg.prompts, t, settings)))

    # 2. sample K responses per prompt from the current policy
    def make_samples() -> None:
        prompts = sample.read_prompt_file(folder / "prompts.jsonl")
        backend = sample.open_policy_backend(policy, cfg.sampling, settings, template_file)
        with _bar(show, f"iter {t}: sampling", len(prompts) * cfg.sampling.k) as advance:
            rows = sample.sample_responses(prompts, backend, cfg.sampling, t, progress=advance)
        sample.write_samples(folder / "samples.jsonl", rows)

    samples_sha = step("sample", folder / "samples.jsonl",
                       {"policy": policy_id, "prompts": prompts_sha, "sampling": cfg.digest("sampling")}, make_samples)

    # 3. rank with the preference model
    def make_scores() -> None:
        rows = sample.read_samples(folder / "samples.jsonl")
        ranker = ranker_factory() if ranker_factory else rank.build_ranker(cfg.ranker, base, settings, cfg.model.chat_template)
        with _bar(show, f"iter {t}: ranking", len(rows)) as advance:
            ranked = ranker.rank(rows, progress=advance)
        rank.write_ranked(folder / "scores.jsonl", ranked)

    ranker_id = "injected" if ranker_factory else \
        f"{cfg.digest('ranker')}/{fingerprint(cfg.ranker.model or base, cache_db=settings.fingerprint_db)}/{RANK_VERSION}"
    scores_sha = step("rank", folder / "scores.jsonl", {"samples": samples_sha, "ranker": ranker_id}, make_scores)

    # 4. probabilities + the preference dataset
    data_sha = step("dataset", folder / "train.parquet", {"samples": samples_sha, "scores": scores_sha},
                    lambda: _make_dataset(folder, t))

    # 5. train from the policy with the soft SPPO loss, save the checkpoint
    def make_checkpoint() -> None:
        from harness.sppo.trainer import train_iteration

        frame = ds.read_parquet(folder / "train.parquet")
        result = train_iteration(policy, frame, cfg.train, folder / "trainer", chat_template=template_text,
                                 dtype=cfg.model.dtype, progress=show)
        meta = provenance(cfg, t, policy, policy_id, folder, data_sha, result.log, result.steps)
        ckpt.save_checkpoint(result.model, result.tokenizer, outcome.checkpoint, meta)

    step("train", outcome.checkpoint,
         {"policy": policy_id, "dataset": data_sha, "train": cfg.digest("train"), "model": cfg.digest("model")},
         make_checkpoint)
    return outcome


def _make_dataset(folder: Path, t: int) -> None:
    try:
        frame = ds.build_preference_frame(sample.read_samples(folder / "samples.jsonl"),
                                          rank.read_ranked(folder / "scores.jsonl"), where=f"iteration {t}: ")
    except NonFiniteScores as exc:
        kept = f"iterations 1-{t - 1} are kept" if t > 1 else "no iteration was completed"
        raise IterationStopped(f"{exc}; the preference model gave NaN/inf, so iteration {t} did not train "
                               f"({kept}); fix the ranker (config [ranker]) and rerun") from None
    ds.write_parquet(folder / "train.parquet", frame)


def provenance(cfg: SPPOConfig, t: int, policy: str, policy_id: str, folder: Path, data_sha: str,
               log: list[dict[str, float]], steps: int) -> dict[str, Any]:
    from importlib.metadata import version

    return {
        "format": "sppo-bench checkpoint v1",
        "iteration": t,
        "parent": {"checkpoint": policy, "fingerprint": policy_id},
        "data": {"dataset": str(folder / "train.parquet"), "dataset_sha256": data_sha,
                 "prompts": str(folder / "prompts.jsonl"), "prompts_source": cfg.prompts.source,
                 "samples": str(folder / "samples.jsonl"), "scores": str(folder / "scores.jsonl")},
        "config": cfg.model_dump(mode="json"),
        "loss": "soft SPPO (uclaml/SPPO), via TRL sppo_hard on shifted reference log-probs, weight 0.5",
        "train_steps": steps,
        "train_log": log,
        "train_log_note": "TRL's rewards/* metrics are beta x (policy - shifted reference) log-ratios, not plain DPO rewards",
        "packages": {p: version(p) for p in ("torch", "transformers", "trl", "datasets")},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _run_step(record: Path, output: Path, inputs: dict[str, Any], make: Callable[[], object]) -> StepOutcome:
    key = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()
    name = record.stem
    if record.exists() and output.exists():
        try:
            prev = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            prev = {}
        if prev.get("inputs") == key and prev.get("output_sha256") == _output_digest(output):
            return StepOutcome(name, output, reused=True, seconds=0.0)
    start = time.perf_counter()
    make()
    seconds = time.perf_counter() - start
    atomic_write_text(record, json.dumps({"step": name, "inputs": key, "inputs_detail": inputs,
                                         "output": str(output), "output_sha256": _output_digest(output),
                                         "seconds": round(seconds, 3)}, indent=2) + "\n")
    return StepOutcome(name, output, reused=False, seconds=seconds)


def _output_digest(output: Path) -> str:
    if output.is_dir():
        meta = ckpt.read_meta(output)
        return str(meta.get("weights_sha256")) if meta else ""
    if not output.exists():
        return ""
    return hashlib.sha256(output.read_bytes()).hexdigest()


def _source_digest(cfg: SPPOConfig) -> str:
    src = cfg.prompts.source
    if src.startswith("hub:"):
        return src
    path = sample.bundled_prompts_path() if src == sample.BUNDLED else Path(src)
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else src


def _write_manifest(out: Path, cfg: SPPOConfig, run: TrainRun) -> None:
    data = {"base": run.base, "base_label": run.base_label, "config": cfg.model_dump(mode="json"),
            "iterations": [{"iteration": it.iteration, "checkpoint": str(it.checkpoint)} for it in run.iterations]}
    atomic_write_text(out / "run.json", json.dumps(data, indent=2) + "\n")


@contextmanager
def _bar(show: bool, description: str, total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr (rich) when shown, else a no-op."""
    if not show:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=Console(file=sys.stderr), transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)
