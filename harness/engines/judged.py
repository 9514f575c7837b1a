"""The judged-suite engine: one driver for every suite that generates answers and has them judged.

A judged suite (AlpacaEval 2, Arena-Hard v0.1, MT-Bench; benchmarks/<suite>/) implements `JudgedSuite`: where its
questions come from, its judges, the upstream file formats of answers and judgments, how a judge is asked, how
judgments become a record (the upstream scoring rule) and per-item rows, and how a published file is imported. The
driver does everything the suites share, in this order:

    load questions (limit, shard) -> answer with the unit's checkpoint (turn by turn; best-of-n) -> write answers
    -> judge (cached by content) -> write judgments -> score into a record -> write items.jsonl

Adding a suite is one module under benchmarks/ that calls `register_judged(...)` and one line in
benchmarks/__init__.py.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from harness.backends.base import Completion
from harness.engines.context import ModelRef, RunContext, content_sha256, identified
from harness.engines.generation import Question, answer, n_from_variant
from harness.engines.judge_backend import JudgeRun, UnitModels, open_judge, preference_model
from harness.errors import UserError
from harness.judges import JudgeSpec, choose_judge
from harness.records import (
    Coverage,
    DatasetProvenance,
    ItemRow,
    JudgeInfo,
    Metric,
    Provenance,
    ResultRecord,
    Status,
    now,
)
from harness.registry import Registry
from harness.secrets import redact
from harness.specs import SuiteSpec
from harness.store import ITEMS_FILE, write_items

__all__ = ["GENERATIONS_FAILED", "failed_generations_note", "Header", "ImportRequest", "JudgeRun", "JudgedSuite", "Question", "SuiteData", "register_judged",
           "run_suite"]

GENERATIONS_FAILED = "generations failed"
"""The note a judged record carries when some answers never came back (a server down, a timeout): such a record is
not done, and a rerun asks only for the missing answers."""


def failed_generations_note(record: ResultRecord) -> str | None:
    """The record's note on answers that never came back, if any (see GENERATIONS_FAILED)."""
    return next((note for note in record.notes if GENERATIONS_FAILED in note), None)


@dataclass(frozen=True)
class SuiteData:
    """A suite's questions and whatever its judge needs besides them (baseline answers, references, prompts)."""

    folder: Path
    questions: list[Question]
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Header:
    """What every record of a judged suite carries besides its numbers; built once, by the driver or an importer."""

    model: str
    variant: str | None
    judge: JudgeInfo
    provenance: Provenance
    iteration: int | None = None
    checkpoint: str | None = None
    limit: int | None = None
    notes: tuple[str, ...] = ()

    def record(self, suite: str, status: Status, metrics: dict[str, Metric], coverage: Coverage,
               notes: Sequence[str] = (), **fields: Any) -> ResultRecord:
        """The record, partial whenever a --limit applied (a failed record stays failed)."""
        if self.limit and status != "failed":
            status = "partial"
        return ResultRecord(model=self.model, variant=self.variant, iteration=self.iteration,
                            checkpoint=self.checkpoint, suite=suite, status=status, metrics=metrics, limit=self.limit,
                            coverage=coverage, judge=self.judge, notes=[*notes, *self.notes],
                            provenance=self.provenance, **fields)

    def failed(self, suite: str, coverage: Coverage, error: str) -> ResultRecord:
        return self.record(suite, "failed", {}, coverage, error=error)


@dataclass(frozen=True)
class ImportRequest:
    """`sppo-bench import <kind> FILE --model M ...`: what an importer needs besides the file's contents."""

    path: Path
    model: str
    variant: str | None = None
    iteration: int | None = None
    baseline: str | None = None
    data_dir: Path | None = None
    """The pulled data (<cache home>/data), to check a file against the suite's canonical items."""

    def header(self, source: str, judge: JudgeInfo, dataset: DatasetProvenance, notes: Sequence[str] = ()) -> Header:
        from harness.provenance import package_versions

        provenance = Provenance(source=source, location=str(self.path), packages=package_versions(), dataset=dataset,
                                started_at=now(), finished_at=now())
        return Header(model=self.model, variant=self.variant, judge=judge, provenance=provenance,
                      iteration=self.iteration, notes=tuple(notes))


