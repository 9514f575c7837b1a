"""Run directories and reference files: one JSON record per (model, variant, suite), written atomically.

Layout of a run directory:
    RUN/records/<model-slug>/<suite>.json   the typed result record
    RUN/samples/<model-slug>/<suite>/...    per-sample outputs (generations, judgments, lm-eval samples)
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from harness.errors import UserError
from harness.io import atomic_write_text, read_text, refuse_links, slug
from harness.records import ItemRow, ReferenceSet, ResultRecord

ITEMS_FILE = "items.jsonl"
RECORD_LIMIT = 64 << 20
"""A record is a few kB (lm-eval's with every subtask, tens of kB): 64 MiB is no record."""
ItemKey = tuple[str | None, str, int | None]


class RunDir:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def model_slug(self, model: str, variant: str | None) -> str:
        return slug(f"{model}@{variant}" if variant else model)

    def record_path(self, model: str, variant: str | None, suite: str) -> Path:
        return self.root / "records" / self.model_slug(model, variant) / f"{suite}.json"

    def samples_dir(self, model: str, variant: str | None, suite: str) -> Path:
        """Where a record's answers, judgments and items go; a symbolic link on the way there is refused."""
        path = self.root / "samples" / self.model_slug(model, variant) / suite
        refuse_links(self.root, path)
        return path

    def write(self, record: ResultRecord) -> Path:
        """Write a record (never through a symbolic link in the run folder, never one its own readers would refuse)."""
        path = self.record_path(record.model, record.variant, record.suite)
        refuse_links(self.root, path)
        atomic_write_text(path, checked_json(record, path))
        return path

    def find(self, model: str, variant: str | None, suite: str) -> ResultRecord | None:
        path = self.record_path(model, variant, suite)
        refuse_links(self.root, path)
        return load_record(path) if os.path.lexists(path) else None

    def records(self) -> list[ResultRecord]:
        if not self.root.is_dir():
            raise UserError(f"{self.root}: no such run directory; pass the folder given to --out")
        folder = self.root / "records"
        refuse_links(self.root, folder)
        paths = sorted(folder.glob("*/*.json"))
        for p in paths:
            refuse_links(self.root, p)
        return [load_record(p) for p in paths]

    def items_path(self, model: str, variant: str | None, suite: str) -> Path:
        """Per-item results of one record (harness.records.ItemRow, one JSON per line)."""
        return self.samples_dir(model, variant, suite) / ITEMS_FILE


def checked_json(record: ResultRecord, path: Path) -> str:
    """The record as JSON, validated as a reader will validate it (a value put in by `model_copy` skips validation)."""
    text = record.model_dump_json(indent=2) + "\n"
    try:
        ResultRecord.model_validate_json(text)
    except ValidationError as exc:
        raise UserError(f"{path}: refusing to write {record.label} / {record.suite} ({_first_error(exc)}); its numbers "
                        "are out of range: check the source they came from") from None
    return text


def load_record(path: Path) -> ResultRecord:
    text = read_text(path, "result record", follow=False, limit=RECORD_LIMIT)
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
    """Write a reference file, validated first as `load_reference` will read it: never a file its own readers reject."""
    text = ref.model_dump_json(indent=2) + "\n"
    try:
        ReferenceSet.model_validate_json(text)
    except ValidationError as exc:
        raise UserError(f"{path}: not written: the scores read from {ref.source} are not valid ({_first_error(exc)}); "
                        "fix the source") from None
    return atomic_write_text(Path(path), text)


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "top level"
    return f"{where}: {err['msg'].removeprefix('Value error, ')}"


def merge(records: Iterable[ResultRecord]) -> list[ResultRecord]:
    """Last record wins per (model, variant, suite) (several sources read together)."""
    out: dict[tuple[str, str | None, str], ResultRecord] = {}
    for r in records:
        out[r.key] = r
    return list(out.values())


def item_key(row: ItemRow) -> ItemKey:
    """What pairs an item across checkpoints: (subtask, item id, turn)."""
    return (row.subtask, row.item, row.turn)


def write_items(path: Path, rows: Iterable[ItemRow]) -> Path:
    """One JSON object per line (fields that are None left out), written atomically."""
    return atomic_write_text(Path(path), "".join(r.model_dump_json(exclude_none=True) + "\n" for r in rows))


_ROWS = TypeAdapter(list[ItemRow])


def read_items(path: Path) -> list[ItemRow]:
    """Rows of an items.jsonl; a malformed line or a repeated (subtask, item, turn) is a one-line error naming
    file:line:field. Each row is validated as data (pydantic), never executed."""
    lines = read_text(path, "items file", follow=False).split("\n")
    numbered = [(n, line) for n, line in enumerate(lines, 1) if line.strip()]
    try:  # one validation pass for the whole file; line by line only to name a bad line
        rows = _ROWS.validate_json("[" + ",".join(line for _, line in numbered) + "]")
    except ValidationError:
        rows = []
    if len(rows) != len(numbered):  # a bad line, or one line holding two objects
        rows = [_row(path, n, line) for n, line in numbered]
    seen: dict[ItemKey, int] = {}
    for (n, _), row in zip(numbered, rows, strict=True):
        key = item_key(row)
        if key in seen:
            raise UserError(f"{path}:{n}: item {row.item!r} (subtask {row.subtask}, turn {row.turn}) repeats line "
                            f"{seen[key]}; delete the file and rerun the suite")
        seen[key] = n
    return rows


def _row(path: Path, n: int, line: str) -> ItemRow:
    try:
        return ItemRow.model_validate_json(line)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "line"
        raise UserError(f"{path}:{n}:{where}: {err['msg']}; delete the file and rerun the suite (or re-import it)") from None
