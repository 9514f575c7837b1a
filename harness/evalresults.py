"""Hub `.eval_results/*.yaml` files beside a model card, written and read with huggingface_hub's own
`EvalResultEntry`, `eval_result_entries_to_yaml` and `parse_eval_result_entries`.

A `.eval_results/` folder belongs to one model repo, so the files hold the scores of the model the card is about:
`<suite>.yaml` for its default decoding and `<suite>_<variant>.yaml` for each decoding variant (best-of-n gets its
own file and a note, since its numbers are not comparable with single-sample decoding). Each file lists one entry per
metric the record holds: the suite's headline metric under task id `<suite>`, the others under `<suite>/<metric>`.
Values are on the card's scale. The notes name the metric, n and 95% interval, the judge and whether it is the
benchmark's official one; reading a file back takes metric, variant, n, interval and partial status from them.

An entry sits under the benchmark's own dataset id, where the Hub shows it beside other models' numbers: so by default
only numbers that mean what that benchmark's numbers mean get a file: complete records (every item of the suite
scored, no --limit) of lm-eval suites, and of judged suites judged by their official judge. `everything=True`
(`report --eval-results all`) writes the others too, each with its caveat in the notes ("partial: 100 of 541
prompts scored, --limit 100"; "judge: ..., not the official judge, not comparable with it").
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml
from huggingface_hub import EvalResultEntry, eval_result_entries_to_yaml, parse_eval_result_entries

from harness import __version__
from harness.cardparse import parse_card, split_label
from harness.catalog import get_suite, suites
from harness.engines.generation import n_from_variant
from harness.errors import UserError
from harness.io import read_text, slug
from harness.records import Metric, Provenance, ReferenceSet, ResultRecord, Status
from harness.specs import SuiteSpec
from harness.store import merge

FOLDER = ".eval_results"
SEPARATOR = "; "
UNITS = {"ifeval": "prompts", "alpaca_eval": "instructions", "arena_hard": "questions", "mt_bench": "question turns"}
"""What a suite's coverage counts, for the notes ("100 of 541 prompts"); other suites count items."""


def render_files(records: Sequence[ResultRecord], model: str, everything: bool = False) -> dict[str, str]:
    """File name -> YAML text for `model`'s records (failed records and averages have no file; without `everything`,
    neither have partial records nor records of a judged suite not judged by its official judge)."""
    files: dict[str, str] = {}
    for r in records:
        spec = get_suite(r.suite)
        if r.model != model or r.status == "failed" or spec.dataset is None:
            continue
        if not everything and caveat(r) is not None:
            continue
        entries = [entry(r, spec, key, metric) for key, metric in r.metrics.items() if _known(spec, key)]
        if entries:
            name = f"{r.suite}.yaml" if r.variant is None else f"{r.suite}_{slug(r.variant)}.yaml"
            files[name] = yaml.safe_dump(eval_result_entries_to_yaml(entries), sort_keys=False, allow_unicode=True)
    return files


def pick_model(records: Sequence[ResultRecord], subject: str | None) -> str | None:
    """The model whose files go beside the card: the card's subject, else the latest iteration."""
    if subject is not None or not records:
        return subject
    return max(records, key=lambda r: -1 if r.iteration is None else r.iteration).model


def caveat(record: ResultRecord) -> str | None:
    """Why `record`'s numbers are not the benchmark's numbers (partial, or not its official judge), or None."""
    if record.status != "complete" or record.limit is not None:
        return f"partial: {coverage(record)}"
    cov = record.coverage
    if cov is not None and (cov.failed or cov.scored < (cov.available or cov.total)):
        return f"partial: {coverage(record)}"
    if get_suite(record.suite).engine == "judge" and (record.judge is None or not record.judge.official):
        return "judge: not the official judge" if record.judge else "judge: not recorded"
    return None


def coverage(record: ResultRecord) -> str:
    """"100 of 541 prompts scored, --limit 100": out of the whole suite when the record knows its size."""
    cov = record.coverage
    unit = UNITS.get(record.suite, "items")
    parts = [f"{cov.scored} of {cov.available or cov.total} {unit} scored" if cov else f"part of the {unit}"]
    if cov and cov.failed:
        parts.append(f"{cov.failed} failed")
    if record.limit is not None:
        parts.append(f"--limit {record.limit}")
    return ", ".join(parts)


def entry(record: ResultRecord, spec: SuiteSpec, key: str, metric: Metric) -> EvalResultEntry:
    assert spec.dataset is not None
    dataset = record.provenance.dataset
    when = record.provenance.finished_at or record.provenance.started_at
    location = record.provenance.location or ""
    url = location if location.startswith(("https://", "http://")) else None
    return EvalResultEntry(
        dataset_id=(dataset.id if dataset and dataset.id else spec.dataset.id),
        dataset_revision=(dataset.revision if dataset and dataset.revision else spec.dataset.revision),
        task_id=spec.name if key == spec.headline else f"{spec.name}/{key}",
        value=metric.value,
        date=when.isoformat() if when else None,
        source_url=url,
        source_name=record.provenance.source if url else None,
        notes=SEPARATOR.join(_notes(record, spec, key, metric)),
    )


