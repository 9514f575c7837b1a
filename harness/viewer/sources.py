"""What the viewer reads: run directories (`eval` and the imports) and `train-and-eval` folders.

A run directory holds `records/<slug>/<suite>.json` and, where the suite wrote them, per-item rows in
`samples/<slug>/<suite>/items.jsonl` (`harness.records.ItemRow`). A `train-and-eval` folder holds its run directory in
`eval/` next to the SPPO training outputs (`run.json`, `iter<t>/`, `checkpoints/iter<t>/`), summarised by
`harness.viewer.training`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from harness.errors import UserError
from harness.io import read_text, refuse_links
from harness.records import ItemRow, ResultRecord
from harness.store import RunDir, merge
from harness.viewer.training import TrainingSummary, training_summary

ITEMS_FILE = "items.jsonl"

RowKey = tuple[str, str | None]
"""(model, variant): one checkpoint column of the item browser."""


@dataclass
class Loaded:
    records: list[ResultRecord]
    items: dict[str, dict[RowKey, list[ItemRow]]] = field(default_factory=dict)
    """suite -> checkpoint -> its item rows (only checkpoints whose items file exists)."""
    item_files: dict[tuple[str, str | None, str], Path] = field(default_factory=dict)
    """(model, variant, suite) -> the items.jsonl it came from."""
    training: list[TrainingSummary] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)


def load_sources(paths: Sequence[Path]) -> Loaded:
    """Records, item rows and training summaries of every source; a later source's record wins for the same
    (model, variant, suite)."""
    if not paths:
        raise UserError("no source given; pass a run directory or a train-and-eval folder")
    records: list[ResultRecord] = []
    origin: dict[tuple[str, str | None, str], RunDir] = {}
    loaded = Loaded(records=[])
    for path in map(Path, paths):
        run_dir, training = _classify(path)
        if training is not None:
            loaded.training.append(training)
        if run_dir is None:
            continue
        run = RunDir(run_dir)
        for record in run.records():
            records.append(record)
            origin[record.key] = run
        loaded.sources.append(str(path))
    loaded.records = merge(records)
    if not loaded.records and not loaded.training:
        raise UserError(f"{', '.join(map(str, paths))}: no result records and no SPPO training outputs; "
                        "run `sppo-bench eval` (or an import) into the folder first")
    for record in loaded.records:
        path = origin[record.key].samples_dir(record.model, record.variant, record.suite) / ITEMS_FILE
        refuse_links(origin[record.key].root, path)  # a run folder is data: never a way to copy an outside file in
        if path.is_file():
            loaded.items.setdefault(record.suite, {})[(record.model, record.variant)] = read_items(path)
            loaded.item_files[record.key] = path
    return loaded


def read_items(path: Path) -> list[ItemRow]:
    """The rows of one items.jsonl; a bad line is named by number."""
    rows = []
    for n, line in enumerate(read_text(path, "items file", follow=False).splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(ItemRow.model_validate_json(line))
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "the line"
            raise UserError(f"{path}:{n}: not an item row ({where}: {err['msg']}); delete the file and rerun "
                            "that suite to rewrite it") from None
    return rows


def _classify(path: Path) -> tuple[Path | None, TrainingSummary | None]:
    """(run directory, training summary) of one source folder."""
    if not path.is_dir():
        raise UserError(f"{path}: no such folder; pass a run directory (with records/) or a train-and-eval folder")
    if (path / "records").is_dir():
        return path, None
    if (path / "run.json").is_file() or (path / "eval" / "records").is_dir():
        run_dir = path / "eval" if (path / "eval" / "records").is_dir() else None
        training = training_summary(path) if (path / "run.json").is_file() else None
        return run_dir, training
    raise UserError(f"{path}: neither a run directory (records/) nor a train-and-eval folder (run.json, eval/); "
                    "pass the folder given to --out")
