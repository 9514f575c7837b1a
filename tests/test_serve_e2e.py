"""A real OpenAI-compatible server: `transformers serve` (it ships with the pinned transformers; its FastAPI/uvicorn
come with the [test] extra) serving the embedded default on 127.0.0.1, driven through `sppo-bench eval --backend
openai` and the official judges (`--judge official --judge-base-url`). Not our fake server: the real one's answers,
its refusals (a model it is not pinned to: HTTP 400) and what it lacks (log-probabilities: the official AlpacaEval
judge cannot run on it, one line says so). Timeouts, the server killed mid-run (a rerun finishes the rest, nothing
generated twice) and a wrong --judge-model are covered. Slow: the server loads SmolLM2-135M in ~20-40 s."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.models import default_model_dir
from harness.settings import Settings

pytestmark = pytest.mark.slow
KEY_ENV = "SPPO_SERVE_TEST_KEY"  # the server ignores keys; the openai backend wants a variable that is set
SPPO_BENCH = str(Path(sys.executable).parent / "sppo-bench")
START_TIMEOUT_S = 300  # a loaded 2-core machine: the model load has taken 40 s


@dataclass
class Server:
    url: str
    model: str
    proc: subprocess.Popen[bytes]
    log: Path

    def completions(self) -> int:
        """Chat completions the server has answered (uvicorn's access log)."""
        return self.log.read_text(errors="replace").count('"POST /v1/chat/completions HTTP/1.1" 200')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(model: str, log: Path, port: int | None = None) -> Iterator[Server]:
    """`transformers serve MODEL` on 127.0.0.1 as a subprocess; up when /health answers; stopped on exit."""
    exe = Path(sys.executable).parent / "transformers"
    port = port or _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "HF_HOME": str(log.parent / "hf-home")}
    with log.open("ab") as out:
        proc = subprocess.Popen([str(exe), "serve", model, "--host", "127.0.0.1", "--port", str(port), "--device", "cpu",
                                 "--dtype", "float32", "--log-level", "info"], stdout=out, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)
    server = Server(f"http://127.0.0.1:{port}/v1", model, proc, log)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"transformers serve exited with {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"transformers serve not healthy after {START_TIMEOUT_S} s: {log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield server
    finally:
        stop(server)


def stop(server: Server) -> None:
    if server.proc.poll() is None:
        os.killpg(server.proc.pid, signal.SIGKILL)
        server.proc.wait(30)


@pytest.fixture(scope="module")
def home(data_home) -> Path:
    """The judged suites' data (data_home) and the prepared embedded default (linked from the cache home)."""
    src = Path(os.environ.get("SPPO_BENCH_HOME") or Path.home() / ".cache" / "sppo-bench")
    if not (default_model_dir(Settings(home=src, offline=True)) / "config.json").is_file():
        pytest.skip("the embedded default is not prepared (run `sppo-bench models prepare`)")
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"transformers serve needs the [test] extra's transformers[serving] ({exc})")
    if not (data_home / "models").exists():
        (data_home / "models").symlink_to(src / "models", target_is_directory=True)
    return data_home


def stops_at_newline(model: Path, dest: Path) -> Path:
    """The same weights (linked), with a newline added to the end-of-text tokens of the generation defaults that
    `transformers serve` starts from: a judgment ends after its first line (seconds on CPU) instead of running to the
    judges' 2048-token cap, and it still has to carry the verdict there; the request itself is unchanged."""
    import json

    from tokenizers import Tokenizer

    dest.mkdir()
    for f in model.iterdir():
        if f.name != "generation_config.json":
            (dest / f.name).symlink_to(f)
    config = json.loads((model / "generation_config.json").read_text())
    tok = Tokenizer.from_file(str(model / "tokenizer.json"))
    newlines = [ids[0] for ids in (tok.encode(t, add_special_tokens=False).ids for t in ("\n", "\n\n")) if len(ids) == 1]
    eos = config.get("eos_token_id")
    config["eos_token_id"] = [*(eos if isinstance(eos, list) else [eos]), *newlines]
    (dest / "generation_config.json").write_text(json.dumps(config))
    return dest


