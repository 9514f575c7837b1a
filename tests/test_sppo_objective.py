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
from dataclasses import dataclass
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
from tests.fixtures.checkpoints import noisy_copy

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


def textbook_bootstrap(values: np.ndarray, resamples: int, seed: int) -> tuple[float, float]:
    """The textbook percentile bootstrap of a mean, one resample at a time: n indices drawn with replacement from a
    generator seeded once, the mean of the drawn values, then the 2.5th and 97.5th percentiles (linear)."""
    rng = np.random.default_rng(seed)
    means = []
    for _ in range(resamples):
        idx = rng.integers(0, len(values), len(values))
        means.append(sum(values[i] for i in idx) / len(values))
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def _interval(prefs: list[float], resamples: int, seed: int) -> tuple[float, float]:
    """The win rate's interval as the objective writes it (percent), from hand-built preferences."""
    cfg = SPPOConfig(name="Toy", objective=ObjectiveConfig(bootstrap=resamples, seed=seed))
    prompts = [Prompt(f"h{i}", f"q{i}") for i in range(len(prefs))]
    judged = [objective.Judged(p, "j") for p in prefs]
    answers = [_done(f"answer {i}") for i in range(len(prefs))]
    win = objective.summarize(cfg, 1, "c", prompts, answers, answers, judged)[0].metrics["win_rate_vs_base"]
    return win.ci_low, win.ci_high


def test_objective_interval_is_the_textbook_bootstrap_with_the_same_draws():
    prefs = np.random.default_rng(7).uniform(0, 1, 40)  # distinct values: every resample draws 40 indices
    low, high = textbook_bootstrap(prefs, 1000, seed=3)
    assert _interval(list(prefs), 1000, seed=3) == pytest.approx((100 * low, 100 * high), rel=1e-12)
    assert _interval(list(prefs), 1000, seed=4) != _interval(list(prefs), 1000, seed=3)


def test_objective_interval_of_few_distinct_preferences_matches_the_normal_approximation():
    # Mostly identical answers (P = 1/2) and a few judged ones: the resampler draws counts of distinct values (the
    # same distribution as index draws); with 400 prompts the interval is the textbook CLT one.
    prefs = np.array([0.5] * 300 + [0.9] * 60 + [0.2] * 40)
    low, high = _interval(list(prefs), 4000, seed=0)
    half = 1.959964 * prefs.std(ddof=1) / math.sqrt(len(prefs))
    assert low == pytest.approx(100 * (prefs.mean() - half), abs=0.25)
    assert high == pytest.approx(100 * (prefs.mean() + half), abs=0.25)


def test_objective_interval_of_constant_preferences_is_a_point():
    assert _interval([0.5] * 30, 500, seed=1) == (50.0, 50.0)


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
IFEVAL_MARGIN = 15.0
"""Points of IFEval strict accuracy iteration 3 may lose against the base at either level: the 95% paired-bootstrap
interval of (iteration 3 - base) must lie above -IFEVAL_MARGIN. SPPO against the 135M model's own judgment is allowed
to cost some instruction following (the README's run: prompt level 12 -> 7 of 100, instruction level 27.0 -> 19.0),
not to break it. "No significant drop" is not asserted: with ~10 discordant prompts the prompt-level test has little
power (printed), and the instruction-level drop of that run is significant."""
POWER_DROP = 0.06
"""The prompt-level drop whose detection power is printed (6 points)."""


@dataclass(frozen=True)
class IFEvalItem:
    prompt: bool
    """Prompt-level strict: every instruction of the prompt followed."""
    instructions: tuple[bool, ...]
    """Instruction-level strict, one per instruction of the prompt."""


@dataclass(frozen=True)
class LevelComparison:
    level: str
    base: float
    mine: float
    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    p_holm: float
    test: str


def ifeval_items(run: Path) -> dict[int, IFEvalItem]:
    """doc_id -> the prompt's strict verdicts, from lm-eval's per-sample files of a run directory."""
    files = sorted(run.glob("samples/*/ifeval/samples_*.jsonl"))
    assert files, f"no IFEval samples under {run}"
    rows = [json.loads(line) for f in files for line in f.read_text().split("\n") if line.strip()]
    return {int(r["doc_id"]): IFEvalItem(bool(r["prompt_level_strict_acc"]),
                                         tuple(bool(x) for x in r["inst_level_strict_acc"])) for r in rows}


