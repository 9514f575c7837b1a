"""lm-eval's per-sample outputs as per-item rows (harness.records.ItemRow): the leaf task kept as the subtask, only
the rows of the suite's metric filter (GSM8K logs one row per filter), every per-sample metric under its name."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.io import read_text
from harness.records import ItemRow


def lmeval_items(samples: Mapping[str, Sequence[Mapping[str, Any]]], task: str, filter: str = "none") -> list[ItemRow]:
    """lm-eval per-sample dicts by leaf task -> rows. `task` is the suite's lm-eval task (a leaf equal to it is a
    one-task suite: subtask None); `filter` the suite's filter ("strict-match" for GSM8K). Every per-sample metric
    lm-eval logged is kept under its name; list-valued ones (IFEval's instruction-level results) become the fraction
    of True, and `inst_level_strict_n` the number of instructions (the same list length for strict and loose)."""
    rows = []
    for leaf, samples_of_leaf in samples.items():
        for sample in samples_of_leaf:
            if sample.get("filter", "none") != filter:
                continue
            rows.append(_lmeval_row(sample, None if leaf == task else leaf))
    return rows


def lmeval_items_from_dir(folder: Path, task: str, filter: str = "none") -> list[ItemRow]:
    """The same from the `samples_<leaf>.jsonl` files lm-eval's outputs left in `folder`."""
    files = sorted(Path(folder).glob("samples_*.jsonl"))
    if not files:
        raise UserError(f"{folder}: no lm-eval samples_*.jsonl; run the suite with per-sample logging")
    samples = {}
    for path in files:
        lines = read_text(path, "lm-eval samples file").split("\n")  # not splitlines(): texts may hold U+2028
        samples[path.stem.removeprefix("samples_")] = [json.loads(line) for line in lines if line.strip()]
    return lmeval_items(samples, task, filter)


def _lmeval_row(sample: Mapping[str, Any], subtask: str | None) -> ItemRow:
    scores: dict[str, float] = {}
    instructions = 0
    for name in sample.get("metrics", []):
        value = sample[name]
        if isinstance(value, list):
            scores[name] = sum(bool(v) for v in value) / len(value) if value else math.nan
            instructions = len(value)
        else:
            scores[name] = float(value)
    if instructions:
        scores["inst_level_strict_n"] = float(instructions)
    context, response = _lmeval_texts(sample)
    extracted = sample.get("filtered_resps")
    return ItemRow(item=str(sample["doc_id"]), subtask=subtask, scores=scores, prompt=context, answer=response,
                   target=None if sample.get("target") is None else str(sample["target"]),
                   extracted=extracted[0] if response is not None and extracted and isinstance(extracted[0], str)
                   else None)


def _lmeval_texts(sample: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(prompt of the first request, raw response for generative tasks). lm-eval 0.4 logs `arguments` as a list of
    argument tuples; later releases as {"gen_args_0": {"arg_0": ..., "arg_1": ...}}."""
    args = sample.get("arguments")
    first: Any = args[0] if isinstance(args, list) and args else next(iter(args.values()), None) if isinstance(args, dict) else None
    if isinstance(first, dict):
        first = list(first.values())
    context = first[0] if isinstance(first, list | tuple) and first and isinstance(first[0], str) else None
    resps = sample.get("resps")
    response = resps[0][0] if resps and isinstance(resps[0], list) and resps[0] and isinstance(resps[0][0], str) else None
    return context, response


def imported_items(results_file: Path, task: str, filter: str, leaves: Sequence[str]) -> list[ItemRow] | None:
    """Items of an imported lm-eval results file from the per-sample files `lm_eval --log_samples` writes beside it
    (`samples_<leaf>_<date>.jsonl`, or `samples_<leaf>.jsonl`); None when they are not all there."""
    samples: dict[str, list[dict[str, Any]]] = {}
    for leaf in leaves:
        files = sorted(results_file.parent.glob(f"samples_{leaf}_*.jsonl")) or \
            sorted(results_file.parent.glob(f"samples_{leaf}.jsonl"))
        if not files:
            return None
        from harness.io import read_jsonl

        samples[leaf] = read_jsonl(files[-1], "lm-eval samples file")
    return lmeval_items(samples, task, filter)