def import_paths(paths: Sequence[Path], model: str | None) -> ReferenceSet:
    """`reference import` of `.eval_results` YAML files, a `.eval_results/` folder, or the folder holding one.
    The files do not name their model (the repo does): `model`, else the model-index name of a README.md beside."""
    files: list[Path] = []
    for path in map(Path, paths):
        folder = path / FOLDER if (path / FOLDER).is_dir() else path
        if folder.is_dir():
            found = sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml"))
            if not found:
                raise UserError(f"{folder}: no .yaml files; pass a .eval_results folder or its files")
            files += found
        else:
            files.append(path)
    model = model or _card_model(files[0])
    if model is None:
        raise UserError(f"{files[0]}: the files do not name their model and no README.md beside them does; "
                        "pass --model NAME")
    records = [r for f in files for r in read_file(f, model)]
    if not records:
        raise UserError(f"{files[0]}: no entry for a known suite (task ids like alpaca_eval or mt_bench/turn_1); "
                        "pass files that `sppo-bench report` wrote")
    return ReferenceSet(name=model, source=", ".join(map(str, files)), card_model=model, records=_join(records))


def read_file(path: Path, model: str) -> list[ResultRecord]:
    """One record per (suite, variant) entry group of a file; entries of unknown tasks are skipped."""
    try:
        data = yaml.safe_load(read_text(path, ".eval_results file"))
    except yaml.YAMLError:
        raise UserError(f"{path}: not YAML; pass a .eval_results/*.yaml file") from None
    if not isinstance(data, list):
        raise UserError(f"{path}: expected a YAML list of results (.eval_results format)")
    try:
        entries = parse_eval_result_entries(data)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise UserError(f"{path}: an entry lacks a required field ({exc}); each needs dataset.id, "
                        "dataset.task_id and value") from None
    out = []
    for e in entries:
        record = _record(e, model, str(path))
        if record is not None:
            out.append(record)
    return out


def _notes(record: ResultRecord, spec: SuiteSpec, key: str, metric: Metric) -> list[str]:
    notes = [f"metric: {spec.metric(key).label} ({key})"]
    if metric.n is not None:
        notes.append(f"n: {metric.n}")
    if metric.ci_low is not None and metric.ci_high is not None:
        notes.append(f"95% CI: {metric.ci_low!r} to {metric.ci_high!r}")
    if record.variant is not None:
        notes.append(f"variant: {record.variant}")
        n = n_from_variant(record.variant)
        if n is not None:
            notes.append(f"best-of-{n}: each answer is the best of {n} samples by a preference model; "
                         "not comparable with single-sample decoding")
    judge = record.judge
    if judge is not None:
        official = "the official judge" if judge.official else "not the official judge, not comparable with it"
        notes.append(f"judge: {judge.id} ({judge.model} via {judge.backend}), {official}")
    elif spec.engine == "judge":
        notes.append("judge: not recorded (as published)")
    else:
        notes.append("judge: none (lm-eval scoring)")
    why = caveat(record)
    if why is not None and why.startswith("partial"):
        notes.append(why)
    notes.append(f"sppo-bench {__version__} ({record.provenance.source})")
    return notes


def _record(e: EvalResultEntry, model: str, source: str) -> ResultRecord | None:
    suite_name, _, key = e.task_id.partition("/")
    spec = next((s for s in suites() if s.name == suite_name), None)
    if spec is None:  # another benchmark's task (a Hub benchmark's own task ids are not our suites' numbers)
        return None
    key = key or spec.headline
    if not _known(spec, key):
        return None
    parts = dict(p.split(": ", 1) for p in (e.notes or "").split(SEPARATOR) if ": " in p)
    try:
        value = float(e.value)
    except (TypeError, ValueError):
        raise UserError(f"{source}: {e.task_id}: value {e.value!r} is not a number; fix the entry") from None
    metric = Metric(value=value, n=int(parts["n"]) if parts.get("n", "").isdigit() else None)
    if " to " in parts.get("95% CI", ""):
        low, high = parts["95% CI"].split(" to ")
        metric = metric.model_copy(update={"ci_low": float(low), "ci_high": float(high)})
    status: Status = "partial" if "partial" in parts else "complete"
    notes = [f"{k}: {v}" for k, v in parts.items() if k in ("judge", "partial")]
    return ResultRecord(model=model, variant=parts.get("variant"), iteration=split_label(model)[2], suite=spec.name,
                        status=status, metrics={key: metric}, notes=notes,
                        provenance=Provenance(source="eval-results", location=source))


def _join(records: list[ResultRecord]) -> list[ResultRecord]:
    """One record per (model, variant, suite), holding all its metrics."""
    joined: dict[tuple[str, str | None, str], ResultRecord] = {}
    for r in records:
        kept = joined.setdefault(r.key, r)
        if kept is not r:
            kept.metrics.update(r.metrics)
            kept.notes.extend(n for n in r.notes if n not in kept.notes)
            if r.status == "partial":
                kept.status = "partial"
    return merge(joined.values())


def _card_model(file: Path) -> str | None:
    readme = file.parent.parent / "README.md" if file.parent.name == FOLDER else None
    if readme is None or not readme.is_file():
        return None
    try:
        return parse_card(read_text(readme, "model card"), source=str(readme)).card_model
    except UserError:
        return None


def _known(spec: SuiteSpec, key: str) -> bool:
    return any(m.key == key for m in spec.metrics)
