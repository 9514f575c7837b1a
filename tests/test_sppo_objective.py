"""The SPPO objective (harness/sppo/objective.py): the held-out prompts are disjoint from the training prompts and every
evaluation set; win rate, interval, differing share and degeneracy counts from hand-built inputs; the whole path on
fakes and on two real tiny checkpoints; and, with SPPO_BENCH_SLOW=1, the default profile's claim on the embedded model.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
from pathlib import Path

import numpy as np
import pytest

from harness.backends.base import Completion
from harness.backends.fake import FakeBackend
from harness.records import ItemRow, ResultRecord
from harness.settings import Settings
from harness.sppo import objective
from harness.sppo.config import ObjectiveConfig, SPPOConfig, load_profile, parse_config
from harness.sppo.rank import Ranked
from harness.sppo.sample import Prompt, bundled_prompts_path, read_prompt_file

# ---- the held-out set is disjoint from everything the model trains or is evaluated on -----------------------------

NEAR_JACCARD = 0.6
"""Word-set Jaccard similarity (normalized text) at or above which two prompts count as near-duplicates."""
NEAR_RATIO = 0.8
"""difflib similarity ratio (normalized text) at or above which two prompts count as near-duplicates."""


def normalize(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def near_duplicate(a: str, b: str) -> bool:
    """Exact or near match of normalized texts: equal, one containing the other (5+ words), word-set Jaccard >= 0.6,
    or difflib ratio >= 0.8."""
    if a == b:
        return True
    short, long_ = sorted((a, b), key=len)
    if len(short.split()) >= 5 and f" {short} " in f" {long_} ":
        return True
    wa, wb = set(a.split()), set(b.split())
    if len(wa & wb) / len(wa | wb) >= NEAR_JACCARD:
        return True
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    return matcher.real_quick_ratio() >= NEAR_RATIO and matcher.quick_ratio() >= NEAR_RATIO and matcher.ratio() >= NEAR_RATIO


def collisions(mine: list[str], theirs: list[str]) -> list[tuple[str, str]]:
    normed = [normalize(t) for t in theirs]
    return [(m, t) for m in mine for t, nt in zip(theirs, normed, strict=True) if near_duplicate(normalize(m), nt)]


def eval_prompts(data: Path, shared: Path) -> dict[str, list[str]]:
    """Every evaluation prompt: AlpacaEval's 805 instructions, IFEval's 541, MT-Bench's 80 questions (both turns),
    Arena-Hard v0.1's 500 (and v2.0's, when pulled)."""
    def rows(path: Path) -> list[dict]:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]  # not splitlines: U+2028 in texts

    ah01 = next((p for p in (data / "arena_hard/v0.1/question.jsonl", shared / "arena_hard_v0.1/question.jsonl")
                 if p.exists()), None)
    if ah01 is None:
        pytest.skip("Arena-Hard v0.1 questions are neither pulled nor in ../shared/data")
    sets = {
        "alpaca_eval": [r["instruction"] for r in rows(data / "alpaca_eval/eval.jsonl")],
        "ifeval": [r["prompt"] for r in rows(data / "ifeval/train.jsonl")],
        "mt_bench": [t for r in rows(data / "mt_bench/question.jsonl") for t in r["turns"]],
        "arena_hard_v0.1": [t["content"] for r in rows(ah01) for t in r["turns"]],
    }
    if (data / "arena_hard/v2.0/question.jsonl").exists():
        sets["arena_hard_v2.0"] = [r["prompt"] for r in rows(data / "arena_hard/v2.0/question.jsonl")]
    return sets


@pytest.fixture(scope="module")
def eval_sets() -> dict[str, list[str]]:
    from harness.data import ensure
    from harness.errors import UserError

    home = Path(os.environ.get("SPPO_BENCH_HOME") or Path.home() / ".cache" / "sppo-bench")
    settings = Settings(home=home, offline=True)
    try:
        for suite in ("alpaca_eval", "ifeval", "mt_bench", "arena_hard"):
            ensure(settings, suite)
    except UserError as exc:
        pytest.skip(f"evaluation data not pulled ({exc})")
    return eval_prompts(settings.data_dir, Path(__file__).resolve().parents[1].parent / "shared" / "data")


def test_eval_sets_have_their_published_sizes(eval_sets):
    sizes = {k: len(v) for k, v in eval_sets.items()}
    assert sizes["alpaca_eval"] == 805 and sizes["ifeval"] == 541 and sizes["mt_bench"] == 160
    assert sizes["arena_hard_v0.1"] == 500


def test_heldout_prompts_are_many_unique_and_disjoint_from_the_training_prompts():
    heldout = [p.text for p in objective.heldout_prompts(ObjectiveConfig())]
    training = [p.text for p in read_prompt_file(bundled_prompts_path())]
    assert len(heldout) >= 100
    assert len({normalize(t) for t in heldout}) == len(heldout)
    assert collisions(heldout, training) == []
    assert collisions(training, training[:1]) == [(training[0], training[0])]  # the checker sees an exact copy


@pytest.mark.parametrize("suite", ["alpaca_eval", "ifeval", "mt_bench", "arena_hard_v0.1", "arena_hard_v2.0"])
def test_heldout_and_training_prompts_are_disjoint_from_every_eval_set(eval_sets, suite):
    if suite not in eval_sets:
        pytest.skip(f"{suite} is not pulled")
    heldout = [p.text for p in objective.heldout_prompts(ObjectiveConfig())]
    training = [p.text for p in read_prompt_file(bundled_prompts_path())]
    assert collisions(heldout + training, eval_sets[suite]) == []


def test_the_near_duplicate_check_catches_light_edits_of_an_eval_prompt(eval_sets):
    original = eval_sets["alpaca_eval"][10]
    edited = original.upper().replace(" ", "  ").rstrip("?.!") + "!!"
    one_word = original.split()
    one_word[len(one_word) // 2] = "zebra"
    for variant in (edited, " ".join(one_word)):
        assert collisions([variant], eval_sets["alpaca_eval"]), variant


# ---- pure parts ----------------------------------------------------------------------------------------------------

LOOP = ("In the rain, a bicycle left out in the rain, a simple yet beautiful sight, a simple yet beautiful sight, "
        "a simple yet beautiful sight, a simple yet beautiful sight")


@pytest.mark.parametrize("text,expected", [
    (LOOP, True),                                   # a 5-word block three times back to back (15 words)
    ("no " * 10, True),                             # one word ten times
    ("no " * 9, False),                             # one word nine times: under the 10-word run
    ("the cat sat down " * 3, True),                # a 4-word block three times = 12 words
    ("the cat sat down " * 2 + "and slept", False),  # twice is not a loop
    ("It was very very very good.", False),
    ("1. Water the plant.\n2. Water the plant.\n3. Water the plant.", False),  # numbers differ: not a repeated block
    ("", False),
])
def test_repeated_token_definition(text, expected):
    assert objective.is_repeated_token(text) is expected


def test_bootstrap_interval_matches_the_normal_approximation_for_a_large_sample():
    values = np.random.default_rng(7).uniform(0, 1, 2000)
    low, high = objective.bootstrap_mean_ci(values, 4000, seed=0)
    half = 1.959964 * values.std(ddof=1) / math.sqrt(len(values))  # textbook CLT interval
    assert low == pytest.approx(values.mean() - half, abs=0.002)
    assert high == pytest.approx(values.mean() + half, abs=0.002)
    assert objective.bootstrap_mean_ci(values, 4000, seed=0) == (low, high)  # seeded: reproducible


def test_bootstrap_interval_of_constant_values_is_a_point():
    assert objective.bootstrap_mean_ci(np.full(30, 0.5), 500, seed=1) == (0.5, 0.5)


def _done(text: str) -> Completion:
    return Completion(text=text, prompt_tokens=5, completion_tokens=len(text.split()))


def test_summary_from_hand_built_answers_and_preferences():
    cfg = SPPOConfig(name="Toy")
    prompts = [Prompt(f"h{i}", f"question {i}") for i in range(4)]
    base = [_done("same"), _done("base b"), _done(""), _done("x " * 12)]
    mine = [_done("same"), _done("iter b"), _done("iter c"), _done("")]
    judged = [objective.Judged(0.5, "identical"), objective.Judged(0.9, "j"), objective.Judged(0.7, "j"),
              objective.Judged(0.1, "j")]
    record, rows = objective.summarize(cfg, 2, "/ckpt/iter2", prompts, mine, base, judged)
    win = record.metrics["win_rate_vs_base"]
    assert win.value == pytest.approx(100 * (0.5 + 0.9 + 0.7 + 0.1) / 4) and win.n == 4
    assert win.ci_low <= win.value <= win.ci_high
    assert record.metrics["differing_answers"].value == pytest.approx(75.0)
    assert record.metrics["empty_answers"].value == 1 and record.metrics["base_empty_answers"].value == 1
    assert record.metrics["repeated_token_answers"].value == 0
    assert record.metrics["base_repeated_token_answers"].value == 1
    assert (record.suite, record.model, record.iteration, record.status) == ("sppo_objective", "Toy Iter 2", 2,
                                                                            "complete")
    assert [r.scores["preference"] for r in rows] == pytest.approx([1.5, 1.9, 1.7, 1.1])
    assert [r.item for r in rows] == ["h0", "h1", "h2", "h3"] and rows[1].answer == "iter b"
    # The registered item statistics give back the record's numbers from its rows (cards and compare pair
    # iterations over the same prompts through them).
    import benchmarks  # noqa: F401  (registers the suites' item statistics)
    from harness.scoring.items import statistic_for

    assert statistic_for("sppo_objective", "win_rate_vs_base").value(rows) == pytest.approx(win.value)
    assert statistic_for("sppo_objective", "differing_answers").value(rows) == pytest.approx(75.0)


def test_failed_answers_are_left_out_and_counted():
    cfg = SPPOConfig(name="Toy")
    prompts = [Prompt("a", "q"), Prompt("b", "r")]
    failed = Completion(text="", prompt_tokens=1, completion_tokens=0, finish_reason="error", error="boom")
    judged = objective.judge_pairs(PreferLonger(), prompts, [_done("one two"), failed], [_done("one"), _done("x")])
    assert judged[1] is None and judged[0] is not None
    record, rows = objective.summarize(cfg, 1, "c", prompts, [_done("one two"), failed], [_done("one"), _done("x")],
                                       judged)
    assert [r.item for r in rows] == ["a"]
    assert record.coverage.failed == 1 and record.status == "partial"


class PreferLonger:
    """A preference model whose score is the answer's length in words; remembers what it was asked."""

    fingerprint = "test:prefer-longer"

    def __init__(self) -> None:
        self.asked: list[list[str]] = []

    def rank(self, rows, progress=None):
        self.asked += [list(r.responses) for r in rows]
        return [Ranked(r.prompt_id, [float(len(x.split())) for x in r.responses]) for r in rows]


