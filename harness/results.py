"""Where records come from for every command that reads results (`results table`, `report`, `check`, `compare`,
`view`): a run directory, a `train-and-eval` folder (its records are in OUT/eval), a reference JSON, a single record
JSON, or a model card (imported on the fly). A source that holds no records is an error that says what was looked for.
"""

from __future__ import annotations

import json
from pathlib import Path

from harness.errors import UserError
from harness.io import read_text
from harness.records import ResultRecord
from harness.store import RunDir, load_record, load_reference

TRAIN_AND_EVAL_RUN = "eval"
"""A train-and-eval folder's run directory (OUT/eval)."""


def run_dir(path: Path) -> RunDir | None:
    """The run directory a folder is or holds (a train-and-eval folder's OUT/eval); None for files."""
    path = Path(path)
    if not path.is_dir():
        return None
    if not (path / "records").is_dir() and (path / TRAIN_AND_EVAL_RUN / "records").is_dir():
        return RunDir(path / TRAIN_AND_EVAL_RUN)
    return RunDir(path)


def load_records(path: Path) -> list[ResultRecord]:
    """Records from any results source (see the module docstring); an empty source is an error."""
    path = Path(path)
    run = run_dir(path)
    if run is not None:
        records = run.records()
        if not records:
            raise UserError(f"{path}: no result records (looked in {run.root / 'records'}/<model>/<suite>.json and, "
                            f"for a train-and-eval folder, {path / TRAIN_AND_EVAL_RUN / 'records'}); run `sppo-bench "
                            "eval --out` into it or pass the folder that holds them")
        return records
    if path.suffix.lower() in {".md", ".markdown"}:
        from harness.cardparse import parse_card

        return _non_empty(parse_card(read_text(path, "model card"), source=str(path)).records, path, "model card")
    text = read_text(path, "results file")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not JSON ({exc.msg} at line {exc.lineno}); pass a run directory, reference file or card") from None
    if isinstance(data, dict) and "records" in data:
        return _non_empty(load_reference(path).records, path, "reference file")
    if isinstance(data, dict) and "suite" in data:
        return [load_record(path)]
    raise UserError(f"{path}: neither a reference file nor a result record; pass a run directory, reference JSON or card")


def _non_empty(records: list[ResultRecord], path: Path, what: str) -> list[ResultRecord]:
    if not records:
        raise UserError(f"{path}: the {what} holds no results (no scores in its tables or model-index)")
    return records
