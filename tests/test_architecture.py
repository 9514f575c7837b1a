"""The shape of the code: small files and functions, dependencies pointing down, and a new judged suite that is one
module plus one registry line."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 60


def _sources() -> list[Path]:
    return sorted((REPO / "harness").rglob("*.py"))


def test_no_file_in_harness_is_over_400_lines():
    long = {str(p.relative_to(REPO)): n for p in _sources() if (n := p.read_text().count("\n")) > MAX_FILE_LINES}
    assert long == {}


def test_no_function_is_over_60_lines():
    long = []
    for path in [*_sources(), *sorted((REPO / "benchmarks").rglob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({length} lines)")
    assert long == []


def test_dependencies_point_down():
    """The import contract in .importlinter (also run by `nox -s lint`)."""
    pytest.importorskip("importlinter", reason="import-linter is in the test extra")
    done = subprocess.run([sys.executable, "-m", "importlinter.cli", "--config", str(REPO / ".importlinter")],
                          cwd=REPO, capture_output=True, text=True)
    if "No module named importlinter.cli" in done.stderr:
        done = subprocess.run(["lint-imports", "--config", str(REPO / ".importlinter")], cwd=REPO, capture_output=True,
                              text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]


TOY = textwrap.dedent("""
    import sys
    sys.path.insert(0, {repo!r})
    import benchmarks                  # the registered suites
    import tests.fixtures.toy_suite    # the new suite: one module, and this one line
    from harness.cli import main
    sys.exit(main(sys.argv[1:]))
""")


def test_a_toy_judged_suite_is_one_module_and_one_registry_line(tmp_path):
    data = tmp_path / "data" / "toy"
    data.mkdir(parents=True)
    (data / "questions.jsonl").write_text("".join(json.dumps({"question": f"What is {i} + {i}?"}) + "\n"
                                                  for i in range(3)))
    script = tmp_path / "run.py"
    script.write_text(TOY.format(repo=str(REPO)))
    env = {"SPPO_BENCH_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, str(script), "eval", "fake-model", "--backend", "fake", "--judge",
                           "local", "--judge-backend", "fake", "--suites", "toy", "--data-dir", str(tmp_path / "data"),
                           "--out", str(tmp_path / "run")], capture_output=True, text=True, env=env, cwd=REPO)
    assert done.returncode == 0, done.stderr
    record = json.loads(next((tmp_path / "run" / "records").glob("*/toy.json")).read_text())
    assert record["judge"]["id"] == "toy/local" and record["metrics"]["helpful"]["n"] == 3
    items = (tmp_path / "run" / "samples").glob("*/toy/items.jsonl")
    assert len(next(items).read_text().splitlines()) == 3
