"""Reference import: the seed card's every number, real-world table/YAML quirks, and bad cards (exit 2)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from harness import tables
from harness.cardparse import parse_card, split_label, split_row
from harness.errors import UserError
from harness.store import load_reference

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "results" / "reference" / "Mistral7B-PairRM-SPPO-Iter1.json"

I1, I2, I3 = (f"Mistral7B-PairRM-SPPO Iter {i}" for i in (1, 2, 3))
BO16 = "best-of-16"
HUB_NAME = "Mistral7B-PairRM-SPPO-Iter1"
V1 = ("arc_challenge", "truthfulqa_mc2", "winogrande", "gsm8k", "hellaswag", "mmlu", "open_llm_v1")
V1_METRIC = {"arc_challenge": "acc_norm", "truthfulqa_mc2": "mc2", "winogrande": "acc", "gsm8k": "exact_match",
             "hellaswag": "acc_norm", "mmlu": "acc", "open_llm_v1": "average"}


def _seed_numbers() -> dict[tuple[str, str, str, str], float]:
    """Every number printed in ../shared/cards/Mistral7B-PairRM-SPPO-Iter1.md, typed from the card."""
    out: dict[tuple[str, str, str, str], float] = {}
    alpaca = {(I1, ""): (24.79, 23.51, 1855), (I2, ""): (26.89, 27.62, 2019), (I3, ""): (28.53, 31.02, 2163),
              (I1, BO16): (28.71, 27.77, 1901), (I2, BO16): (31.23, 32.12, 2035), (I3, BO16): (32.13, 34.94, 2174)}
    for (model, variant), values in alpaca.items():
        for key, v in zip(("lc_win_rate", "win_rate", "avg_length"), values, strict=True):
            out[(model, variant, "alpaca_eval", key)] = v
    out[("Mistral7B-PairRM-SPPO-Iter3", "", "arena_hard", "score")] = 23.3
    out[("Mistral7B-PairRM-SPPO-Iter3", "", "arena_hard", "avg_tokens")] = 578
    v1 = {I1: (65.02, 69.4, 77.82, 43.82, 85.11, 58.84, 66.67), I2: (65.53, 69.55, 77.03, 44.35, 85.29, 58.72, 66.75),
          I3: (65.36, 69.97, 76.8, 42.68, 85.16, 58.45, 66.4)}
    for model, values in v1.items():
        for suite, v in zip(V1, values, strict=True):
            out[(model, "", suite, V1_METRIC[suite])] = v
    mt = {I1: (7.63, 6.79, 7.21), I2: (7.90, 7.08, 7.49), I3: (7.84, 7.34, 7.59)}
    for model, values in mt.items():
        for key, v in zip(("turn_1", "turn_2", "average"), values, strict=True):
            out[(model, "", "mt_bench", key)] = v
    v2 = {("open_llm_v2", "average"): 17.87, ("ifeval", "strict_acc"): 50.47, ("bbh", "acc_norm"): 22.93,
          ("gpqa", "acc_norm"): 4.47, ("musr", "acc_norm"): 8.30, ("mmlu_pro", "acc"): 18.84}
    for (suite, key), v in v2.items():
        out[(HUB_NAME, "", suite, key)] = v
    return out


def _table(out: str) -> dict[tuple[str, str, str, str], dict[str, str]]:
    return {(r["model"], r["variant"], r["suite"], r["metric"]): r for r in csv.DictReader(io.StringIO(out))}


def test_reference_import_then_results_table_shows_every_seed_number(cli, seed_card, tmp_path):
    out = tmp_path / "ref.json"
    code, stdout, err = cli("reference", "import", seed_card, "--out", out)
    assert (code, err) == (0, "") and "38 records" in stdout
    code, stdout, err = cli("results", "table", out, "--format", "csv")
    assert code == 0, err
    rows = _table(stdout)
    expected = _seed_numbers()
    for key, value in expected.items():
        assert float(rows[key]["value"]) == value, key
    # MATH Lvl 5 goes under whatever metric feeds its card column; the remaining row is exactly that one.
    (math_key,) = set(rows) - set(expected)
    assert math_key[:3] == (HUB_NAME, "", "math_lvl5") and float(rows[math_key]["value"]) == 2.19
    arena = rows[("Mistral7B-PairRM-SPPO-Iter3", "", "arena_hard", "score")]
    assert (float(arena["ci_low"]), float(arena["ci_high"])) == (21.5, 25.1)
    assert {r["iteration"] for k, r in rows.items() if k[0] in (I2, "Mistral7B-PairRM-SPPO-Iter3")} <= {"2", "3"}
    ref = load_reference(out)
    assert ref.card_model == HUB_NAME
    assert {r.checkpoint for r in ref.records if r.model == HUB_NAME} == {"UCLA-AGI/Mistral7B-PairRM-SPPO-Iter1"}


def test_committed_reference_matches_a_fresh_import(seed_card):
    fresh = parse_card(seed_card.read_text(), source=str(seed_card))
    committed = load_reference(COMMITTED)
    assert tables.rows(committed.records) == tables.rows(fresh.records)
    assert committed.card_model == fresh.card_model


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("Mistral7B-PairRM-SPPO Iter 1 (best-of-16)", ("Mistral7B-PairRM-SPPO Iter 1", "best-of-16", 1)),
        ("Mistral7B-PairRM-SPPO-Iter3", ("Mistral7B-PairRM-SPPO-Iter3", None, 3)),
        ("Mistral-7B-Instruct-v0.2", ("Mistral-7B-Instruct-v0.2", None, None)),
        ("my model iteration_12 ( greedy )", ("my model iteration_12", "greedy", 12)),
        ("literator 4", ("literator 4", None, None)),
    ],
)
def test_split_label(label, expected):
    assert split_label(label) == expected


@pytest.mark.parametrize(
    ("line", "cells"),
    [
        ("| a | b |", ["a", "b"]),
        ("a| b |c", ["a", "b", "c"]),
        ("|  padded   |  1.00 |", ["padded", "1.00"]),
        (r"| x \| y | average \# Tokens |", ["x | y", "average # Tokens"]),
        (r"| back\\slash | 2 |", ["back\\slash", "2"]),
        ("| | first empty |", ["", "first empty"]),
        ("| a | |", ["a", ""]),
        (r"| ends in backslash\\| 2 |", ["ends in backslash\\", "2"]),
        (r"| a | escaped last pipe\|", ["a", "escaped last pipe|"]),
    ],
)
def test_split_row(line, cells):
    assert split_row(line) == cells


MESSY = """\
---
license: apache-2.0
model-index:
    -   name: Messy-SPPO-Iter2
        results:
            -   task:
                    type: text-generation
                dataset:
                    name: BBH (3-Shot)
                    type: BBH
                metrics:
                    -   type: acc_norm
                        value: 22.5
                source:
                    url: >-
                      https://huggingface.co/spaces/open-llm-leaderboard/open_llm_leaderboard?query=org/Messy-SPPO-Iter2
                    name: Open LLM Leaderboard
            -   task:
                    type: text-generation
                dataset:
                    name: AI2 Reasoning Challenge (25-Shot)
                    type: ai2_arc
                metrics:
                    -   type: acc_norm
                        value: 60.1