def test_identical_answers_get_one_half_without_asking_and_others_are_sigmoid_of_the_score_gap():
    ranker = PreferLonger()
    prompts = [Prompt("a", "q1"), Prompt("b", "q2")]
    judged = objective.judge_pairs(ranker, prompts, [_done("same"), _done("one two three")],
                                   [_done("same"), _done("one")])
    assert ranker.asked == [["one two three", "one"]]  # iteration first, base second; the identical pair is not sent
    assert judged[0].preference == 0.5
    assert judged[1].preference == pytest.approx(1 / (1 + math.exp(-(3 - 1))))


# ---- the whole path ------------------------------------------------------------------------------------------------


def test_evaluate_objective_on_fakes_gives_one_record_and_valid_rows_per_iteration(tmp_path):
    cfg = SPPOConfig(name="Fake", objective=ObjectiveConfig(n=20, max_new_tokens=16))
    ranker = PreferLonger()
    out = objective.evaluate_objective(cfg, "base", [(1, "ckpt1"), (2, "ckpt2")], Settings(tmp_path, True),
                                       backend_factory=FakeBackend, ranker_factory=lambda: ranker, log=lambda m: None)
    assert [r.iteration for r, _ in out] == [1, 2]
    for record, rows in out:
        ResultRecord.model_validate(record.model_dump())
        assert len(rows) == 20 and all(ItemRow.model_validate(r.model_dump()) for r in rows)
        assert record.metrics["win_rate_vs_base"].n == 20 and record.status == "partial" and record.limit == 20
        assert record.judge.fingerprint == "test:prefer-longer" and not record.judge.official
        assert record.provenance.dataset.sha256 and record.provenance.generation["max_new_tokens"] == 16
        mean = 100 * np.mean([r.scores["preference"] - 1 for r in rows])
        assert record.metrics["win_rate_vs_base"].value == pytest.approx(mean)
    assert out[0][1][0].answer != out[1][1][0].answer  # each checkpoint answered for itself


