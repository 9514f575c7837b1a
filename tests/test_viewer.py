"""The run viewer without a browser: what the site's files hold, the verdict logic on golden cases, the training
summary, and bad input. Expected numbers come from the fixture (tests/viewer_fixtures.py), written by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.catalog import get_suite
from harness.errors import UserError
from harness.records import ItemRow
from harness.store import RunDir
from harness.viewer import build_site
from harness.viewer.items import build_items, judge_verdict, markdown
from harness.viewer.training import training_summary
from tests.viewer_fixtures import ALPACA, ALPACA_CI, ARENA, CHECKPOINTS, XSS, small_run, train_folder


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("viewer")
    build_site([train_folder(root / "out")], root / "site")
    return root / "site"


def data_of(site: Path, suite: str) -> dict:
    text = (site / "suites" / f"{suite}.data.js").read_text()
    prefix, suffix = "window.SPPO_VIEWER_DATA = JSON.parse(", ");\n"
    assert text.startswith(prefix) and text.endswith(suffix)
    return json.loads(json.loads(text[len(prefix) : -len(suffix)]))


def test_site_has_an_overview_an_item_page_per_suite_with_rows_and_no_remote_reference(site):
    files = sorted(str(p.relative_to(site)) for p in site.rglob("*") if p.is_file())
    assert {"index.html", "assets/viewer.css", "assets/viewer.js", ".sppo-viewer.json"} <= set(files)
    for suite in ("alpaca_eval", "arena_hard", "mt_bench", "gsm8k"):
        assert f"suites/{suite}.html" in files and f"suites/{suite}.data.js" in files
    assert "suites/ifeval.html" not in files  # the failed record has no items
    assert {"plots/alpaca_eval.png", "plots/arena_hard.png"} <= set(files)
    for name in files:
        if name.endswith((".html", ".css", ".js")):
            text = (site / name).read_text()
            assert "http://" not in text and "https://" not in text and "//cdn" not in text, name


def test_overview_prints_each_number_with_n_and_ci_and_links_it(site):
    html = (site / "index.html").read_text()
    for i, (model, _) in enumerate(CHECKPOINTS):
        lc, wr, length = ALPACA[i]
        low, high = ALPACA_CI[i]
        slug = model.replace(" ", "_")
        assert f"{lc:.2f}</a>" in html and f"n=3 · 95% CI {low:.2f}–{high:.2f}" in html
        assert f'href="suites/alpaca_eval.html#ckpt={slug}-' in html  # slugs of labels with spaces carry a hash
        score, lo, hi, _ = ARENA[i]
        assert f"(-{-lo:.1f}, +{hi:.1f})" in html  # the card's Arena-Hard CI column
    assert "Calibration: not calibrated" in html  # the local judge
    assert "81.4%" in html and "0.612" in html  # the calibrated judge: agreement, kappa
    assert "generation backend crashed" in html  # the failed record, in failures and coverage
    assert 'href="#rec-Tiny-SPPO_Iter_2-' in html  # the failed cell links to its record section


def test_answers_are_markdown_with_html_shown_as_text(site):
    page = (site / "suites" / "alpaca_eval.html").read_text()
    assert "<strong>Iteration 1</strong> says" in page
    assert "&lt;script&gt;window.__viewer_xss = 1&lt;/script&gt;" in page and "<script>window.__viewer_xss" not in page
    assert "<img" not in page  # images are off: an answer cannot make the page fetch anything
    cells = [c for it in data_of(site, "alpaca_eval")["items"] for c in it["cells"] if c]
    assert any("&lt;script&gt;" in c["answer_html"] for c in cells)
    assert not any("<script" in (c["answer_html"] or "") for c in cells)


def test_item_data_side_by_side_with_filters_precomputed(site):
    data = data_of(site, "alpaca_eval")
    assert len(data["checkpoints"]) == 3
    items = {it["key"]: it for it in data["items"]}
    assert list(items) == ["0", "1", "2"]
    # prefs per item (fixture): item 0 base missing, Iter 1 1.1 (loss), Iter 2 1.6 (win) -> changed; others all win
    assert [items[k]["changed"] for k in ("0", "1", "2")] == [True, False, False]
    assert items["0"]["cells"][0] is None
    assert [c["verdict"] for c in items["0"]["cells"][1:]] == ["loss", "win"]
    gsm = {it["key"]: it for it in data_of(site, "gsm8k")["items"]}
    # item d: Iter i answers 2d + (d < i); target 2d
    assert [c["extracted"] for c in gsm["0"]["cells"]] == ["0", "1", "1"]
    assert {c["target"] for c in gsm["0"]["cells"]} == {"0"}
    assert [c["verdict"] for c in gsm["1"]["cells"]] == ["correct", "correct", "wrong"]
    mt = [it["key"] for it in data_of(site, "mt_bench")["items"]]
    assert mt == ["81/turn1", "81/turn2"]


def test_length_change_is_the_spread_across_checkpoints():
    spec = get_suite("alpaca_eval")
    cols = [[ItemRow(item="7", answer="a", length=n, scores={"preference": 1.5})] for n in (120, 40, 95)]
    (item,) = build_items(spec, cols, markdown())
    assert item.length_change == 80
    assert item.changed is False  # three ties


@pytest.mark.parametrize(("games", "label", "tone"), [
    (["B>A", "A>B"], "better / better", "good"),        # game 1: the baseline is A; game 2: this model is A
    (["A>>B", "B>>A"], "much worse / much worse", "bad"),
    (["A=B", "B>A"], "tie / worse", "bad"),
    (["B>>A", None], "much better / no verdict", "good"),
])
def test_arena_games_are_read_from_the_models_side(games, label, tone):
    got_label, got_tone, details = judge_verdict(ItemRow(item="q", games=games), get_suite("arena_hard"))
    assert (got_label, got_tone) == (label, tone)
    assert details[0].startswith("game 1 (baseline is A)") and details[1].startswith("game 2 (this model is A)")


def test_published_outputs_without_a_judge_have_no_verdict():
    assert judge_verdict(ItemRow(item="1", scores={"length": 12}), get_suite("alpaca_eval")) == (None, None, [])


def test_markdown_keeps_html_as_text_and_drops_images_and_javascript_links():
    md = markdown()
    html = md.render(XSS + "\n\n![x](http://example.com/t.png) [y](javascript:alert(1))")
    assert "<script" not in html and "<img" not in html and 'href="javascript:' not in html
    assert "&lt;script&gt;" in html and "[y](javascript:alert(1))" in html  # the unsafe link stays text


def test_training_summary_reads_the_pipeline_files(tmp_path):
    summary = training_summary(train_folder(tmp_path / "out"))
    first, second = summary.iterations
    # fixture: 3 + t prompts, 2 responses each, one cut at the cap; scores +-0.25n -> gap 0.5n
    assert (first.prompts, first.responses, first.per_prompt, first.truncated) == (4, 8, 2, 1)
    assert (second.prompts, second.responses) == (5, 10)
    assert first.score_gap == pytest.approx((0 + 0.5 + 1.0 + 1.5) / 4)
    assert (first.first_loss, first.last_loss, first.train_loss) == (0.70, 0.60, 0.65)
    assert second.last_margin == pytest.approx(0.4) and second.seconds == {"train": 25.0}
    assert summary.loss == "soft SPPO" and summary.name == "Tiny-SPPO"


def test_rebuild_removes_what_the_last_build_wrote_and_this_one_does_not(tmp_path):
    run = small_run(tmp_path / "run")
    build_site([run], tmp_path / "site")
    (run / "samples").rename(tmp_path / "samples-moved")
    build_site([run], tmp_path / "site")
    assert not (tmp_path / "site" / "suites" / "alpaca_eval.html").exists()
    assert (tmp_path / "site" / "index.html").exists()


def test_view_cli_writes_the_site_and_bad_input_is_one_line(cli, tmp_path):
    run = small_run(tmp_path / "run")
    code, out, err = cli("view", run, "--out", tmp_path / "site")
    assert code == 0, err
    assert out.strip() == f"wrote {tmp_path / 'site' / 'index.html'}"
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("keep")
    for args, message in [((tmp_path / "nope",), "no such folder"),
                          ((tmp_path / "full",), "neither a run directory"),
                          ((run, "--out", tmp_path / "full"), "non-empty folder that holds no viewer site")]:
        argv = [*args] if "--out" in args else [*args, "--out", tmp_path / "site2"]
        code, out, err = cli("view", *argv)
        assert code == 2 and message in err and err.count("\n") == 1, err
    assert (tmp_path / "full" / "mine.txt").read_text() == "keep" and not (tmp_path / "site2").exists()


def test_a_bad_item_line_is_named(tmp_path):
    run = small_run(tmp_path / "run")
    items = next(run.glob("samples/*/gsm8k/items.jsonl"))
    items.write_text(items.read_text() + '{"item": 3}\n')
    with pytest.raises(UserError, match=r"items.jsonl:5: not an item row \(item: "):
        build_site([run], tmp_path / "site")
    assert not (tmp_path / "site").exists()


def test_a_run_from_an_import_of_published_annotations(cli, shared_data, tmp_path, monkeypatch):
    """`import alpaca-eval` of alpaca_eval's published annotations (the real importer), then `view`."""
    monkeypatch.setenv("SPPO_BENCH_HOME", str(tmp_path / "home"))
    outputs = json.loads((shared_data / "alpaca_eval/results/gpt4_1106_preview/model_outputs.json").read_text())
    eval_set = tmp_path / "home" / "data" / "alpaca_eval" / "eval.jsonl"
    eval_set.parent.mkdir(parents=True)
    eval_set.write_text("".join(json.dumps(r) + "\n" for r in outputs))
    name = "OpenHermes-2.5-Mistral-7B"
    annotations = shared_data / f"alpaca_eval/results/{name}/weighted_alpaca_eval_gpt4_turbo/annotations.json"
    code, _, err = cli("import", "alpaca-eval", annotations, "--model", name, "--out", tmp_path / "run")
    assert code == 0, err
    code, _, err = cli("view", tmp_path / "run", "--out", tmp_path / "site")
    assert code == 0, err
    html = (tmp_path / "site" / "index.html").read_text()
    (record,) = RunDir(tmp_path / "run").records()
    assert f"{record.metrics['win_rate'].value:.2f}</a>" in html
    assert "weighted_alpaca_eval_gpt4_turbo" in html and "Calibration: not calibrated" in html
    has_items = (RunDir(tmp_path / "run").samples_dir(name, None, "alpaca_eval") / "items.jsonl").exists()
    assert (tmp_path / "site" / "suites" / "alpaca_eval.html").exists() == has_items
