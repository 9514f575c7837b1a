"""Run directories and reference files: one JSON record per (model, variant, suite), written atomically.

Layout of a run directory:
    RUN/records/<model-slug>/<suite>.json   the typed result record
    RUN/samples/<model-slug>/<suite>/...    per-sample outputs (generations, judgments, lm-eval samples)
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

from pydantic import ValidationError

from harness.errors import UserError
from harness.io import atomic_write_text, read_text
from harness.records import ReferenceSet, ResultRecord


def slug(text: str) -> str:
    """A file-system-safe, readable name; distinct labels stay distinct via a short hash when anything is replaced."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "model"
    if cleaned != text:
        import hashlib

        cleaned = f"{cleaned[:80]}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"
    return cleaned


class RunDir:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def model_slug(self, model: str, variant: str | None) -> str:
        return slug(f"{model}@{variant}" if variant else model)

    def record_path(self, model: str, variant: str | None, suite: str) -> Path:
        return self.root / "records" / self.model_slug(model, variant) / f"{suite}.json"

    def samples_dir(self, model: str, variant: str | None, suite: str) -> Path:
        return self.root / "samples" / self.model_slug(model, variant) / suite

    def write(self, record: ResultRecord) -> Path:
        path = self.record_path(record.model, record.variant, record.suite)
        atomic_write_text(path, record.model_dump_json(indent=2) + "\n")
        return path

    def find(self, model: str, variant: str | None, suite: str) -> ResultRecord | None:
        path = self.record_path(model, variant, suite)
        return load_record(path) if path.exists() else None

    def records(self) -> list[ResultRecord]:
        if not self.root.is_dir():
            raise UserError(f"{self.root}: no such run directory; pass the folder given to --out")
        return [load_record(p) for p in sorted((self.root / "records").glob("*/*.json"))]


def load_record(path: Path) -> ResultRecord:
    text = read_text(path, "result record")
    try:
        return ResultRecord.model_validate_json(text)
    except ValidationError as exc:
        raise UserError(f"{path}: not a valid result record ({_first_error(exc)}); delete it and rerun that suite") from None


def load_reference(path: Path) -> ReferenceSet:
    text = read_text(path, "reference file")
    try:
        return ReferenceSet.model_validate_json(text)
    except ValidationError as exc:
        raise UserError(
            f"{path}: not a valid reference file ({_first_error(exc)}); recreate it with `sppo-bench reference import`"
        ) from None


def write_reference(path: Path, ref: ReferenceSet) -> Path:
    return atomic_write_text(Path(path), ref.model_dump_json(indent=2) + "\n")


def load_any(path: Path) -> list[ResultRecord]:
    """Records from a run directory, a reference file, a single record file, or a model card (imported on the fly)."""
    path = Path(path)
    if path.is_dir():
        return RunDir(path).records()
    if path.suffix.lower() in {".md", ".markdown"}:
        from harness.cardparse import parse_card

        return parse_card(read_text(path, "model card"), source=str(path)).records
    text = read_text(path, "results file")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not JSON ({exc.msg} at line {exc.lineno}); pass a run directory, reference file or card") from None
    if isinstance(data, dict) and "records" in data:
        return load_reference(path).records
    if isinstance(data, dict) and "suite" in data:
        return [load_record(path)]
    raise UserError(f"{path}: neither a reference file nor a result record; pass a run directory, reference JSON or card")


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "top level"
    return f"{where}: {err['msg']}"


def merge(records: Iterable[ResultRecord]) -> list[ResultRecord]:
    """Last record wins per (model, variant, suite)."""
    out: dict[tuple[str, str | None, str], ResultRecord] = {}
    for r in records:
        out[r.key] = r
    return list(out.values())