def test_bad_objective_n_is_a_one_line_error(tmp_path):
    from harness.errors import UserError

    with pytest.raises(UserError, match="objective.n = 999"):
        objective.heldout_prompts(ObjectiveConfig(n=999))
    with pytest.raises(UserError, match="unknown key .objective.size."):
        parse_config("[objective]\nsize = 3\n", "test")


def noisy_copy(model_dir: Path, dest: Path, scale: float = 0.5) -> Path:
    """The checkpoint with seeded Gaussian noise on every weight: a real second policy that answers differently."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * scale)
    model.save_pretrained(dest)
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(dest)
    return dest


@pytest.mark.slow
def test_two_real_tiny_checkpoints_answer_differently_and_the_local_judge_scores_them(tmp_path):
    from harness.models import tiny_model

    base = tiny_model(tmp_path / "base")
    other = noisy_copy(base, tmp_path / "other")
    cfg = SPPOConfig(name="Tiny", objective=ObjectiveConfig(n=6, max_new_tokens=8, batch_size=6))
    out = objective.evaluate_objective(cfg, str(base), [(1, str(other)), (2, str(base))],
                                       Settings(tmp_path / "home", True), log=lambda m: None)
    (rec1, rows1), (rec2, rows2) = out
    assert rec1.metrics["differing_answers"].value == 100.0
    assert all("logit(A) - logit(B)" in r.judgment for r in rows1)  # the local judge asked both orders
    assert len({r.scores["preference"] for r in rows1}) > 1
    assert rec2.metrics["differing_answers"].value == 0 and rec2.metrics["win_rate_vs_base"].value == 50.0
    assert all(r.scores["preference"] == 1.5 for r in rows2)


# ---- the default profile's claim (SPPO_BENCH_SLOW=1; tens of minutes on 2 cores) -------------------------------------

IFEVAL_PROMPTS = 100


def mcnemar_decrease_p(base: dict[int, bool], mine: dict[int, bool]) -> tuple[int, int, float]:
    """Exact one-sided McNemar test that `mine` is less often correct than `base` on the same prompts: with b = base
    right and mine wrong, c = the reverse, p = P(X >= b) for X ~ Binomial(b + c, 1/2)."""
    b = sum(base[k] and not mine[k] for k in base)
    c = sum(mine[k] and not base[k] for k in base)
    n = b + c
    return b, c, sum(math.comb(n, x) for x in range(b, n + 1)) / 2**n if n else 1.0


def ifeval_correct(run: Path) -> dict[int, bool]:
    files = sorted(run.glob("samples/*/ifeval/samples_*.jsonl"))
    assert files, f"no IFEval samples under {run}"
    rows = [json.loads(line) for f in files for line in f.read_text().split("\n") if line.strip()]
    return {int(r["doc_id"]): bool(r["prompt_level_strict_acc"]) for r in rows}


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("SPPO_BENCH_SLOW") != "1", reason="trains 3 SPPO iterations of the embedded model "
                    "and runs IFEval twice (tens of minutes on 2 cores); set SPPO_BENCH_SLOW=1 to run it")
def test_default_profile_iteration_3_wins_under_its_preference_model_without_breaking(tmp_path, cli):
    from harness.settings import from_env
    from harness.sppo.pipeline import run_training

    cfg = load_profile("default")
    settings = from_env()
    run = run_training(cfg, tmp_path / "run", 3, settings, progress=False)
    assert len(run.iterations) == 3, run.stopped
    (record, _rows), = objective.evaluate_objective(cfg, run.base, [(3, str(run.checkpoints[-1]))], settings)
    m = record.metrics
    win = m["win_rate_vs_base"]
    cap = str(cfg.eval.max_new_tokens or 128)
    correct = {}
    for name, model in (("base", run.base), ("iter3", str(run.checkpoints[-1]))):
        code, _, err = cli("eval", model, "--suites", "ifeval", "--limit", str(IFEVAL_PROMPTS), "--max-new-tokens", cap,
                           "--out", tmp_path / f"ifeval-{name}")
        assert code == 0, err
        correct[name] = ifeval_correct(tmp_path / f"ifeval-{name}")
    b, c, p = mcnemar_decrease_p(correct["base"], correct["iter3"])
    print(f"\nSPPO objective, iteration 3 vs base on {win.n} held-out prompts (training preference model): win rate "
          f"{win.value:.1f}% [95% CI {win.ci_low:.1f}, {win.ci_high:.1f}]; greedy answers differ on "
          f"{m['differing_answers'].value:.0f}%; empty {m['empty_answers'].value:.0f} vs base "
          f"{m['base_empty_answers'].value:.0f}; repeated-token {m['repeated_token_answers'].value:.0f} vs base "
          f"{m['base_repeated_token_answers'].value:.0f}")
    print(f"IFEval prompt-level strict, first {IFEVAL_PROMPTS} prompts (<= {cap} tokens): base "
          f"{sum(correct['base'].values())}, iter3 {sum(correct['iter3'].values())}; base-only right {b}, iter3-only "
          f"right {c}; exact one-sided McNemar p = {p:.3f}")
    assert win.value > 50 and win.ci_low > 50
    assert m["differing_answers"].value >= 50
    assert m["empty_answers"].value <= m["base_empty_answers"].value
    assert m["repeated_token_answers"].value <= m["base_repeated_token_answers"].value
    assert len(correct["base"]) == len(correct["iter3"]) == IFEVAL_PROMPTS
    assert p >= 0.05, "iteration 3 is significantly worse than the base on IFEval"


@pytest.mark.parametrize("base,mine,expected", [
    ([1, 1, 1, 0], [1, 1, 1, 0], (0, 0, 1.0)),
    ([1, 1, 1, 1, 1, 0], [0, 0, 0, 0, 0, 0], (5, 0, 1 / 32)),      # five losses, no wins: 0.5^5
    ([1, 1, 0, 0], [0, 1, 1, 0], (1, 1, 0.75)),                      # P(X >= 1 | n=2) = 3/4
])
def test_mcnemar_exact_one_sided(base, mine, expected):
    got = mcnemar_decrease_p(dict(enumerate(map(bool, base))), dict(enumerate(map(bool, mine))))
    assert got[:2] == expected[:2] and got[2] == pytest.approx(expected[2])