def compare_ifeval(base: dict[int, IFEvalItem], mine: dict[int, IFEvalItem], resamples: int = 10_000,
                   seed: int = 0) -> dict[str, LevelComparison]:
    """Base vs `mine` on the same prompts, two-sided at both levels, Holm across the two: prompt level by exact
    McNemar, instruction level (a ratio of sums over prompts, instructions clustered in their prompt) by the paired
    bootstrap over prompts; both intervals from the same paired bootstrap."""
    from harness import stats

    ids = sorted(base)
    assert ids == sorted(mine), "the two runs must score the same prompts"

    def table(side: dict[int, IFEvalItem]) -> stats.ItemTable:
        return stats.ItemTable.build({"prompt": [float(side[i].prompt) for i in ids],
                                      "followed": [float(sum(side[i].instructions)) for i in ids],
                                      "instructions": [float(len(side[i].instructions)) for i in ids]})

    paired = stats.paired_bootstrap(table(base), table(mine), {
        "prompt": lambda s: 100 * s.mean("prompt"),
        "instruction": lambda s: 100 * s.ratio("followed", "instructions")}, resamples, seed)
    p = {"prompt": stats.mcnemar([base[i].prompt for i in ids], [mine[i].prompt for i in ids]).p_value,
         "instruction": paired["instruction"].p_value}
    adjusted = dict(zip(p, stats.holm(list(p.values())), strict=True))
    tests = {"prompt": "exact McNemar", "instruction": "paired bootstrap over prompts"}
    return {level: LevelComparison(level, d.a, d.b, d.delta, d.ci_low, d.ci_high, p[level], adjusted[level] or 1.0,
                                   tests[level]) for level, d in paired.items()}


def prompt_level_power(base: dict[int, IFEvalItem], mine: dict[int, IFEvalItem], drop: float = POWER_DROP) -> float:
    """Power of the two-sided exact McNemar at 0.05 on these prompts to detect a prompt-level drop of `drop`, at the
    observed share of discordant prompts (at least `drop`): P(base only right) - P(iteration only right) = drop."""
    from harness import stats

    discordant = max(drop, sum(base[i].prompt != mine[i].prompt for i in base) / len(base))
    return stats.mcnemar_power(len(base), (discordant + drop) / 2, (discordant - drop) / 2)


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
    items = {}
    for name, model in (("base", run.base), ("iter3", str(run.checkpoints[-1]))):
        code, _, err = cli("eval", model, "--suites", "ifeval", "--limit", str(IFEVAL_PROMPTS), "--max-new-tokens", cap,
                           "--out", tmp_path / f"ifeval-{name}")
        assert code == 0, err
        items[name] = ifeval_items(tmp_path / f"ifeval-{name}")
    levels = compare_ifeval(items["base"], items["iter3"])
    power = prompt_level_power(items["base"], items["iter3"])
    print(f"\nSPPO objective, iteration 3 vs base on {win.n} held-out prompts (training preference model): win rate "
          f"{win.value:.1f}% [95% CI {win.ci_low:.1f}, {win.ci_high:.1f}]; greedy answers differ on "
          f"{m['differing_answers'].value:.0f}%; empty {m['empty_answers'].value:.0f} vs base "
          f"{m['base_empty_answers'].value:.0f}; repeated-token {m['repeated_token_answers'].value:.0f} vs base "
          f"{m['base_repeated_token_answers'].value:.0f}")
    for c in levels.values():
        print(f"IFEval {c.level}-level strict, first {IFEVAL_PROMPTS} prompts (<= {cap} tokens): base {c.base:.1f}, "
              f"iter3 {c.mine:.1f}, delta {c.delta:+.1f} [95% CI {c.ci_low:+.1f}, {c.ci_high:+.1f}]; {c.test} "
              f"two-sided p {c.p_value:.3f}, Holm (2 tests) {c.p_holm:.3f}")
    print(f"Power of the prompt-level test to detect a {100 * POWER_DROP:.0f}-point drop at the observed discordance: "
          f"{power:.2f}")
    assert win.value > 50 and win.ci_low > 50
    assert m["differing_answers"].value >= 50
    assert m["empty_answers"].value <= m["base_empty_answers"].value
    assert m["repeated_token_answers"].value <= m["base_repeated_token_answers"].value
    assert len(items["base"]) == len(items["iter3"]) == IFEVAL_PROMPTS
    for c in levels.values():
        assert c.ci_low > -IFEVAL_MARGIN, f"iteration 3 may have lost more than {IFEVAL_MARGIN} points ({c.level} level)"


def _items(prompt: list[int], instructions: list[tuple[int, ...]]) -> dict[int, IFEvalItem]:
    return {i: IFEvalItem(bool(p), tuple(map(bool, inst))) for i, (p, inst) in enumerate(zip(prompt, instructions,
                                                                                              strict=True))}


def _synthetic_ifeval() -> tuple[dict[int, IFEvalItem], dict[int, IFEvalItem]]:
    """100 prompts of 2 instructions each: 5 right in both, 7 only in the base, 2 only in the iteration (the README's
    12 -> 7); the other 86 follow one instruction of two in the base and one (the first 60) or none in the iteration."""
    base_p, mine_p, base_i, mine_i = [], [], [], []
    for k in range(100):
        if k < 5:
            b, m = (1, 1), (1, 1)
        elif k < 12:
            b, m = (1, 1), (1, 0)
        elif k < 14:
            b, m = (1, 0), (1, 1)
        else:
            b, m = (1, 0), ((0, 1) if k < 74 else (0, 0))
        base_i.append(b)
        mine_i.append(m)
        base_p.append(int(all(b)))
        mine_p.append(int(all(m)))
    return _items(base_p, base_i), _items(mine_p, mine_i)