class JudgedSuite(Protocol):
    name: str
    judges: tuple[JudgeSpec, JudgeSpec]
    """(official, local)."""
    max_new_tokens: int
    """The upstream generation cap."""

    def load(self, folder: Path) -> SuiteData: ...

    def prompt_hash(self, judge: JudgeSpec, data: SuiteData) -> str: ...

    def write_answers(self, out: Path, label: str, questions: Sequence[Question],
                      answers: Sequence[Sequence[Completion]]) -> None: ...

    def judge(self, run: JudgeRun, data: SuiteData, label: str, questions: Sequence[Question],
              answers: Sequence[Sequence[Completion]]) -> list[dict[str, Any]]:
        """Upstream judgment rows for the answered questions."""
        ...

    def write_judgments(self, out: Path, label: str, judge: JudgeSpec, judgments: Sequence[dict[str, Any]]) -> None: ...

    def score(self, header: Header, data: SuiteData, judgments: Sequence[dict[str, Any]],
              questions: Sequence[Question], answers: Sequence[Sequence[Completion]], seed: int) -> ResultRecord:
        """The record, scored by the upstream rule; `questions` are all attempted (failed answers included)."""
        ...

    def items(self, judgments: Sequence[dict[str, Any]], questions: Sequence[Question],
              answers: Sequence[Sequence[Completion]]) -> list[ItemRow]: ...

    def import_file(self, request: ImportRequest) -> tuple[ResultRecord, list[ItemRow]]:
        """A published judgments/annotations file, scored as upstream scores it."""
        ...


JUDGED_SUITES: Registry[JudgedSuite] = Registry("judged suite")


def register_judged(suite: JudgedSuite) -> JudgedSuite:
    from harness.judges import register_suite_judges

    register_suite_judges(suite.name, *suite.judges)
    return JUDGED_SUITES.add(suite.name, suite)


def run_suite(spec: SuiteSpec, model: ModelRef, ctx: RunContext) -> ResultRecord:
    """Generate, judge and score one judged suite on the unit's checkpoint (see the module docstring). With
    `--repeats R`, R - 1 more independent passes (answers re-sampled with other seeds, judgments made afresh) go under
    `repeat-<r>/`; the record keeps pass 0's numbers and carries the between-repeat standard deviation."""
    suite = JUDGED_SUITES.get(spec.name)
    started = now()
    model = identified(model, ctx)
    data = suite.load(suite_folder(ctx, spec.name))
    questions = data.questions[: ctx.options.limit_for(spec.name) or None]
    if ctx.shard:
        k, num = ctx.shard
        questions = questions[k::num]
    judge = choose_judge(spec.name, ctx.options.judge, key_env(ctx))
    models = UnitModels(ctx, model)
    run = open_judge(judge, ctx, suite.prompt_hash(judge, data), models)
    out = ctx.run.samples_dir(model.label, model.variant, spec.name)
    passes = [_one_pass(suite, spec, model, ctx, data, questions, judge, models, run, out, started, r)
              for r in range(max(1, ctx.options.repeats))]
    record = passes[0]
    return with_repeat_spread(record, passes) if len(passes) > 1 else record


def _one_pass(suite: JudgedSuite, spec: SuiteSpec, model: ModelRef, ctx: RunContext, data: SuiteData,
              questions: list[Question], judge: JudgeSpec, models: UnitModels, run: JudgeRun, out: Path,
              started: Any, repeat: int) -> ResultRecord:
    """Answer, judge and score once; repeat r > 0 uses seed + r and a fresh judge cache, and writes under repeat-<r>/."""
    seed = ctx.options.seed + repeat
    if repeat:
        out = out / f"repeat-{repeat}"
        run = replace(run, cache=replace(run.cache, namespace=f"{run.cache.namespace}|repeat-{repeat}"))
    n = n_from_variant(model.variant)
    cap = ctx.options.max_new_tokens or suite.max_new_tokens
    answers = answer(models.generator(), questions, cap, seed, best_of=(n, preference_model(ctx)) if n else None)
    suite.write_answers(out, model.label, questions, answers)
    answered = [i for i, a in enumerate(answers) if not any(c.error for c in a)]
    judgments = redact(suite.judge(run, data, model.label, [questions[i] for i in answered],
                                   [answers[i] for i in answered]), (key_env(ctx),))
    suite.write_judgments(out, model.label, judge, judgments)
    failed = [i for i in range(len(questions)) if i not in set(answered)]
    header = Header(model=model.label, variant=model.variant, judge=run.info, iteration=model.iteration,
                    checkpoint=model.checkpoint, limit=ctx.options.limit_for(spec.name),
                    provenance=_provenance(spec, model, ctx, data.folder, cap, n, started,
                                           sorted({q.temperature for q in questions})),
                    notes=_generation_notes(failed, answers))
    record = suite.score(header, data, judgments, questions, answers, seed)
    write_items(out / ITEMS_FILE, suite.items(judgments, questions, answers))
    return record


