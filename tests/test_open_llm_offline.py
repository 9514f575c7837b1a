"""Open LLM Leaderboard data offline: BBH, GPQA, MATH Lvl 5, GSM8K, TruthfulQA from the pinned upstream files in
../shared/data/open_llm, converted to the hub datasets' layout (issue 19).

Expected values come from outside the code: row counts from ../shared/data/MANIFEST.md (written out below), document
hashes from lm-eval results files that logged the hub's own documents (../shared/data/published, SOURCES.md rows 4-7),
hashed here with lm-eval's own `hash_string` exactly as its evaluator hashes a logged document.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import pytest

from harness.data import pull, require
from harness.errors import UserError
from harness.settings import Settings
from tests.conftest import require_shared
from tests.fixtures.published_samples import doc_hash

SUITES = ("bbh", "gpqa", "math_lvl5", "gsm8k", "truthfulqa_mc2")

# ../shared/data/MANIFEST.md, section open_llm/ (rows)
BBH_ROWS = {"causal_judgement": 187, "penguins_in_a_table": 146, "snarks": 178}  # every other task: 250
BBH_NOT_LEADERBOARD = {"dyck_languages", "multistep_arithmetic_two", "word_sorting"}
GPQA_ROWS = {"gpqa_main": 448, "gpqa_diamond": 198, "gpqa_extended": 546}
MATH_LEVEL5 = {"algebra": 307, "counting_and_probability": 123, "geometry": 132, "intermediate_algebra": 280,
               "number_theory": 154, "prealgebra": 193, "precalculus": 135}
GPQA_SHUFFLED = ("choice1", "choice2", "choice3", "choice4", "answer")


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Settings:
    shared = require_shared("data")
    settings = Settings(home=tmp_path_factory.mktemp("home"), offline=True)
    for outcome in pull(settings, list(SUITES), data_dir=shared):
        assert outcome.status == "pulled", outcome.message
    return settings


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def _tasks(settings: Settings, suite: str, tmp_path: Path) -> dict:
    """lm-eval's own tasks for the suite, loaded through the generated YAMLs that point at the pulled data."""
    from lm_eval.tasks import TaskManager

    from harness.backends.base import BackendOptions
    from harness.catalog import get_suite
    from harness.engines.context import RunContext, RunOptions
    from harness.engines.lmeval.tasks import task_sources
    from harness.store import RunDir

    ctx = RunContext(settings=settings, run=RunDir(tmp_path / "run"), backend=BackendOptions(device="cpu"),
                     options=RunOptions())
    sources = task_sources(get_suite(suite), ctx, tmp_path / "tasks" / suite)
    assert sources.dataset.sha256 and sources.dataset.source == str(settings.data_dir / suite)
    manager = TaskManager(include_path=[str(p) for p in sources.include_paths], include_defaults=False)
    return manager.load([sources.task])["tasks"]


def test_row_counts_per_config_equal_the_manifest(home):
    bbh = require(home, "bbh")
    counts = {p.parent.name: len(_rows(p)) for p in bbh.glob("*/test.jsonl")}
    assert len(counts) == 27
    assert all(counts[t] == BBH_ROWS.get(t, 250) for t in counts)
    assert sum(n for t, n in counts.items() if t not in BBH_NOT_LEADERBOARD) == 5761

    import datasets

    gpqa = require(home, "gpqa")
    for config, n in GPQA_ROWS.items():
        ds = datasets.load_dataset("csv", data_files=str(gpqa / config / "train.csv"), split="train",
                                   cache_dir=str(home.home / "hf"))
        assert len(ds) == n

    math = require(home, "math_lvl5")
    rows = {c: _rows(math / c / "test.jsonl") for c in MATH_LEVEL5}
    assert sum(len(r) for r in rows.values()) == 5000
    assert {c: sum(r["level"] == "Level 5" for r in rs) for c, rs in rows.items()} == MATH_LEVEL5
    assert all(list(r) == ["problem", "level", "solution", "type"] for rs in rows.values() for r in rs)

    gsm = require(home, "gsm8k")
    assert (len(_rows(gsm / "main" / "test.jsonl")), len(_rows(gsm / "main" / "train.jsonl"))) == (1319, 7473)
    tqa = _rows(require(home, "truthfulqa_mc2") / "multiple_choice" / "validation.jsonl")
    assert len(tqa) == 817 and list(tqa[0]) == ["question", "mc1_targets", "mc2_targets"]
    assert set(tqa[0]["mc2_targets"]) == {"choices", "labels"}


@pytest.mark.parametrize("suite,prefix,n_tasks", [("bbh", "leaderboard_bbh_", 24), ("math_lvl5", "leaderboard_math_", 7),
                                                  ("gpqa", "leaderboard_gpqa_", 3)])
