"""Run directories for the viewer's tests and benchmark, written with the real record types (`ResultRecord`,
`ItemRow`) and `RunDir`, so they have exactly the layout `sppo-bench eval` writes.

`small_run`: three checkpoints on five suites (judged and lm-eval), one failed record, one answer holding a
`<script>`; `alpaca_805`: the 805 AlpacaEval instructions with four published models' outputs as checkpoints and the
published weighted GPT-4-turbo preferences where alpaca_eval publishes them (under 4 MiB: see shared/data/MANIFEST.md);
`train_folder`: a train-and-eval folder around `small_run`.
"""

from __future__ import annotations

import json
from pathlib import Path

from harness.io import atomic_write_text
from harness.records import (
    CalibrationSummary,
    Coverage,
    DatasetProvenance,
    ItemRow,
    JudgeInfo,
    Metric,
    Provenance,
    ResultRecord,
)
from harness.store import RunDir

CHECKPOINTS = [("Tiny-SPPO base", 0), ("Tiny-SPPO Iter 1", 1), ("Tiny-SPPO Iter 2", 2)]
XSS = "<script>window.__viewer_xss = 1</script> and <img src=x onerror=\"window.__viewer_xss = 2\">"
JUDGE = JudgeInfo(id="weighted_alpaca_eval_gpt4_turbo", model="gpt-4-1106-preview", prompt_hash="ab" * 32,
                  backend="openai", official=True, fingerprint="cd" * 32,
                  calibration=CalibrationSummary(n=805, agreement=0.8137, kappa=0.612, majority_baseline=0.55,
                                                 bias=-1.25, bias_ci_low=-3.5, bias_ci_high=1.0,
                                                 position_consistency=0.91, reference="annotations.json",
                                                 judge_fingerprint="cd" * 32))
LOCAL_JUDGE = JudgeInfo(id="local-smollm", model="SmolLM2-135M-Instruct", prompt_hash="ef" * 32, backend="hf",
                        official=False)
# (checkpoint index) -> lc_win_rate, win_rate, avg_length with n and CI: what the overview must print.
ALPACA = {0: (10.25, 8.5, 1204), 1: (21.5, 19.75, 1530), 2: (33.33, 30.0, 1610)}
ALPACA_CI = {0: (7.0, 13.5), 1: (18.0, 25.0), 2: (29.5, 37.25)}
ARENA = {0: (5.5, -1.2, 1.4, 410), 1: (12.0, -2.0, 2.5, 455), 2: (18.4, -2.2, 2.1, 470)}
MT = {0: (4.1, 3.2, 3.65), 1: (5.0, 4.0, 4.5), 2: (6.25, 5.5, 5.875)}


def provenance(source: str = "run") -> Provenance:
    return Provenance(source=source, location="/models/tiny", packages={"lm_eval": "0.4.13"},
                      dataset=DatasetProvenance(id="tatsu-lab/alpaca_eval", revision="0123456789abcdef"))


def small_run(root: Path) -> Path:
    run = RunDir(root)
    for i, (model, it) in enumerate(CHECKPOINTS):
        _alpaca(run, model, it, i)
        _arena(run, model, it, i)
        _mt_bench(run, model, it, i)
        _gsm8k(run, model, it, i)
    run.write(ResultRecord(model=CHECKPOINTS[2][0], iteration=2, suite="ifeval", status="failed",
                           error="generation backend crashed", provenance=provenance()))
    return root