def with_repeat_spread(record: ResultRecord, passes: Sequence[ResultRecord]) -> ResultRecord:
    """Pass 0's record with, per metric, the standard deviation of its value over the passes (`Metric.repeat_sd`)
    and a note giving every pass's value."""
    import statistics

    metrics = dict(record.metrics)
    values_note = []
    for key, metric in record.metrics.items():
        values = [p.metrics[key].value for p in passes if key in p.metrics and p.status != "failed"]
        if len(values) > 1:
            metrics[key] = metric.model_copy(update={"repeat_sd": statistics.stdev(values)})
            values_note.append(f"{key} {', '.join(f'{v:.4g}' for v in values)}")
    note = (f"{len(passes)} repeats (answers re-sampled with seeds {record.provenance.seed}..."
            f"{(record.provenance.seed or 0) + len(passes) - 1}, judgments made afresh; the numbers are pass 0's, "
            f"repeat_sd the spread): " + "; ".join(values_note))
    return record.model_copy(update={"metrics": metrics, "notes": [*record.notes, note]})


def suite_folder(ctx: RunContext, suite: str) -> Path:
    """The suite's data: `<data_dir>/<suite>` when a mirror is given, else what `sppo-bench data pull` wrote."""
    if ctx.options.data_dir:
        folder = Path(ctx.options.data_dir) / suite
        if folder.is_dir():
            return folder
    from harness.data import require

    return Path(require(ctx.settings, suite))


def key_env(ctx: RunContext) -> str:
    backend = ctx.options.judge_backend
    return backend.api_key_env if backend else "OPENAI_API_KEY"


def judged_status(expected: int, judged: int, items: Sequence[dict[str, Any]], unparsed: int = 0) -> Status:
    """complete when every item got a readable judgment; partial when items were never judged (generation or
    judge-call errors) or `unparsed` verdicts could not be read (upstream scores without them; the record's note gives
    the count and its coverage counts them as failed)."""
    errored = sum(1 for it in items if it.get("error"))
    return "complete" if judged == expected and not errored and not unparsed else "partial"


def judgment_rows(path: Path, text: str, required: set[str], what: str) -> list[dict[str, Any]]:
    """The rows of a published JSONL judgments file; a bad line is named by number, with what the row should hold."""
    from harness.io import read_jsonl

    rows = read_jsonl(path, what, text)
    for number, row in enumerate(rows, 1):
        if not required <= row.keys():
            raise UserError(f"{path}: row {number}: not {what} row (needs {', '.join(sorted(required))})")
    if not rows:
        raise UserError(f"{path}: no judgments")
    return rows


def rows_of_model(path: Path, rows: list[dict[str, Any]], model: str) -> list[dict[str, Any]]:
    """A file may hold judgments of several models: keep `model`'s, or say which ones it holds."""
    models = sorted({str(r["model"]) for r in rows})
    if len(models) <= 1:
        return rows
    if model not in models:
        raise UserError(f"{path}: judgments of {len(models)} models ({models[:5]}); pass --model as one of them")
    return [r for r in rows if r["model"] == model]


def number_or_none(value: Any) -> float | None:
    """A judgment's number as a float; None for what is missing, not a number, or NaN."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def text_or_none(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _provenance(spec: SuiteSpec, model: ModelRef, ctx: RunContext, data: Path, cap: int, n: int | None,
                started: Any, temperatures: list[float]) -> Provenance:
    from harness.data.manifest import manifest_sha256
    from harness.provenance import git_sha, package_versions

    return Provenance(
        source="run", location=model.checkpoint, checkpoint_sha256=content_sha256(model.fingerprint),
        packages=package_versions(),
        dataset=DatasetProvenance(id=spec.dataset.id if spec.dataset else None,
                                  revision=spec.dataset.revision if spec.dataset else None, source=str(data),
                                  sha256=manifest_sha256(data)),
        generation={"max_new_tokens": cap, "temperatures": temperatures, "backend": ctx.backend.backend,
                    "dtype": _dtype(model, ctx), "best_of_n": n},
        seed=ctx.options.seed, git_sha=git_sha(), started_at=started, finished_at=now())


def _dtype(model: ModelRef, ctx: RunContext) -> str:
    """The dtype the answers were generated in (harness.backends.precision: `auto` is the checkpoint's own)."""
    from harness.backends import resolve_checkpoint
    from harness.backends.precision import options_dtype

    opts = ctx.backend
    if opts.backend not in ("hf", "vllm"):
        return opts.dtype
    return options_dtype(opts.backend, opts.dtype, opts.device, resolve_checkpoint(ctx.settings, model.checkpoint))


def _generation_notes(failed: Sequence[int], answers: Sequence[Sequence[Completion]]) -> tuple[str, ...]:
    if not failed:
        return ()
    first = next((c.error for c in answers[failed[0]] if c.error), None)  # why, in the backend's words (key redacted)
    return (f"{len(failed)} {GENERATIONS_FAILED} (items {list(failed)[:10]}; first: {first}); not judged, counted in "
            "coverage; rerun the same command to ask for them again (answers received are cached)",)