def test_ifeval_comparison_is_two_sided_at_both_levels_with_holm_from_synthetic_items(tmp_path):
    base, mine = _synthetic_ifeval()
    levels = compare_ifeval(base, mine, resamples=4000)
    prompt, inst = levels["prompt"], levels["instruction"]
    assert (prompt.base, prompt.mine, prompt.delta) == pytest.approx((12.0, 7.0, -5.0))
    # Two-sided exact McNemar, b = 7, c = 2: 2 P(X <= 2), X ~ Binomial(9, 1/2) = 2 (1 + 9 + 36) / 512
    assert prompt.p_value == pytest.approx(2 * (1 + 9 + 36) / 512)
    # Instruction level = followed / given, pooled over prompts: base 5*2 + 7*2 + 2*1 + 86*1 = 112 of 200;
    # iteration 5*2 + 7*1 + 2*2 + 60*1 = 81 of 200.
    assert (inst.base, inst.mine, inst.delta) == pytest.approx((56.0, 40.5, -15.5))
    for c in (prompt, inst):
        assert c.ci_low < c.delta < c.ci_high
    # The bootstrap interval of the instruction-level difference against the textbook standard error of a paired
    # difference of ratios (delta method over prompts): 1.96 SE either side, loosely (a percentile interval).
    fb = np.array([sum(base[i].instructions) for i in range(100)], float)
    fm = np.array([sum(mine[i].instructions) for i in range(100)], float)
    d = (fm - fb) / 2.0  # per-prompt difference of followed shares (every prompt has 2 instructions)
    se = 100 * d.std(ddof=1) / math.sqrt(100)
    assert inst.ci_low == pytest.approx(inst.delta - 1.96 * se, abs=0.6 * se)
    assert inst.ci_high == pytest.approx(inst.delta + 1.96 * se, abs=0.6 * se)
    assert inst.p_value < 0.001 < 0.05 < prompt.p_value  # the instruction-level drop is detected, two-sided
    # Holm over the two p-values, by hand: the smaller times 2, the larger times 1, kept monotone.
    low, high = sorted([prompt.p_value, inst.p_value])
    expected = {low: min(1.0, 2 * low), high: max(min(1.0, 2 * low), high)}
    assert prompt.p_holm == pytest.approx(expected[prompt.p_value])
    assert inst.p_holm == pytest.approx(expected[inst.p_value])
    # The margin assertion of the slow test: the prompt-level interval lies above -15, the instruction-level one not.
    assert prompt.ci_low > -IFEVAL_MARGIN and inst.ci_low < -IFEVAL_MARGIN
    # Swapping the sides mirrors the differences and keeps the two-sided p-values.
    swapped = compare_ifeval(mine, base, resamples=4000)
    assert swapped["prompt"].delta == pytest.approx(5.0) and swapped["prompt"].p_value == pytest.approx(prompt.p_value)
    assert swapped["instruction"].delta == pytest.approx(15.5)


def test_prompt_level_power_matches_a_textbook_trinomial_sum():
    base, mine = _synthetic_ifeval()  # 9 of 100 prompts discordant
    power = prompt_level_power(base, mine)
    # Textbook: (b, c) ~ Multinomial(100; 0.075, 0.015, rest); reject when 2 P(X <= min(b, c)) <= 0.05,
    # X ~ Binomial(b + c, 1/2).
    pa, pb, n = (0.09 + POWER_DROP) / 2, (0.09 - POWER_DROP) / 2, 100
    expected = 0.0
    for b in range(n + 1):
        for c in range(n + 1 - b):
            d = b + c
            if d and 2 * sum(math.comb(d, x) for x in range(min(b, c) + 1)) / 2**d <= 0.05:
                expected += (math.factorial(n) // (math.factorial(b) * math.factorial(c) * math.factorial(n - d))
                             * pa**b * pb**c * (1 - pa - pb) ** (n - d))
    assert power == pytest.approx(expected, rel=1e-6)
    assert power < 0.5  # ~9 discordant prompts cannot reliably show a 6-point drop: why "not significant" says little


def test_ifeval_items_read_lm_eval_sample_files(tmp_path):
    folder = tmp_path / "run" / "samples" / "Some Model" / "ifeval"
    folder.mkdir(parents=True)
    rows = [{"doc_id": 3, "prompt_level_strict_acc": True, "inst_level_strict_acc": [True, True]},
            {"doc_id": 1, "prompt_level_strict_acc": False, "inst_level_strict_acc": [True, False, False]}]
    (folder / "samples_ifeval_2026.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert ifeval_items(tmp_path / "run") == {3: IFEvalItem(True, (True, True)),
                                              1: IFEvalItem(False, (True, False, False))}
    with pytest.raises(AssertionError, match="no IFEval samples"):
        ifeval_items(tmp_path / "empty")