@pytest.fixture(scope="module")
def server(home, tmp_path_factory) -> Iterator[Server]:
    where = tmp_path_factory.mktemp("serve")
    model = stops_at_newline(default_model_dir(Settings(home=home, offline=True)), where / "SmolLM2-one-line")
    with serve(str(model), where / "log") as s:
        yield s


@pytest.fixture
def sppo(home, monkeypatch):
    """`sppo-bench ...` as a subprocess (real exit status, real stderr) against the test home."""
    env = {**os.environ, "SPPO_BENCH_HOME": str(home), KEY_ENV: "not-checked", "OMP_NUM_THREADS": "1"}

    def _run(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return subprocess.run([SPPO_BENCH, *map(str, args)], env=env, capture_output=True,
                              text=True, timeout=timeout)

    return _run


def _openai(server: Server, *extra: str) -> list[str]:
    """The generator on the server, and the official judges on the same server (same model)."""
    return ["--backend", "openai", "--base-url", server.url, "--api-key-env", KEY_ENV, server.model,
            "--judge", "official", "--judge-base-url", server.url, "--judge-model", server.model,
            "--judge-api-key-env", KEY_ENV, "--max-new-tokens", "16", *extra]


def _one_line_exit_2(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    last = err[-1]
    for needle in needles:
        assert needle in last, last
    return last


def test_alpaca_eval_generates_then_the_official_judge_needs_logprobs(server, sppo, tmp_path):
    run = tmp_path / "run"
    before = server.completions()
    proc = sppo("eval", *_openai(server, "--suites", "alpaca_eval", "--limit", "5", "--out", run))
    _one_line_exit_2(proc, "returns no log-probabilities", "official AlpacaEval judge", "--judge local")
    assert server.completions() - before >= 5  # 5 answers generated on the server, then the 1-token judge call
    # the answers are kept: judging them locally asks the server for nothing
    before = server.completions()
    proc = sppo("eval", "--backend", "openai", "--base-url", server.url, "--api-key-env", KEY_ENV, server.model,
                "--judge", "local", "--max-new-tokens", "16", "--suites", "alpaca_eval", "--limit", "5", "--out", run)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert server.completions() == before
    import json

    rec = json.loads(next((run / "records").rglob("alpaca_eval.json")).read_text())
    assert rec["status"] == "partial" and rec["coverage"]["total"] == 5


def test_mt_bench_official_judge_on_the_server(server, sppo, tmp_path):
    """MT-Bench's official single-answer grading prompt (FastChat's), judged by the 135M model on the server: verdicts
    without a `[[rating]]` are counted as failed and never scored; none readable: the record says failed and why, and
    the judge's own words are kept in the judgments file."""
    import json

    run = tmp_path / "run"
    proc = sppo("eval", *_openai(server, "--suites", "mt_bench", "--limit", "1", "--judge-timeout", "600",
                                 "--out", run))
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    rec = json.loads(next((run / "records").rglob("mt_bench.json")).read_text())
    assert rec["judge"]["official"] and rec["judge"]["id"] == "mt_bench/gpt-4-single"
    assert rec["judge"]["model"] == server.model and rec["judge"]["backend"] == "openai"
    cov = rec["coverage"]
    assert cov["total"] == 2 and cov["scored"] + cov["failed"] == 2  # one question, two turns, each judged once
    if cov["scored"] == 0:
        assert rec["status"] == "failed" and not rec["metrics"] and "no rating could be read" in rec["error"]
    else:
        assert rec["status"] == "partial" and rec["metrics"]["average"]["n"] == cov["scored"]
    judged = [json.loads(line) for p in run.rglob("model_judgment/*.jsonl") for line in p.read_text().splitlines()
              if line.strip()]
    assert len(judged) == 2 and all(j["judgment"] for j in judged)  # what the judge said, kept as said
    assert sum(j["score"] == -1 for j in judged) == cov["failed"]  # FastChat's mark of a verdict without a rating


def test_wrong_judge_model_is_one_line_exit_2(server, sppo, tmp_path):
    proc = sppo("eval", *_openai(server, "--suites", "mt_bench", "--limit", "1", "--out", tmp_path / "run"),
                "--judge-model", "no-such/judge")
    _one_line_exit_2(proc, "'no-such/judge' is not served there", "--judge-model")


def test_generation_timeout_is_reported_not_faked(server, sppo, tmp_path):
    """Every answer timing out (0.05 s per attempt, no retry): no answer is invented, nothing is judged, and the
    record says why."""
    import json

    run = tmp_path / "run"
    proc = sppo("eval", *_openai(server, "--suites", "alpaca_eval", "--limit", "2", "--seed", "7",
                                 "--backend-opt", "timeout=0.05", "--backend-opt", "max_retries=0", "--out", run))
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    rec = json.loads(next((run / "records").rglob("alpaca_eval.json")).read_text())
    assert proc.returncode == 1 and "units failed" in proc.stderr, proc.stderr[-2000:]  # not a silent exit 0
    assert rec["status"] == "failed" and rec["coverage"]["failed"] == 2 and not rec["metrics"]
    assert any("2 generations failed" in n and "timed out after 0.05 s" in n for n in rec["notes"]), rec["notes"]
    outputs = json.loads(next(run.rglob("model_outputs.json")).read_text())
    assert [o["output"] for o in outputs] == ["", ""]  # never a fake text


def test_server_killed_mid_run_then_rerun_finishes_the_rest(home, sppo, tmp_path):
    """Generation of 6 answers; the server is killed after the 2nd. The run keeps what it received and its record
    says how many generations failed and why, and the command exits 1 (the unit is not done). Restarted, the same
    command finishes: the received answers come from the content cache, only the ones never received are asked for."""
    import json

    model = str(default_model_dir(Settings(home=home, offline=True)))
    run, log, port = tmp_path / "run", tmp_path / "serve.log", _free_port()
    args = ["eval", "--backend", "openai", "--base-url", f"http://127.0.0.1:{port}/v1", "--api-key-env", KEY_ENV, model,
            "--judge", "local", "--max-new-tokens", "16", "--max-concurrency", "1", "--backend-opt", "max_retries=1",
            "--suites", "alpaca_eval", "--limit", "6", "--seed", "11", "--out", str(run)]
    with serve(model, log, port) as first:
        env = {**os.environ, "SPPO_BENCH_HOME": str(home), KEY_ENV: "x", "OMP_NUM_THREADS": "1"}
        proc = subprocess.Popen([SPPO_BENCH, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        deadline = time.monotonic() + 600
        while first.completions() < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        stop(first)  # killed mid-run
        got_before_kill = first.completions()
        _out, err = proc.communicate(timeout=600)
    assert 2 <= got_before_kill < 6, (got_before_kill, err[-2000:])
    assert proc.returncode == 1 and "generations failed" in err, (proc.returncode, err[-2000:])
    assert "Traceback" not in err, err[-3000:]
    rec = json.loads(next((run / "records").rglob("alpaca_eval.json")).read_text())
    missing = 6 - got_before_kill
    assert rec["coverage"]["failed"] == missing
    assert any(f"{missing} generations failed" in n and "connection failed" in n for n in rec["notes"]), rec["notes"]
    with serve(model, log.with_name("serve2.log"), port) as second:
        again = sppo(*args)  # the same command: a record with failed generations is not done
        assert again.returncode == 0, again.stderr[-3000:]
        assert second.completions() == missing  # the rest, nothing twice
    rec = json.loads(next((run / "records").rglob("alpaca_eval.json")).read_text())
    assert rec["coverage"]["total"] == 6 and rec["coverage"]["scored"] == 6 and rec["coverage"]["failed"] == 0