def test_documents_hash_as_lm_eval_logged_the_hubs(home, published, tmp_path, suite, prefix, n_tasks):
    """Every subtask with a published doc_hash: our converted documents, loaded by lm-eval's shipped task (process_docs
    included), hash exactly as lm-eval hashed the hub's. GPQA's process_docs shuffles the four answers with Python's
    global random state (which depends on every task loaded before it), so its four shuffled fields are taken from the
    published document and all 80 upstream columns are ours."""
    tasks = _tasks(home, suite, tmp_path)
    expected = {t: rows for t, rows in published.items() if t.startswith(prefix)}
    assert len(expected) == n_tasks and set(expected) <= set(tasks)
    checked = 0
    for name, rows in expected.items():
        docs = list(tasks[name].eval_docs)
        for doc_id, sample in rows.items():
            doc = dict(docs[doc_id])
            if suite == "gpqa":
                assert sorted(doc[k] for k in GPQA_SHUFFLED[:4]) == sorted(sample["doc"][k] for k in GPQA_SHUFFLED[:4])
                doc.update({k: sample["doc"][k] for k in GPQA_SHUFFLED})
            assert doc_hash(doc) == sample["doc_hash"], f"{name} doc {doc_id}"
            checked += 1
    assert checked >= 4 * n_tasks


def test_three_known_bbh_defects_score_zero_as_lm_eval_does(home, tmp_path, caplog):
    """One movie_recommendation target and two ruin_names targets are not among the options lm-eval lists: lm-eval
    warns and scores them 0 whatever the model prefers; the converted data keeps them, and they behave the same."""
    tasks = _tasks(home, "bbh", tmp_path)
    defects = []
    for name, task in tasks.items():
        for doc in task.eval_docs:
            gold, choices = task.doc_to_target(doc), task.doc_to_choice(doc)
            # lm-eval's rule: a digit target is an index ("6" in object_counting), any other string must be a choice
            if not (gold < len(choices) if isinstance(gold, int) else gold in choices):
                defects.append((name, doc))
    assert sorted(n for n, _ in defects) == ["leaderboard_bbh_movie_recommendation", "leaderboard_bbh_ruin_names",
                                             "leaderboard_bbh_ruin_names"]
    for name, doc in defects:
        task = tasks[name]
        n = len(task.doc_to_choice(doc))
        for best in range(n):  # whichever option the model prefers, lm-eval scores 0
            lls = [(0.0 if i == best else -10.0, i == best) for i in range(n)]
            with caplog.at_level(logging.WARNING, logger="lm_eval"):  # the CLI quiets lm_eval in-process
                result = task.process_results(doc, lls)
            assert result["acc_norm"] == 0.0
        assert "Label index was not in within range" in caplog.text


def test_gsm8k_and_truthfulqa_run_through_the_shipped_tasks(home, tmp_path):
    gsm = _tasks(home, "gsm8k", tmp_path)["gsm8k"]
    assert len(list(gsm.eval_docs)) == 1319 and len(list(gsm.fewshot_docs())) == 7473
    tqa = _tasks(home, "truthfulqa_mc2", tmp_path)["truthfulqa_mc2"]
    doc = next(iter(tqa.eval_docs))
    assert tqa.doc_to_target(doc) == 0 and len(tqa.doc_to_choice(doc)) == len(doc["mc2_targets"]["choices"])