---

Arena without leading pipes, CI with explicit plus, escaped hash:

Model | Score | 95% CI | average \\# Tokens |
|:----------|-----------:|:------------:|-----------|
Messy Iter 2| 30.1 | (-2.0, +1.5)|  612 |

|    Model   |  LC. Win Rate   | Win Rate | Avg. Length |
|:--|:-:|:-:|--:|
|   Messy Iter 2 (best-of-16)   |   31.00 |   29.1    |   2000   |
| Messy Iter 3 | — | failed | 2100 |

```
| Model | LC. Win Rate |
|---|---|
| inside a code fence | 99 |
```

| Metric | Messy Iter 2 | Messy Iter 3 |
|---|--:|--:|
| Avg. | 17.0 | 18.5† |
| MuSR (0-shot) | 8.30 | — |

| Unrelated | Table |
|---|---|
| keeps | 1 |
"""


def test_messy_card_is_parsed_tolerantly():
    ref = parse_card(MESSY, source="messy.md")
    rows = {(r["model"], r["variant"], r["suite"], r["metric"]): r for r in tables.rows(ref.records)}
    assert ref.card_model == "Messy-SPPO-Iter2"
    assert rows[("Messy-SPPO-Iter2", None, "bbh", "acc_norm")]["value"] == 22.5
    assert rows[("Messy-SPPO-Iter2", None, "bbh", "acc_norm")]["iteration"] == 2
    score = rows[("Messy Iter 2", None, "arena_hard", "score")]
    assert (score["value"], score["ci_low"], score["ci_high"]) == (30.1, 28.1, 31.6)
    assert rows[("Messy Iter 2", None, "arena_hard", "avg_tokens")]["value"] == 612
    assert rows[("Messy Iter 2", "best-of-16", "alpaca_eval", "lc_win_rate")]["value"] == 31.0
    assert ("Messy Iter 3", None, "alpaca_eval", "lc_win_rate") not in rows  # "—" and "failed" are not numbers
    assert rows[("Messy Iter 3", None, "alpaca_eval", "avg_length")]["value"] == 2100
    assert rows[("Messy Iter 2", None, "musr", "acc_norm")]["value"] == 8.3
    assert rows[("Messy Iter 3", None, "open_llm_v2", "average")]["status"] == "partial"
    assert not any(k[0] == "inside a code fence" for k in rows)
    assert not any(k[2] == "arc_challenge" for k in rows)  # the v1 bot's 25-shot ARC is not our suite
    (bbh,) = [r for r in ref.records if r.suite == "bbh"]
    assert bbh.checkpoint == "org/Messy-SPPO-Iter2"


def test_value_column_without_model_index_takes_the_file_name():
    ref = parse_card("| Metric | Value |\n|---|---|\n| Avg. | 12.5 |\n", source="cards/Some-Model.md")
    assert [(r.model, r.suite, r.metrics["average"].value) for r in ref.records] == [("Some-Model", "open_llm_v2", 12.5)]


def test_table_and_model_index_disagreeing_keeps_model_index_and_notes_it():
    text = MESSY.replace("| MuSR (0-shot) | 8.30 | — |", "| BBH (3-Shot) | 23.00 | — |").replace(
        "| Metric | Messy Iter 2 |", "| Metric | Value |")
    ref = parse_card(text, source="messy.md")
    (bbh,) = [r for r in ref.records if r.suite == "bbh"]
    assert bbh.metrics["acc_norm"].value == 22.5 and "23.0" in bbh.notes[0]


BAD_CARDS = {
    "no_scores.md": ("---\nlicense: mit\n---\n# A model\n\n| a | b |\n|---|---|\n| 1 | 2 |\n", "no model-index scores"),
    "bad_yaml.md": ("---\nmodel-index: [\n  - name: x\n---\n| Model | Win Rate |\n|---|---|\n| m | 1 |\n", "malformed YAML"),
    "bad_cell.md": ("| Model | LC. Win Rate |\n|---|---|\n| m | 24.7x |\n", "'24.7x' is not a number"),
    "bad_index.md": ("---\nmodel-index:\n- name: x\n  results:\n  - task: {}\n---\n", "invalid model-index"),
    "bad_ci.md": ("| Model | Score | 95% CI |\n|---|---|---|\n| m | 20 | wide |\n", "is not a CI"),
}


@pytest.mark.parametrize("name", sorted(BAD_CARDS))
def test_bad_cards_exit_2_with_one_line_and_write_nothing(cli, tmp_path, name):
    text, message = BAD_CARDS[name]
    card = tmp_path / name
    card.write_text(text)
    out = tmp_path / "out" / "ref.json"
    code, stdout, err = cli("reference", "import", card, "--out", out)
    assert code == 2 and stdout == ""
    assert message in err and err.count("\n") == 1
    assert not out.parent.exists()


def test_import_bad_paths_exit_2(cli, seed_card, tmp_path):
    code, _, err = cli("reference", "import", tmp_path / "missing.md", "--out", tmp_path / "r.json")
    assert code == 2 and "no such model card" in err and err.count("\n") == 1
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = cli("reference", "import", seed_card, "--out", blocker / "ref.json")
    assert code == 2 and "is a file, not a folder" in err and err.count("\n") == 1
    assert blocker.read_text() == "x" and sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_parse_card_raises_user_error_directly():
    with pytest.raises(UserError, match="no model-index scores"):
        parse_card("just prose\n", source="x.md")


def test_reference_json_is_schema_versioned():
    data = json.loads(COMMITTED.read_text())
    assert data["schema_version"] == 1 and all(r["schema_version"] == 1 for r in data["records"])
