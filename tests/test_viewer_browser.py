"""The viewer in a real browser: Debian's Chromium, headless, driven over the DevTools protocol (tests/viewer_cdp.py).
Assertions are on the live DOM after the page's script ran. Skipped when chromium is absent locally; under CI=true
(set by .ci/run, which installs it) a missing chromium fails instead."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from harness.viewer import build_site
from tests.viewer_cdp import Browser, find_chromium
from tests.viewer_fixtures import ALPACA, ALPACA_CI, CHECKPOINTS, MT, alpaca_805, train_folder

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser():
    exe = find_chromium()
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but chromium is not installed: .ci/run installs it (apt-get install -y chromium)")
        pytest.skip("chromium is not installed (Debian: apt-get install -y chromium); browser tests skipped")
    with Browser(exe) as b:
        yield b


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("viewer-browser")
    build_site([train_folder(root / "out")], root / "site")
    return root / "site"


def load(browser: Browser, page: Path, hash_: str = "") -> None:
    browser.open(page, hash_)
    if page.parent.name == "suites":
        browser.wait_for("document.documentElement.dataset.ready")
    assert browser.console_errors() == []


def texts(browser: Browser, selector: str) -> list[str]:
    return browser.evaluate(f"Array.from(document.querySelectorAll({json.dumps(selector)}), e => e.textContent.trim())")


def test_overview_tables_hold_the_records_numbers(browser, site):
    load(browser, site / "index.html")
    rows = browser.evaluate("""Array.from(document.querySelectorAll('#table-alpaca_eval tbody tr'),
        tr => Array.from(tr.children, c => c.innerText.trim()))""")
    expected = []
    for i, (model, _) in enumerate(CHECKPOINTS):
        lc, wr, length = ALPACA[i]
        low, high = ALPACA_CI[i]
        expected.append([model, f"{lc:.2f}\nn=3 · 95% CI {low:.2f}–{high:.2f}", f"{wr:.2f}\nn=3", f"{length}"])
    assert rows == expected
    mt = texts(browser, "#table-mt_bench tbody tr:last-child td a.num")
    assert mt == [f"{v:.2f}" for v in MT[2]]
    hrefs = browser.evaluate("Array.from(document.querySelectorAll('#table-alpaca_eval a.num'), a => a.href)")
    assert len(hrefs) == 9 and all("/suites/alpaca_eval.html#ckpt=" in h for h in hrefs)
    plots = browser.evaluate("Array.from(document.images, i => [i.getAttribute('src'), i.complete && i.naturalWidth])")
    assert plots and all(width > 0 for _, width in plots), plots  # the PNGs load under the page's CSP


def test_overview_training_judges_and_coverage(browser, site):
    load(browser, site / "index.html")
    training = browser.evaluate("""Array.from(document.querySelectorAll('.training-table tbody tr'),
        tr => Array.from(tr.children, c => c.innerText.trim()))""")
    assert [row[:3] for row in training] == [["1", "4", "8 (2; 1 cut)"], ["2", "5", "10 (2; 1 cut)"]]
    assert training[0][5] == "0.7 → 0.6 (0.65)" and training[1][5] == "0.35 → 0.3 (0.325)"
    judges = texts(browser, ".judge")
    assert any("weighted_alpaca_eval_gpt4_turbo" in j and "official judge" in j and "81.4%" in j for j in judges)
    assert any("local-smollm" in j and "not calibrated" in j and "not the official judge" in j for j in judges)
    failed = texts(browser, "#coverage tr.status-failed")
    assert len(failed) == 1 and "ifeval" in failed[0] and "generation backend crashed" in failed[0]
    anchor = browser.evaluate("document.querySelector('#coverage tr.status-failed a').getAttribute('href')")[1:]
    load(browser, site / "index.html", anchor)  # the failed cell's link opens the record's section
    assert browser.evaluate(f"document.getElementById({json.dumps(anchor)}).open") is True


def test_an_items_answers_for_every_checkpoint_side_by_side(browser, site):
    load(browser, site / "suites" / "alpaca_eval.html")
    header = texts(browser, "#items thead th .ckpt")
    assert header == [m for m, _ in CHECKPOINTS]
    cells = browser.evaluate("""Array.from(document.querySelectorAll('#rows tr[data-key="0"] td'),
        td => [td.dataset.ckpt, (td.querySelector('.answer strong') || {}).textContent || null,
               (td.querySelector('.badge') || {}).textContent || null, td.querySelector('.missing') !== null])""")
    assert [c[1:] for c in cells] == [[None, None, True], ["Iteration 1", "loss", False], ["Iteration 2", "win", False]]
    load(browser, site / "suites" / "gsm8k.html")
    first = texts(browser, '#rows tr[data-key="0"] td .extracted code')
    assert first == ["0", "1", "1"] and texts(browser, '#rows tr[data-key="0"] td .target code') == ["0", "0", "0"]


def test_script_in_an_answer_is_text_and_never_runs(browser, site):
    load(browser, site / "suites" / "alpaca_eval.html")
    for _ in range(2):  # the server-rendered rows, then the same rows rebuilt by the page's script
        answer = browser.evaluate("""document.querySelectorAll('#rows tr[data-key="1"] td')[1]
                                     .querySelector('.answer').textContent""")
        assert "<script>window.__viewer_xss = 1</script>" in answer and "<img src=x" in answer
        assert browser.evaluate("document.querySelectorAll('#rows script, #rows img').length") == 0
        assert browser.evaluate("typeof window.__viewer_xss") == "undefined"
        browser.evaluate("var f = document.getElementById('f-changed'); f.checked = true; f.dispatchEvent(new Event('change'));"
                         "f.checked = false; f.dispatchEvent(new Event('change'));")


def test_rows_rebuilt_by_the_script_match_the_template(browser, site):
    canon = """(function canon(n) { if (n.nodeType === 3) { return n.textContent.trim(); }
        var attrs = Array.from(n.attributes || [], a => a.name + '=' + a.value).sort().join(' ');
        return '<' + n.nodeName + ' ' + attrs + '>' + Array.from(n.childNodes, canon).filter(Boolean).join('') + '</>';
      })(document.getElementById('rows'))"""
    for suite in ("alpaca_eval", "arena_hard", "mt_bench", "gsm8k"):
        load(browser, site / "suites" / f"{suite}.html")
        server = browser.evaluate(canon)
        browser.evaluate("var s = document.getElementById('f-sort'); s.value = 'length'; s.dispatchEvent(new Event('change'));"
                         "s.value = 'id'; s.dispatchEvent(new Event('change'));")
        assert browser.evaluate(canon) == server, suite


def test_filters_changed_longest_length_change_and_search(browser, site):
    load(browser, site / "suites" / "alpaca_eval.html", "changed=1")
    assert texts(browser, "#rows tr th .item-id") == ["0"]  # only item 0's verdict differs (loss -> win)
    load(browser, site / "suites" / "alpaca_eval.html", "sort=length")
    # fixture lengths: item 0 Iter1/Iter2 55, 65 -> 10; item 1 22, 90, 22 -> 68; item 2 all 22 -> 0
    assert texts(browser, "#rows tr th .item-id") == ["1", "0", "2"]
    load(browser, site / "suites" / "alpaca_eval.html", "q=print(1)")
    assert texts(browser, "#rows tr th .item-id") == ["2"]
    assert "1 matching (3 in all)" in browser.evaluate("document.getElementById('status').textContent")
    load(browser, site / "suites" / "arena_hard.html", "ckpt=nobody")  # an unknown checkpoint: nothing highlighted
    assert browser.evaluate("document.querySelectorAll('.hl').length") == 0
    slug = browser.evaluate("document.querySelectorAll('#items thead th[data-ckpt]')[1].dataset.ckpt")
    load(browser, site / "suites" / "arena_hard.html", f"ckpt={slug}")  # an overview link's column is marked
    assert texts(browser, "thead .hl .ckpt") == [CHECKPOINTS[1][0]]
    assert browser.evaluate("document.querySelectorAll('#rows td.hl').length") == 2  # both arena items


def test_screenshot_is_not_blank(browser, site, tmp_path):
    from PIL import Image

    load(browser, site / "suites" / "alpaca_eval.html")
    png = browser.screenshot()
    out = tmp_path / "alpaca_eval.png"
    out.write_bytes(png)
    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.size == (1280, 900)
    colors = image.getcolors(maxcolors=1 << 20) or []
    assert len(colors) > 50  # text, badges, borders: a blank or single-colour page has one or two
    dominant = max(count for count, _ in colors)
    assert dominant < 0.95 * image.size[0] * image.size[1]


def test_805_items_by_4_checkpoints_page_through(browser, shared_data, tmp_path):
    run = alpaca_805(tmp_path / "run", shared_data)
    build_site([run], tmp_path / "site")
    load(browser, tmp_path / "site" / "suites" / "alpaca_eval.html", "page=33")
    keys = texts(browser, "#rows tr th .item-id")
    assert keys == [str(n) for n in range(800, 805)]
    assert browser.evaluate("document.querySelectorAll('#rows tr:first-child td .answer').length") == 4
    assert browser.evaluate("document.getElementById('status').textContent") == "items 801–805 of 805"
