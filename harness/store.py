"""Run directories and reference files: one JSON record per (model, variant, suite), written atomically.

Layout of a run directory:
    RUN/records/<model-slug>/<suite>.json   the typed result record
    RUN/samples/<model-slug>/<suite>/...    per-sample outputs (generations, judgments, lm-eval samples)
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from harness.errors import UserError
from harness.io import atomic_write_text, read_text, slug
from harness.records import ReferenceSet, ResultRecord


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

    def items_path(self, model: str, variant: str | None, suite: str) -> Path:
        """Per-item results of one record (harness.records.ItemRow, one JSON per line)."""
        return self.samples_dir(model, variant, suite) / "items.jsonl"


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


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "top level"
    return f"{where}: {err['msg']}"
