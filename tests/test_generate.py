"""`sppo-bench generate`: prompt/messages lines in, the same lines plus completions out; bad lines named."""

from __future__ import annotations

import json

import pytest

from harness.backends.fake import FAKE_ERROR
from harness.models import tiny_model
from tests.openai_server import openai_server


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("SPPO_BENCH_HOME", str(tmp_path / "home"))


def _write(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def _read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_fake_backend_keeps_input_and_adds_completion(cli, tmp_path):
    rows = [{"prompt": "hello", "id": 1},
            {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}], "id": 2},
            {"prompt": "seeded", "seed": 4, "id": 3}]
    prompts = _write(tmp_path / "p.jsonl", rows[:2] + [""] + rows[2:])  # blank lines are skipped
    out = tmp_path / "out" / "gen.jsonl"
    code, stdout, err = cli("generate", "--backend", "fake", "--prompts", prompts, "--out", out,
                            "--temperature", "0.7", "--max-new-tokens", "50")
    assert code == 0, err
    got = _read(out)
    assert [{k: g[k] for k in r} for g, r in zip(got, rows, strict=True)] == rows
    assert all(isinstance(g["completion"], str) and g["completion"] for g in got)
    assert all(g["completion_tokens"] == len(g["completion"].split()) for g in got)
    assert "3 completions" in stdout and "0 from cache" in stdout
    code, stdout, _ = cli("generate", "--backend", "fake", "--prompts", prompts, "--out", out,
                          "--temperature", "0.7", "--max-new-tokens", "50")
    assert code == 0 and "3 from cache" in stdout and _read(out) == got
    code, _, _ = cli("generate", "--backend", "fake", "--prompts", prompts, "--out", tmp_path / "s.jsonl",
                     "--temperature", "0.7", "--max-new-tokens", "50", "--seed", "9")
    assert [g["completion"] for g in _read(tmp_path / "s.jsonl")][:2] != [g["completion"] for g in got][:2]


def test_failed_prompts_are_recorded_and_exit_1(cli, tmp_path):
    prompts = _write(tmp_path / "p.jsonl", [{"prompt": "fine"}, {"prompt": f"boom {FAKE_ERROR}"}])
    out = tmp_path / "gen.jsonl"
    code, stdout, err = cli("generate", "--backend", "fake", "--prompts", prompts, "--out", out)
    assert code == 1 and "1 failed" in stdout and "1 prompts failed" in err
    ok, failed = _read(out)
    assert ok["completion"] and "error" not in ok
    assert failed["completion"] is None and failed["finish_reason"] == "error" and failed["error"]


@pytest.mark.parametrize("line, expected", [
    ("{not json", "p.jsonl:2: not JSON"),
    ("[1, 2]", "p.jsonl:2: expected a JSON object"),
    ('{"text": "x"}', 'p.jsonl:2: needs a string "prompt" or a "messages" list; keys found: text'),
    ('{"prompt": 3}', 'p.jsonl:2: needs a string "prompt"'),
    ('{"messages": []}', 'p.jsonl:2: "messages" must be a non-empty list'),
    ('{"messages": [{"role": "robot", "content": "x"}]}', "p.jsonl:2: bad message"),
    ('{"messages": [{"role": "user"}]}', "p.jsonl:2: bad message"),
    ('{"prompt": "x", "seed": "one"}', 'p.jsonl:2: "seed" must be an integer'),
])
def test_bad_lines_name_their_line_number(cli, tmp_path, line, expected):
    prompts = _write(tmp_path / "p.jsonl", [{"prompt": "fine"}, line])
    code, _, err = cli("generate", "--backend", "fake", "--prompts", prompts, "--out", tmp_path / "o.jsonl")
    assert code == 2 and expected in err and err.count("\n") == 1
    assert not (tmp_path / "o.jsonl").exists()


def test_bad_arguments(cli, tmp_path):
    prompts = _write(tmp_path / "p.jsonl", [{"prompt": "x"}])
    code, _, err = cli("generate", "--backend", "fake", "--prompts", tmp_path / "nope.jsonl", "--out", tmp_path / "o")
    assert code == 2 and "no such prompts file" in err
    code, _, err = cli("generate", "--backend", "fake", "--prompts", _write(tmp_path / "e.jsonl", ["", " "]),
                       "--out", tmp_path / "o")
    assert code == 2 and "no prompts in it" in err
    code, _, err = cli("generate", "--backend", "fake", "--prompts", prompts, "--out", tmp_path / "o",
                       "--max-new-tokens", "0")
    assert code == 2 and "--max-new-tokens 0" in err
    code, _, err = cli("generate", "--backend", "nope", "--prompts", prompts, "--out", tmp_path / "o")
    assert code == 2 and "unknown backend 'nope'" in err
    code, _, err = cli("generate", "--model", str(tmp_path / "missing"), "--prompts", prompts, "--out", tmp_path / "o")
    assert code == 2 and "missing" in err
    code, _, err = cli("generate", "--backend", "fake", "--prompts", prompts, "--out", tmp_path / "o",
                       "--backend-opt", "timeout")
    assert code == 2 and "--backend-opt 'timeout': expected KEY=VALUE" in err


def test_hf_backend_end_to_end(cli, tmp_path):
    model = tiny_model(tmp_path / "tiny")
    prompts = _write(tmp_path / "p.jsonl", [{"prompt": "What is 2 + 2?"}, {"prompt": "hello"}])
    out = tmp_path / "o.jsonl"
    code, _, err = cli("generate", "--model", model, "--prompts", prompts, "--out", out, "--max-new-tokens", "4",
                       "--device", "cpu", "--no-cache")
    assert code == 0, err
    got = _read(out)
    assert all(1 <= g["completion_tokens"] <= 4 for g in got)


def test_openai_backend_end_to_end(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("SPPO_TEST_KEY", "sk-xyz")
    prompts = _write(tmp_path / "p.jsonl", [{"prompt": "one two"}, {"prompt": "three @@429*1"}])
    out = tmp_path / "o.jsonl"
    with openai_server() as server:
        code, _, err = cli("generate", "--backend", "openai", "--model", "m", "--base-url", server.url,
                           "--api-key-env", "SPPO_TEST_KEY", "--prompts", prompts, "--out", out)
        assert code == 0, err
        assert [g["completion"] for g in _read(out)] == ["echo: one two", "echo: three"]
        code, _, err = cli("generate", "--backend", "openai", "--model", "m", "--base-url", server.url,
                           "--api-key-env", "SPPO_TEST_KEY", "--prompts", _write(tmp_path / "q.jsonl", [
                               {"prompt": "ok"}, {"prompt": "down @@500*99"}]), "--out", out, "--no-cache",
                           "--backend-opt", "max_retries=2")
    assert code == 1 and "1 prompts failed" in err
    ok, down = _read(out)
    assert ok["completion"] == "echo: ok" and down["completion"] is None and "gave up after 3 attempts" in down["error"]
    assert "sk-xyz" not in out.read_text()
