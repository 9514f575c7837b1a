"""A label is data, never markup (issue 21): a card, a results table and a check report print a model name holding
NUL bytes, line breaks and raw HTML as text (escaped), and the card parses back to the same label."""

from __future__ import annotations

import re

from harness.records import Metric, Provenance, ResultRecord
from harness.store import RunDir

HOSTILE = "<script>alert(1)</script> <img src=x onerror=alert(2)> &amp; \x00NUL\x07 a|b"


def test_a_hostile_label_is_text_in_every_markdown_output(cli, tmp_path):
    run = RunDir(tmp_path / "run")
    run.write(ResultRecord(model=HOSTILE, suite="mt_bench", metrics={"average": Metric(value=6.5, n=160)},
                           provenance=Provenance(source="test")))
    card = tmp_path / "card.md"
    code, _, err = cli("report", "--run", run.root, "--out", card, "--no-plots", "--no-eval-results")
    assert code == 0, err
    code, table, err = cli("results", "table", run.root)
    assert code == 0, err
    for text in (card.read_text(encoding="utf-8"), table):
        assert "\x00" not in text and "\x07" not in text
        assert not re.search(r"(?<!\\)[<&]", text.split("\n---\n", 1)[-1]), text  # no raw tag or entity after the front matter
    code, _, err = cli("reference", "import", card, "--out", tmp_path / "ref.json")
    assert code == 0, err
    code, rows, err = cli("results", "table", tmp_path / "ref.json", "--format", "json")
    assert code == 0, err
    import json

    labels = {r["model"] for r in json.loads(rows)}
    assert labels == {HOSTILE.replace("\x00", "\ufffd").replace("\x07", "\ufffd")}
