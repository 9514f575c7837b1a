"""One side of `sppo-bench compare`: a model's records and, where the source is a run directory, its per-item rows.

Kept apart from harness.compare so the comparison itself (which the card's iteration section uses) does not import the
record readers (harness.results -> harness.cardparse -> harness.cards): that made an import circle.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from harness.compare import Side
from harness.errors import UserError
from harness.records import ResultRecord
from harness.results import load_records, run_dir
from harness.store import ITEMS_FILE, RunDir, read_items


def load_side(path: Path, model: str | None = None, option: str = "--model") -> Side:
    """A run directory (RUN/records, items under RUN/samples), a train-and-eval folder (its run is OUT/eval), a reference
    JSON, a record JSON or a model card. A source holding several models needs `model` (its label)."""
    path = Path(path)
    run = run_dir(path)
    records = load_records(path)
    labels = list(dict.fromkeys(r.label for r in records))
    if not labels:
        raise UserError(f"{path}: holds no result records; evaluate into it first or pass another source")
    if model is None and len(labels) > 1:
        raise UserError(f"{path} holds {len(labels)} models ({'; '.join(labels)}); choose one with {option} NAME")
    label = model if model is not None else labels[0]
    if label not in labels:
        raise UserError(f"{path}: no model {label!r}; it holds {'; '.join(labels)} (pass one of them to {option})")
    chosen = [r for r in records if r.label == label]
    return side_from_run(run, chosen, str(path)) if run else Side(label, str(path), {r.suite: r for r in chosen})


def side_from_run(run: RunDir, records: Sequence[ResultRecord], source: str | None = None) -> Side:
    """One model's records (all with the same label) and the items.jsonl the run directory holds beside them."""
    labels = {r.label for r in records}
    if len(labels) != 1:
        raise ValueError(f"a side is one model; got labels {sorted(labels)}")
    items = {}
    for r in records:
        file = run.samples_dir(r.model, r.variant, r.suite) / ITEMS_FILE
        if file.is_file():
            items[r.suite] = read_items(file)
    return Side(labels.pop(), source or str(run.root), {r.suite: r for r in records}, items)
