"""The CI job users copy (tests/ci_job/: a GitHub Actions workflow and regression.sh), run as the workflow runs it, on
the embedded default with tiny limits: against a card made from its own earlier run it passes (exit 0, the table in
the job summary, JUnit XML with no failure); against a reference 5 points higher it fails (exit 1) and the summary
says which metric dropped and by how much."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from harness.models import default_model_dir
from harness.settings import Settings

REPO = Path(__file__).resolve().parents[1]
JOB = REPO / "tests" / "ci_job"
BIN = Path(sys.executable).parent
LABEL = "smollm2-ci"
BUMP = 5.0


@pytest.fixture(scope="module")
def home(data_home) -> Path:
    src = Path(os.environ.get("SPPO_BENCH_HOME") or Path.home() / ".cache" / "sppo-bench")
    if not (default_model_dir(Settings(home=src, offline=True)) / "config.json").is_file():
        pytest.skip("the embedded default is not prepared (run `sppo-bench models prepare`)")
    if not (data_home / "models").exists():
        (data_home / "models").symlink_to(src / "models", target_is_directory=True)
    return data_home


def _env(home: Path, out: Path, reference: Path, summary: Path) -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "SPPO_BENCH_HOME": str(home),
            "CANDIDATE": str(default_model_dir(Settings(home=home, offline=True))), "REFERENCE": str(reference),
            "LABEL": LABEL, "SUITES": "alpaca_eval",
            "EVAL_ARGS": "--limit 3 --max-new-tokens 16 --judge local --batch-size 4",
            "CHECK_ARGS": "--allow-partial --sigma 0 --abs-tol 0.5", "OUT": str(out), "GITHUB_STEP_SUMMARY": str(summary)}


def _job(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(JOB / "regression.sh")], env=env, capture_output=True, text=True, timeout=900)


def test_workflow_runs_the_script_and_publishes_summary_and_junit():
    wf = yaml.safe_load((JOB / "sppo-bench-regression.yml").read_text())
    steps = wf["jobs"]["regression"]["steps"]
    runs = " ".join(s.get("run", "") for s in steps)
    assert "bash tests/ci_job/regression.sh" in runs and "download.pytorch.org/whl/cpu" in runs
    uses = {s.get("uses", "").split("@")[0]: s for s in steps}
    assert uses["actions/cache"]["with"]["path"] == "${{ env.SPPO_BENCH_HOME }}"
    assert uses["mikepenz/action-junit-report"]["with"]["report_paths"].endswith("junit.xml")
    assert uses["mikepenz/action-junit-report"]["if"] == "always()"


@pytest.mark.slow
def test_ci_job_passes_against_its_own_card_and_fails_five_points_below(home, tmp_path):
    # the earlier run, and the card made from it (what a project publishes)
    earlier = tmp_path / "earlier"
    model = str(default_model_dir(Settings(home=home, offline=True)))
    env = {**os.environ, "SPPO_BENCH_HOME": str(home)}
    first = subprocess.run([str(BIN / "sppo-bench"), "eval", model, "--label", LABEL, "--suites", "alpaca_eval",
                            "--limit", "3", "--max-new-tokens", "16", "--judge", "local", "--batch-size", "4",
                            "--out", str(earlier)], env=env, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stderr[-3000:]
    card = tmp_path / "published" / "card.md"
    card.parent.mkdir()
    made = subprocess.run([str(BIN / "sppo-bench"), "report", "--run", str(earlier), "--out", str(card), "--no-plots",
                           "--no-eval-results"], env=env, capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr[-3000:]

    # pass: the same model against its own card
    summary = tmp_path / "summary-pass.md"
    ok = _job(_env(home, tmp_path / "ci-pass", card, summary))
    assert ok.returncode == 0, ok.stdout[-2000:] + ok.stderr[-3000:]
    text = summary.read_text()
    assert "| model | suite | metric |" in text and "**passed**" in text and "\nOK: " in text
    junit = ET.parse(tmp_path / "ci-pass" / "junit.xml").getroot()
    assert int(junit.get("tests", "0")) >= 1 and junit.get("failures") == "0"

    # fail: a reference whose every headline number is 5 points higher
    record = json.loads(next((earlier / "records").rglob("alpaca_eval.json")).read_text())
    headline = {name: m["value"] for name, m in record["metrics"].items() if m.get("value") is not None}
    assert headline
    for m in record["metrics"].values():
        if m.get("value") is not None:
            m["value"] += BUMP
            m["stderr"] = m["ci_low"] = m["ci_high"] = None
    record["status"] = "complete"
    higher = tmp_path / "higher.json"
    higher.write_text(json.dumps({"schema_version": 1, "name": "five points higher", "source": "test",
                                  "card_model": LABEL, "records": [record]}))
    summary = tmp_path / "summary-fail.md"
    bad = _job(_env(home, tmp_path / "ci-fail", higher, summary))
    assert bad.returncode == 1, bad.stdout[-2000:] + bad.stderr[-3000:]
    text = summary.read_text()
    assert "**regression**" in text and "\nFAIL: " in text
    junit = ET.parse(tmp_path / "ci-fail" / "junit.xml").getroot()
    assert int(junit.get("failures", "0")) >= 1
    failing = [line for line in text.splitlines() if line.startswith("|") and "alpaca_eval" in line and "-5.0" in line]
    assert failing, text  # the row says the metric is 5 points below the reference
