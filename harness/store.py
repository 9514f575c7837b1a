"""Run directories and reference files: one JSON record per (model, variant, suite), written atomically.

Layout of a run directory:
    RUN/records/<model-slug>/<suite>.json   the typed result record
    RUN/samples/<model-slug>/<suite>/...    per-sample outputs (generations, judgments, lm-eval samples)
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from harness.errors import UserError
from harness.io import atomic_write_text, read_text, slug
from harness.records import ItemRow, ReferenceSet, ResultRecord

ITEMS_FILE = "items.jsonl"
ItemKey = tuple[str | None, str, int | None]


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
        return self.samples_dir(model, variant, suite) / ITEMS_FILE


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
    lines = read_text(path, "items file").split("\n")
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