def _alpaca(run: RunDir, model: str, it: int, i: int) -> None:
    lc, wr, length = ALPACA[i]
    low, high = ALPACA_CI[i]
    record = ResultRecord(model=model, iteration=it, suite="alpaca_eval", judge=JUDGE, provenance=provenance(),
                          coverage=Coverage(total=3, scored=3 if i else 2, failed=0 if i else 1),
                          metrics={"lc_win_rate": Metric(value=lc, n=3, ci_low=low, ci_high=high),
                                   "win_rate": Metric(value=wr, n=3, stderr=1.5),
                                   "avg_length": Metric(value=length)})
    run.write(record)
    answers = [f"**Iteration {it}** says: paris is the capital ({'x' * (10 * it)})",
               XSS if i == 1 else f"A list:\n\n- one\n- two {it}",
               f"```python\nprint({it})\n```"]
    prefs = [[1.2, 1.8, 1.9], [1.1, 1.7, 1.9], [1.6, 1.9, 1.95]][i]
    rows = [ItemRow(item=str(n), prompt=f"Question {n}: what is the capital of France? <b>bold?</b>", answer=a,
                    scores={"preference": p, "length": len(a)}, length=len(a), judgment=f"Output (b) {p}")
            for n, (a, p) in enumerate(zip(answers, prefs, strict=True))]
    if i == 0:
        rows = rows[1:]  # item 0 failed for the base model: absent, counted in coverage
    _write_items(run, record, rows)


def _arena(run: RunDir, model: str, it: int, i: int) -> None:
    score, lo, hi, tokens = ARENA[i]
    record = ResultRecord(model=model, iteration=it, suite="arena_hard", judge=LOCAL_JUDGE, provenance=provenance(),
                          metrics={"score": Metric(value=score, ci_low=score + lo, ci_high=score + hi, n=2),
                                   "avg_tokens": Metric(value=tokens)})
    run.write(record)
    games = [[["A>B", "B>A"], ["A=B", "A=B"]], [["B>A", "A>B"], ["A>>B", None]], [["B>>A", "A>>B"], ["B>A", "A>B"]]][i]
    rows = [ItemRow(item=qid, prompt=f"Arena question {qid}", answer=f"arena answer {qid} from iter {it}",
                    games=g, length=100 + 10 * it, judgment=f"[[{g[0]}]] then [[{g[1]}]]")
            for qid, g in zip(("q-a", "q-b"), games, strict=True)]
    _write_items(run, record, rows)


def _mt_bench(run: RunDir, model: str, it: int, i: int) -> None:
    t1, t2, avg = MT[i]
    record = ResultRecord(model=model, iteration=it, suite="mt_bench", judge=LOCAL_JUDGE, provenance=provenance(),
                          metrics={"turn_1": Metric(value=t1, n=1), "turn_2": Metric(value=t2, n=1),
                                   "average": Metric(value=avg, n=2)})
    run.write(record)
    rows = [ItemRow(item="81", turn=turn, prompt=f"turn {turn} question", answer=f"turn {turn} answer, iter {it}",
                    scores={"rating": r}, length=50 + it) for turn, r in ((1, t1), (2, t2))]
    _write_items(run, record, rows)


def _gsm8k(run: RunDir, model: str, it: int, i: int) -> None:
    record = ResultRecord(model=model, iteration=it, suite="gsm8k", provenance=provenance(),
                          metrics={"exact_match": Metric(value=[25.0, 50.0, 75.0][i], stderr=4.33, n=4)})
    run.write(record)
    rows = [ItemRow(item=str(d), prompt=f"Q: {d} + {d}?\nA:", answer=f"The answer is {2 * d + (d < i)}.",
                    target=str(2 * d), extracted=str(2 * d + (d < i)), scores={"exact_match": float(d >= i)})
            for d in range(4)]
    _write_items(run, record, rows)


def _write_items(run: RunDir, record: ResultRecord, rows: list[ItemRow]) -> None:
    path = run.samples_dir(record.model, record.variant, record.suite) / "items.jsonl"
    atomic_write_text(path, "".join(r.model_dump_json() + "\n" for r in rows))