def test_tampered_source_is_refused_and_previous_data_kept(tmp_path, cli, monkeypatch):
    """One byte changed in a copy of the mirror: `data pull` refuses in one line naming the file and the expected
    sha256, exit 2, and the copy pulled before is left as it was."""
    from harness.data.open_llm import BBH_SHA256

    shared = require_shared("data")
    mirror = tmp_path / "mirror"
    shutil.copytree(shared / "open_llm" / "bbh", mirror / "open_llm" / "bbh")
    settings = Settings(home=tmp_path / "home", offline=True)
    assert pull(settings, ["bbh"], data_dir=mirror)[0].status == "pulled"
    before = {p: p.read_bytes() for p in (settings.data_dir / "bbh").rglob("*") if p.is_file()}

    victim = mirror / "open_llm" / "bbh" / "snarks.json"
    victim.chmod(0o644)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    actual = hashlib.sha256(bytes(data)).hexdigest()

    monkeypatch.setenv("SPPO_BENCH_HOME", str(settings.home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, _, err = cli("data", "pull", "--suites", "bbh", "--force", "--data-dir", mirror)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert str(victim) in err and BBH_SHA256["snarks"] in err and actual in err
    after = {p: p.read_bytes() for p in (settings.data_dir / "bbh").rglob("*") if p.is_file()}
    assert after == before


def test_gpqa_is_never_printed_by_data_pull(tmp_path, cli, monkeypatch):
    """The GPQA authors ask that the questions never appear in plain text: the pull prints counts only."""
    shared = require_shared("data")
    monkeypatch.setenv("SPPO_BENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, out, err = cli("data", "pull", "--suites", "gpqa", "--data-dir", shared)
    assert code == 0, err
    import datasets

    ds = datasets.load_dataset("csv", data_files=str(tmp_path / "home" / "data" / "gpqa" / "gpqa_main" / "train.csv"),
                               split="train", cache_dir=str(tmp_path / "hf"))
    for row in ds.select(range(20)):
        assert row["Question"][:40] not in out + err


def test_hub_only_suite_names_the_command_that_gets_it(tmp_path):
    settings = Settings(home=tmp_path / "home", offline=True)
    with pytest.raises(UserError, match=r"hub only: run `sppo-bench data pull --suites musr` where the hub is reachable"):
        require(settings, "musr")


def test_our_run_logs_the_hubsdoc_hash(home, published, tmp_path):
    """A real run (tiny random model, --limit 1) through our lm-eval driver on the converted data keeps lm-eval's
    per-sample doc_hash and prompt_hash in its samples files, and every BBH and MATH-hard doc_hash equals the one lm-eval
    logged for the hub's document 0."""
    from harness.backends.base import BackendOptions
    from harness.catalog import get_suite
    from harness.engines.context import ModelRef, RunContext, RunOptions
    from harness.engines.lmeval import run_suite
    from harness.models import tiny_model
    from harness.store import RunDir

    model = tiny_model(tmp_path / "tiny")
    ctx = RunContext(settings=home, run=RunDir(tmp_path / "run"),
                     backend=BackendOptions(device="cpu", dtype="float32", batch_size=8),
                     options=RunOptions(limit=1, max_new_tokens=4))
    for suite, prefix in (("bbh", "leaderboard_bbh_"), ("math_lvl5", "leaderboard_math_")):
        record = run_suite(get_suite(suite), ModelRef(checkpoint=str(model), label="tiny"), ctx)
        assert record.status == "partial" and record.provenance.dataset.sha256
        folder = ctx.run.samples_dir("tiny", None, suite)
        for task, rows in published.items():
            if not task.startswith(prefix):
                continue
            ours = [json.loads(line) for line in (folder / f"samples_{task}.jsonl").read_text().split("\n") if line]
            assert len(ours) == 1 and ours[0]["doc_hash"] == rows[0]["doc_hash"], task
            assert len(ours[0]["prompt_hash"]) == 64
        # the leaderboard's normalization, computed here from lm-eval's own per-sample scores (DESIGN.md):
        # BBH: norm(acc_norm, 1/choices) per subtask, then the plain mean; MATH: exact_match_original over all items
        samples = {p.stem.removeprefix("samples_"): [json.loads(x) for x in p.read_text().split("\n") if x]
                   for p in folder.glob("samples_*.jsonl")}
        if suite == "bbh":
            from lm_eval.tasks import TaskManager

            def norm(x: float, lo: float) -> float:
                return 0.0 if x < lo else (x - lo) / (1 - lo) * 100

            manager = TaskManager(include_path=[str(folder / "tasks")], include_defaults=False)
            tasks = manager.load(list(samples))["tasks"]
            per = []
            for task, rows in samples.items():
                choices = len(tasks[task].doc_to_choice(rows[0]["doc"]))  # lm-eval's own option list
                per.append(norm(sum(r["acc_norm"] for r in rows) / len(rows), 1 / choices))
            assert len(per) == 24
            assert record.metrics["acc_norm"].value == pytest.approx(sum(per) / len(per))
        else:
            scores = [r["exact_match_original"] for rows in samples.values() for r in rows]
            assert record.metrics["exact_match_original"].value == pytest.approx(100 * sum(scores) / len(scores))


def test_gpqa_questions_never_reach_what_report_writes(home, tmp_path, cli, monkeypatch):
    """A real GPQA run (tiny model, 2 items per subtask): the card, its plots and the Hub results files written by
    `report --eval-results all` hold no question's text; the run's own samples are local (as lm-eval's are) and the
    viewer's GPQA page says it is not for publication and asks not to be indexed."""
    import datasets

    from harness.models import tiny_model

    monkeypatch.setenv("SPPO_BENCH_HOME", str(home.home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = tiny_model(tmp_path / "tiny")
    run, card = tmp_path / "run", tmp_path / "report" / "card.md"
    code, _, err = cli("eval", model, "--suites", "gpqa", "--limit", "2", "--out", run, "--dtype", "float32")
    assert code == 0, err
    code, _, err = cli("report", "--run", run, "--out", card, "--eval-results", "all")
    assert code == 0, err
    written = [p for p in card.parent.rglob("*") if p.is_file()]
    assert card in written and any(p.suffix == ".yaml" for p in written)
    blob = b"".join(p.read_bytes() for p in written)
    questions = []
    for config in GPQA_ROWS:
        ds = datasets.load_dataset("csv", data_files=str(home.data_dir / "gpqa" / config / "train.csv"),
                                   split="train", cache_dir=str(tmp_path / "hf"))
        questions += [row["Question"].strip() for row in ds.select(range(2))]
    assert len(questions) == 6
    for q in questions:
        for probe in (q[:40], q[-40:]):
            assert probe.encode() not in blob
    samples = (run / "samples").rglob("samples_leaderboard_gpqa_main.jsonl")
    assert any(questions[0][:40] in p.read_text() for p in samples)  # the local samples do hold them

    code, _, err = cli("view", run, "--out", tmp_path / "site")
    assert code == 0, err
    page = (tmp_path / "site" / "suites" / "gpqa.html").read_text()
    assert 'id="not-for-publication"' in page and 'content="noindex' in page
    assert "(not for publication)" in (tmp_path / "site" / "index.html").read_text()


def test_card_names_what_the_v2_average_lacks():
    """Four of six v2 suites (MuSR and MMLU-Pro hub only): no average is invented, and the footnote under the table
    names the two missing suites; a failed member counts as missing."""
    from harness import cards
    from harness.catalog import get_suite
    from harness.records import Metric, Provenance, ResultRecord

    def rec(suite: str, value: float, **kw) -> ResultRecord:
        return ResultRecord(model="m", suite=suite, metrics={get_suite(suite).headline: Metric(value=value)},
                            provenance=Provenance(source="run"), **kw)

    recs = [rec(s, 10.0) for s in ("ifeval", "bbh", "math_lvl5")]
    recs.append(ResultRecord(model="m", suite="gpqa", status="failed", error="gpqa: not pulled: run ...",
                             provenance=Provenance(source="run")))
    text = cards.render_card(cards.with_averages(recs), subject=None, source="x")
    assert "| Avg. | — |" in text.splitlines()
    assert ("Avg. (open_llm_v2) partial, not shown for m: lacks GPQA (0-shot), MuSR (0-shot), MMLU-PRO (5-shot) "
            "(the leaderboard's average needs all 6).") in text


def test_main_job_names_a_missing_suite_and_the_command(tmp_path):
    """train-and-eval skips a configured suite the data home lacks; the reason it prints and puts on the card names the
    command that gets it (hub, or the pinned upstream files)."""
    from harness.catalog import suites
    from harness.commands.train import suite_unavailable

    suites()
    why = suite_unavailable("bbh", Settings(home=tmp_path / "home", offline=True))
    assert why is not None and "\n" not in why
    assert "`sppo-bench data pull --suites bbh --data-dir DIR`" in why and "../shared/data" in why


@pytest.mark.parametrize("suite,prefix", [("bbh", "leaderboard_bbh_"), ("math_lvl5", "leaderboard_math_"),
                                          ("gpqa", "leaderboard_gpqa_")])
def test_prompts_hash_as_lm_eval_logged_them(home, tmp_path, suite, prefix):
    """The published Mistral runs used no chat template: the plain few-shot prompt lm-eval builds from our documents
    (its shipped few-shot examples included) hashes as its logged prompt_hash, with each file's own shot count (one
    file ran causal_judgement 0-shot)."""
    from lm_eval.utils import hash_string

    tasks = _tasks(home, suite, tmp_path)
    checked = 0
    files = require_shared("data/published/lm_eval_samples/mattdepaolis-llm-evaluation/results").glob("*.json")
    for path in sorted(files):
        data = json.loads(path.read_text(encoding="utf-8"))
        for name, rows in data["samples"].items():
            if not name.startswith(prefix):
                continue
            task, shots = tasks[name], int(data["n-shot"][name])
            task.set_fewshot_seed(seed=1234)
            docs = list(task.eval_docs)
            for sample in rows:
                doc = dict(docs[sample["doc_id"]])
                if suite == "gpqa":  # the shuffled options as lm-eval drew them (see above)
                    doc.update({k: sample["doc"][k] for k in GPQA_SHUFFLED})
                assert hash_string(task.fewshot_context(doc, num_fewshot=shots)) == sample["prompt_hash"], name
                checked += 1
    assert checked >= {"bbh": 107, "math_lvl5": 28, "gpqa": 23}[suite]
