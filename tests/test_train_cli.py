"""`sppo-bench train` / `train-and-eval` through the CLI: bad input (one line, exit 2), a real tiny run, resume,
NaN scores, and the train-and-eval orchestration (every suite on every checkpoint, skipped suites named, the card)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.records import Metric, Provenance, ResultRecord


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


@pytest.mark.slow
def test_train_and_eval_runs_every_suite_on_every_checkpoint_and_writes_the_card(cli, tmp_path, tiny, monkeypatch):
    import harness.commands.train as train_cmd
    import harness.executors.matrix as matrix

    def unavailable(name, settings):
        return "no data offline; run `sppo-bench data pull --suites mt_bench`" if name == "mt_bench" else None

    def fake_ifeval(unit, ctx):  # stands in for lm-eval: the orchestration is under test here, not the suite
        value = 20.0 + 5 * (unit.model.iteration or 0)
        return ResultRecord(model=unit.model.label, iteration=unit.model.iteration, checkpoint=unit.model.checkpoint,
                            suite=unit.suite, limit=ctx.options.limit, status="partial",
                            metrics={"strict_acc": Metric(value=value), "prompt_level_strict_acc": Metric(value=value),
                                     "inst_level_strict_acc": Metric(value=value)},
                            provenance=Provenance(source="run", location=unit.model.checkpoint))

    monkeypatch.setattr(train_cmd, "suite_unavailable", unavailable)
    monkeypatch.setattr(matrix, "run_registered_suite", fake_ifeval)
    cfg = write_config(tmp_path, tiny, extra='[eval]\nsuites = ["ifeval", "mt_bench"]\nlimit = 2\n')
    out = tmp_path / "run"
    code, stdout, err = cli("train-and-eval", "--iters", "2", "--config", cfg, "--out", out, "--no-progress")
    assert code == 0, err
    assert "skip mt_bench: no data offline" in stdout and "not run: mt_bench" in stdout
    records = {p.parent.name: json.loads(p.read_text()) for p in (out / "eval" / "records").glob("*/ifeval.json")}
    assert sorted(r["iteration"] for r in records.values()) == [0, 1, 2]
    assert all("test profile" in r["notes"] for r in records.values())
    card = out / "report" / "Tiny-SPPO.md"
    assert card.exists() and f"Card: {card}" in stdout
    text = card.read_text()
    assert "Tiny-SPPO Iter 2" in text and "30.0" in text
    assert "> **test profile**" in text and "Not run: `mt_bench` (no data offline" in text
    assert (out / "report" / "Tiny-SPPO-plots" / "ifeval.png").exists()
    site = out / "report" / "site" / "index.html"
    assert site.is_file() and f"Viewer: {site}" in stdout and "Tiny-SPPO Iter 2" in site.read_text()
    # The SPPO objective of every iteration, measured for real (the tiny checkpoints, the training preference
    # model), stored as records with items, and on the card as its own table.
    objective = {p.parent.name: json.loads(p.read_text()) for p in (out / "eval" / "records").glob("*/sppo_objective.json")}
    assert sorted(r["iteration"] for r in objective.values()) == [1, 2]
    assert all(r["metrics"]["win_rate_vs_base"]["n"] == 120 for r in objective.values())
    assert len(list((out / "eval" / "samples").glob("*/sppo_objective/items.jsonl"))) == 2
    assert "objective: iter 2 win rate vs base" in stdout and "SPPO objective" in text

    # Rerun: training, evaluation and the objective are all reused.
    code, stdout, _ = cli("train-and-eval", "--iters", "2", "--config", cfg, "--out", out, "--no-progress")
    assert code == 0 and "0 run, 5 already done" in stdout and stdout.count("reused (inputs unchanged)") == 10