def train_folder(root: Path) -> Path:
    """OUT/ as `train-and-eval` leaves it: run.json, iter1..2 files, checkpoint provenance, eval/ run directory."""
    small_run(root / "eval")
    atomic_write_text(root / "run.json", json.dumps({
        "base": "/models/tiny", "base_label": "tiny",
        "config": {"name": "Tiny-SPPO", "ranker": {"kind": "judge", "model": None}},
        "iterations": [{"iteration": t, "checkpoint": str(root / "checkpoints" / f"iter{t}")} for t in (1, 2)]}))
    for t in (1, 2):
        folder = root / f"iter{t}"
        atomic_write_text(folder / "prompts.jsonl", "".join(json.dumps({"id": f"p{n}", "prompt": f"prompt {n}"}) + "\n"
                                                             for n in range(3 + t)))
        samples = [{"prompt_id": f"p{n}", "prompt": f"prompt {n}", "responses": ["a", "b"], "seeds": [1, 2],
                    "finish_reasons": ["stop", "length" if n == 0 else "stop"]} for n in range(3 + t)]
        atomic_write_text(folder / "samples.jsonl", "".join(json.dumps(s) + "\n" for s in samples))
        scores = [{"prompt_id": f"p{n}", "scores": [0.25 * n, -0.25 * n], "logits": None} for n in range(3 + t)]
        atomic_write_text(folder / "scores.jsonl", "".join(json.dumps(s) + "\n" for s in scores))
        atomic_write_text(folder / "steps" / "train.json", json.dumps({"step": "train", "seconds": 12.5 * t}))
        log = [{"loss": 0.70 / t, "rewards/margins": 0.1 * t, "step": 1.0},
               {"loss": 0.60 / t, "rewards/margins": 0.2 * t, "step": 2.0},
               {"train_loss": 0.65 / t, "step": 2.0}]
        atomic_write_text(root / "checkpoints" / f"iter{t}" / "sppo_checkpoint.json", json.dumps({
            "iteration": t, "train_steps": 2, "train_log": log, "loss": "soft SPPO", "weights_sha256": f"{t}" * 64}))
    return root


def alpaca_805(root: Path, shared_data: Path) -> Path:
    """Four published models as four "checkpoints" of one AlpacaEval run: 805 items x 4 answers."""
    results = shared_data / "alpaca_eval" / "results"
    run = RunDir(root)
    sources = [("Mistral-7B-Instruct-v0.2", 0, "outputs"), ("OpenHermes-2.5-Mistral-7B", 1, "annotations"),
               ("gpt-3.5-turbo-1106", 2, "annotations"), ("SPPO-Mistral7B-PairRM", 3, "outputs")]
    for name, it, kind in sources:
        if kind == "annotations":
            rows = json.loads((results / name / "weighted_alpaca_eval_gpt4_turbo" / "annotations.json").read_text())
            items = [ItemRow(item=str(n), prompt=r["instruction"], answer=r["output_2"], length=len(r["output_2"]),
                             scores={"preference": float(r["preference"]), "length": len(r["output_2"])},
                             judgment=f"preference {r['preference']} ({r['annotator']})") for n, r in enumerate(rows)]
            prefs = [float(r["preference"]) for r in rows]
            metrics = {"win_rate": Metric(value=100 * sum(p - 1 for p in prefs) / len(prefs), n=len(prefs))}
        else:
            rows = json.loads((results / name / "model_outputs.json").read_text())
            items = [ItemRow(item=str(n), prompt=r["instruction"], answer=r["output"], length=len(r["output"]),
                             scores={"length": len(r["output"])}) for n, r in enumerate(rows)]
            metrics = {}
        metrics["avg_length"] = Metric(value=sum(i.length or 0 for i in items) / len(items), n=len(items))
        record = ResultRecord(model=name, iteration=it, suite="alpaca_eval", metrics=metrics,
                              judge=JUDGE if kind == "annotations" else None,
                              notes=[] if kind == "annotations" else ["published outputs; not judged here"],
                              provenance=Provenance(source="import:alpaca-eval", location=str(results / name)))
        run.write(record)
        _write_items(run, record, items)
    return root
