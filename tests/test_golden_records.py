"""Refactoring guard: the records of a fixed run are identical before and after code moves.

The run: `sppo-bench eval` of two fake checkpoints on the three judged suites (fake generator, fake local judge,
3 items each) plus imports of a published AlpacaEval annotation file and of lm-eval results fixtures. Records are
compared as JSON text after masking what legitimately changes between runs (timestamps, package versions, git sha,
temporary paths, the unit content key). The numbers inside are checked against independent sources elsewhere
(tests/test_scoring_*.py against the published leaderboards, tests/test_lmeval_import.py against the seed card); this
file only pins that moving code does not change them. Set SPPO_BENCH_UPDATE_GOLDEN=1 to rewrite the files after an
intended change, and say why in the commit.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.settings import Settings

GOLDEN = Path(__file__).parent / "golden" / "records"
FIXTURES = Path(__file__).parent / "fixtures"
SUITES = ("alpaca_eval", "arena_hard", "mt_bench")
VOLATILE_PROVENANCE = ("started_at", "finished_at", "packages", "git_sha")


@pytest.fixture(scope="module")
def run(tmp_path_factory, shared_data_module) -> Path:
    from harness.cli import main
    from harness.data import pull

    home = tmp_path_factory.mktemp("home")
    for outcome in pull(Settings(home=home, offline=True), list(SUITES), data_dir=shared_data_module):
        if outcome.status == "failed":
            pytest.skip(f"cannot pull {outcome.target} offline: {outcome.message}")
    out = tmp_path_factory.mktemp("golden-run")
    env = {"SPPO_BENCH_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        argv = ["eval", "fake-model-a", "fake-model-b", "--label", "A", "--label", "B", "--backend", "fake",
                "--judge", "local", "--judge-backend", "fake", "--suites", ",".join(SUITES), "--limit", "3",
                "--max-new-tokens", "16", "--out", str(out)]
        assert main(argv) == 0
        annotations = shared_data_module / "alpaca_eval/results/OpenHermes-2.5-Mistral-7B/weighted_alpaca_eval_gpt4_turbo/annotations.json"
        assert main(["import", "alpaca-eval", str(annotations), "--model", "OpenHermes", "--out", str(out)]) == 0
        for name in ("leaderboard_v2_seed", "open_llm_v1_seed"):
            results = FIXTURES / "lmeval" / "results" / f"{name}.json"
            assert main(["import", "lm-eval", str(results), "--model", f"seed-{name}", "--out", str(out)]) == 0
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    (out / "home.txt").write_text(str(home))
    return out


@pytest.fixture(scope="module")
def shared_data_module() -> Path:
    from tests.conftest import require_shared

    return require_shared("data")


def normalized(path: Path, run_root: Path) -> str:
    record = json.loads(path.read_text())
    for key in VOLATILE_PROVENANCE:
        record["provenance"].pop(key, None)
    record.pop("run_key", None)
    text = json.dumps(record, indent=2, sort_keys=True) + "\n"
    shared = str(Path(__file__).resolve().parents[2] / "shared")
    home = (run_root / "home.txt").read_text()
    repo = str(Path(__file__).resolve().parents[1])
    text = text.replace(str(run_root), "<RUN>").replace(home, "<HOME>").replace(shared, "<SHARED>")
    return text.replace(repo, "<REPO>").replace(str(Path(repo).parent / "shared"), "<SHARED>")


def test_records_match_golden(run: Path):
    produced = {p.relative_to(run / "records"): normalized(p, run) for p in sorted((run / "records").glob("*/*.json"))}
    assert len(produced) == 2 * len(SUITES) + 1 + 12
    if os.environ.get("SPPO_BENCH_UPDATE_GOLDEN"):
        for rel, text in produced.items():
            (GOLDEN / rel).parent.mkdir(parents=True, exist_ok=True)
            (GOLDEN / rel).write_text(text)
    expected = {p.relative_to(GOLDEN): p.read_text() for p in sorted(GOLDEN.glob("*/*.json"))}
    assert sorted(produced) == sorted(expected)
    for rel, text in produced.items():
        assert text == expected[rel], f"{rel} differs from tests/golden/records/{rel}"
