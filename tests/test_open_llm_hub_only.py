"""Converters of the hub-only Open LLM suites (MuSR, MMLU-Pro, HellaSwag, ARC, Winogrande) behind `--data-dir`.

MuSR is converted from the upstream samples in ../shared/data/open_llm/musr_samples (same record format as the full
`datasets/*.json`) and MMLU-Pro from a parquet file written here from the 20 documents lm-eval logged on the hub's
dataset; both are then loaded by lm-eval's shipped leaderboard tasks and hashed with lm-eval's `hash_string` as its
evaluator hashes a logged document, against the published doc_hash. HellaSwag, ARC and Winogrande: small files in the
upstream formats written in the test, expected rows written out by hand."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.data import MissingData, convert, pull
from harness.settings import Settings
from tests.conftest import require_shared
from tests.fixtures.published_samples import doc_hash


def _tasks(settings: Settings, suite: str, tmp_path: Path) -> dict:
    from lm_eval.tasks import TaskManager

    from harness.backends.base import BackendOptions
    from harness.catalog import get_suite
    from harness.engines.context import RunContext, RunOptions
    from harness.engines.lmeval.tasks import task_sources
    from harness.store import RunDir

    ctx = RunContext(settings=settings, run=RunDir(tmp_path / "run"), backend=BackendOptions(device="cpu"),
                     options=RunOptions())
    sources = task_sources(get_suite(suite), ctx, tmp_path / "tasks" / suite)
    manager = TaskManager(include_path=[str(p) for p in sources.include_paths], include_defaults=False)
    return manager.load([sources.task])["tasks"]


def _rows(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.decode().split("\n") if line.strip()]


def test_musr_from_upstream_files_hashes_as_the_hub(tmp_path, published):
    samples = require_shared("data/open_llm/musr_samples")
    mirror = tmp_path / "mirror" / "musr" / "datasets"
    mirror.mkdir(parents=True)
    for name in ("murder_mystery", "object_placements", "team_allocation"):
        shutil.copy(samples / f"small_{name}.json", mirror / f"{name}.json")
    settings = Settings(home=tmp_path / "home", offline=True)
    outcome = pull(settings, ["musr"], data_dir=tmp_path / "mirror")[0]
    assert outcome.status == "pulled", outcome.message
    counts = {p.stem: len(_rows(p.read_bytes())) for p in (settings.data_dir / "musr").glob("*.jsonl")}
    assert counts == {"murder_mysteries": 5, "object_placements": 20, "team_allocation": 5}  # MANIFEST.md

    tasks = _tasks(settings, "musr", tmp_path)
    matched = 0
    for split in counts:
        ours = [doc_hash(dict(d)) for d in tasks[f"leaderboard_musr_{split}"].eval_docs]
        for doc_id, sample in published[f"leaderboard_musr_{split}"].items():
            if sample["doc"]["narrative"] in {d["narrative"] for d in tasks[f"leaderboard_musr_{split}"].eval_docs}:
                assert sample["doc_hash"] in ours, f"{split} doc {doc_id}"
                matched += 1
                if split != "murder_mysteries":  # the samples are the first questions of these two sets
                    assert ours[doc_id] == sample["doc_hash"]
    assert matched == 10  # 4 + 4 + 2: two published murder mysteries are other stories than the samples'


def test_mmlu_pro_from_parquet_hashes_as_the_hub(tmp_path, published):
    import pyarrow as pa
    import pyarrow.parquet as pq

    docs = [published["leaderboard_mmlu_pro"][i]["doc"] for i in range(20)]
    data = tmp_path / "mirror" / "mmlu_pro" / "data"
    data.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(docs), data / "test-00000-of-00001.parquet")
    pq.write_table(pa.Table.from_pylist(docs[:5]), data / "validation-00000-of-00001.parquet")
    settings = Settings(home=tmp_path / "home", offline=True)
    outcome = pull(settings, ["mmlu_pro"], data_dir=tmp_path / "mirror")[0]
    assert outcome.status == "pulled", outcome.message
    task = _tasks(settings, "mmlu_pro", tmp_path)["leaderboard_mmlu_pro"]
    ours = [dict(d) for d in task.eval_docs]
    assert len(ours) == 20
    for i in range(20):
        assert doc_hash(ours[i]) == published["leaderboard_mmlu_pro"][i]["doc_hash"]


def test_hellaswag_arc_winogrande_upstream_formats():
    hs = {"ind": 4, "activity_label": "Removing ice from car", "ctx_a": "Then, the man writes over the snow.",
          "ctx_b": "then", "ctx": "Then, the man writes over the snow. then", "split": "val", "split_type": "indomain",
          "label": 3, "endings": ["a", "b", "c", "d"], "source_id": "activitynet~v_-1IBHYS3L-Y"}
    out = convert.convert("hellaswag", {"validation.jsonl": (json.dumps(hs) + "\n").encode()}, "test")
    row = _rows(out["validation.jsonl"])[0]
    assert list(row) == ["ind", "activity_label", "ctx_a", "ctx_b", "ctx", "endings", "source_id", "split",
                         "split_type", "label"]
    assert row["label"] == "3" and row["endings"] == ["a", "b", "c", "d"]

    arc = {"id": "Mercury_7175875", "question": {"stem": "Which?", "choices": [{"text": "x", "label": "A"},
                                                                                {"text": "y", "label": "B"}]},
           "answerKey": "B"}
    out = convert.convert("arc", {"test.jsonl": (json.dumps(arc) + "\n").encode()}, "test")
    assert _rows(out["ARC-Challenge/test.jsonl"]) == [
        {"id": "Mercury_7175875", "question": "Which?", "choices": {"text": ["x", "y"], "label": ["A", "B"]},
         "answerKey": "B"}]

    wg = {"qID": "3QHITW7OYO7Q6B6ISU2UMJB84ZLAQE-2", "sentence": "Ian _ wanted.", "option1": "Ian", "option2": "Dennis",
          "answer": "2"}
    out = convert.convert("winogrande", {"validation.jsonl": (json.dumps(wg) + "\n").encode()}, "test")
    assert _rows(out["winogrande_xl/validation.jsonl"]) == [
        {"sentence": "Ian _ wanted.", "option1": "Ian", "option2": "Dennis", "answer": "2"}]


def test_hub_only_suites_say_so_in_a_run(tmp_path):
    """Offline with nothing pulled, a hub-only suite's unit fails with the one command that gets it."""
    from harness.backends.base import BackendOptions
    from harness.catalog import get_suite
    from harness.engines.context import ModelRef, RunContext, RunOptions
    from harness.engines.lmeval import run_suite
    from harness.store import RunDir

    ctx = RunContext(settings=Settings(home=tmp_path / "home", offline=True), run=RunDir(tmp_path / "run"),
                     backend=BackendOptions(device="cpu"), options=RunOptions(limit=1))
    for suite in ("musr", "mmlu_pro"):
        with pytest.raises(MissingData, match=rf"^{suite}: hub only: run `sppo-bench data pull --suites {suite}` "
                                              "where the hub is reachable$"):
            run_suite(get_suite(suite), ModelRef(checkpoint="unused", label="m"), ctx)
