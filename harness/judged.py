"""Judged suites (AlpacaEval 2, Arena-Hard v0.1, MT-Bench): generate answers, judge them, score them.

`run_suite(spec, model, ctx)` is the "judge" engine's entry point (harness/runners.py). Per suite it
1. generates answers on the model backend and writes them in the upstream formats under
   `ctx.run.samples_dir(model, variant, suite)`: alpaca_eval `model_outputs.json`; arena-hard / FastChat
   `model_answer/<model>.jsonl` (with `token_len`), so they can be submitted upstream or fed to the official tools;
2. judges them with the chosen judge spec (harness.judges): official over the `openai` backend, or local over a
   ChoiceScorer (the embedded default unless `ctx.judge_backend` names a model); judge calls are cached by content;
3. scores exactly as upstream (harness.scoring.*) and returns a record with JudgeInfo (judge id, prompt hash, model,
   official flag), coverage (unparsable / failed judgments are counted, never scored) and notes.

The `*_record` builders are shared with the importers, so imported and computed numbers go through the same code.

`ctx.options` keys read here: "max_new_tokens" (cap for every generation), "best_of_n" (int: best-of-n decoding,
recorded as variant "best-of-N"), "generator" / "judge_instance" (in-process backends, for tests and the Python API;
a local judge that is the same model as the one evaluated reuses the loaded backend).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness.backends.base import (
    BackendOptions,
    ChatBackend,
    ChatRequest,
    ChoiceScorer,
    Completion,
    Message,
    SamplingParams,
)
from harness.errors import CapabilityMissing, UserError
from harness.io import atomic_write_text
from harness.judges import JudgeSpec, choose_judge
from harness.judges.calls import JudgeCache, cache_namespace, probe
from harness.records import Coverage, DatasetProvenance, JudgeInfo, Metric, Provenance, ResultRecord, Status, now
from harness.runners import ModelRef, RunContext
from harness.settings import Settings
from harness.specs import SuiteSpec

OPENAI_URL = "https://api.openai.com/v1"
# FastChat fastchat/llm_judge/common.py temperature_config (tests assert equality with FastChat's own).
MT_TEMPERATURE = {"writing": 0.7, "roleplay": 0.7, "extraction": 0.0, "math": 0.0, "coding": 0.0, "reasoning": 0.0,
                  "stem": 0.1, "humanities": 0.1, "arena-hard-200": 0.0}
MAX_NEW_TOKENS = {"alpaca_eval": 2048, "arena_hard": 4096, "mt_bench": 1024}
"""Generation caps: arena-hard gen_answer_config max_tokens 4096; FastChat gen_model_answer --max-new-token 1024."""


def run_suite(spec: SuiteSpec, model: ModelRef, ctx: RunContext) -> ResultRecord:
    runners: dict[str, Callable[[SuiteSpec, ModelRef, RunContext], ResultRecord]] = {
        "alpaca_eval": _run_alpaca_eval, "arena_hard": _run_arena_hard, "mt_bench": _run_mt_bench}
    if spec.name not in runners:
        raise UserError(f"suite {spec.name!r} is not a judged suite; judged suites: {', '.join(runners)}")
    return runners[spec.name](spec, model, ctx)


# --------------------------------------------------------------------------------------------------------- AlpacaEval

def _run_alpaca_eval(spec: SuiteSpec, model: ModelRef, ctx: RunContext) -> ResultRecord:
    from harness.judges import alpaca_eval as judge_mod
    from harness.scoring.alpaca_eval import df_gamed_path

    started = now()
    models = _Models(ctx, model=model)
    data = suite_data(ctx.settings, "alpaca_eval")
    rows = read_jsonl(data / "eval.jsonl", "AlpacaEval eval set")[: ctx.limit or None]
    judge = choose_judge("alpaca_eval", ctx.judge, _key_env(ctx))
    backend, info, endpoint = judge_backend(judge, ctx, judge_mod.spec_prompt_hash(judge), models)
    cache = JudgeCache(ctx.settings.cache_db, cache_namespace(judge.id, info.prompt_hash, backend.fingerprint))
    variant, gen = _variant(model, ctx)
    out_dir = ctx.run.samples_dir(model.label, variant, spec.name)
    params = SamplingParams(temperature=0.0, max_new_tokens=_cap(ctx, spec.name), seed=ctx.seed)
    completions = _generate(ctx, models, gen, [({"role": "user", "content": r["instruction"]},) for r in rows], params)
    outputs = [{"instruction": r["instruction"], "output": c.text, "generator": model.label, "dataset": r.get("dataset")}
               for r, c in zip(rows, completions, strict=True)]
    atomic_write_text(out_dir / "model_outputs.json", json.dumps(outputs, indent=2, ensure_ascii=False) + "\n")
    failed_gen = [i for i, c in enumerate(completions) if c.error]

    todo = [i for i in range(len(rows)) if i not in set(failed_gen)]
    pairs = [{"instruction": rows[i]["instruction"], "output_1": rows[i]["output"], "generator_1": judge.baseline,
              "output_2": outputs[i]["output"], "generator_2": model.label, "dataset": rows[i].get("dataset")}
             for i in todo]
    annotations = judge_mod.annotate(judge, pairs, backend, cache, _concurrency(ctx), endpoint)
    annotations = [redact(a, (_key_env(ctx),)) for a in annotations]
    atomic_write_text(out_dir / judge.id.replace("/", "__") / "annotations.json",
                      json.dumps(annotations, indent=2, ensure_ascii=False) + "\n")
    record = alpaca_record(
        model.label, variant, annotations, positions=todo, judge=info,
        provenance=_provenance(spec, model, ctx, data, params, started),
        df_gamed=None if ctx.limit else df_gamed_path(ctx.settings), total=len(rows),
        limit_note="LC win rate not computed on a --limit subset (the GLM is fitted on the full 805)" if ctx.limit
        else None)
    return record.model_copy(update={"iteration": model.iteration, "checkpoint": model.checkpoint, "limit": ctx.limit,
                                     "status": _status(record, ctx),
                                     "notes": record.notes + _gen_notes(failed_gen) + _judge_notes(judge)})


def alpaca_record(label: str, variant: str | None, annotations: Sequence[dict[str, Any]], positions: Sequence[int],
                  judge: JudgeInfo, provenance: Provenance, df_gamed: Path | None, total: int,
                  limit_note: str | None = None) -> ResultRecord:
    """Score alpaca_eval annotations (preference None = failed/unparsable) into a record."""
    import pandas as pd

    from harness.scoring.alpaca_eval import avg_length, length_controlled, win_rate

    prefs = [a.get("preference") for a in annotations]
    scored = sum(1 for p in prefs if p is not None and p == p)
    coverage = Coverage(total=total, scored=scored, failed=total - scored)
    if not scored:
        return _failed(label, variant, "alpaca_eval", judge, provenance, coverage,
                       "no judgment could be read: nothing to score")
    wr = win_rate(prefs)
    metrics = {
        "win_rate": Metric(value=wr.win_rate, stderr=wr.standard_error, n=wr.n_total),
        "avg_length": Metric(value=float(avg_length([a["output_2"] for a in annotations])), n=len(annotations)),
    }
    notes = []
    if limit_note:
        notes.append(limit_note)
    else:
        frame = pd.DataFrame(
            [{k: a.get(k) for k in ("instruction", "output_1", "generator_1", "output_2", "generator_2", "annotator",
                                    "preference")} for a in annotations], index=list(positions))
        lc = length_controlled(frame, df_gamed)
        if lc.value is None:
            notes.append(str(lc.reason))
        else:
            metrics["lc_win_rate"] = Metric(value=lc.value, stderr=lc.stderr, n=scored)
    subtasks = {"head2head": {
        "n_wins": Metric(value=wr.n_wins), "n_wins_base": Metric(value=wr.n_wins_base),
        "n_draws": Metric(value=wr.n_draws), "n_total": Metric(value=wr.n_total),
        "discrete_win_rate": Metric(value=wr.discrete_win_rate, n=wr.n_total)}}
    unparsed = sum(1 for a in annotations if a.get("unparsed"))
    if unparsed:
        notes.append(f"{unparsed} verdicts unparsable (neither m nor M among the top logprobs): not scored")
    return ResultRecord(model=label, variant=variant, suite="alpaca_eval",
                        status=_judged_status(total, len(annotations), annotations), metrics=metrics,
                        subtasks=subtasks,
                        coverage=coverage, judge=judge, notes=notes, provenance=provenance)


# --------------------------------------------------------------------------------------------------------- Arena-Hard

def _run_arena_hard(spec: SuiteSpec, model: ModelRef, ctx: RunContext) -> ResultRecord:
    from harness.judges import arena_hard as judge_mod

    started = now()
    models = _Models(ctx, model=model)
    data = arena_dir(suite_data(ctx.settings, "arena_hard"))
    questions = read_jsonl(data / "question.jsonl", "Arena-Hard questions")[: ctx.limit or None]
    judge = choose_judge("arena_hard", ctx.judge, _key_env(ctx))
    backend, info, endpoint = judge_backend(judge, ctx, judge_mod.spec_prompt_hash(judge), models)
    cache = JudgeCache(ctx.settings.cache_db, cache_namespace(judge.id, info.prompt_hash, backend.fingerprint))
    baseline = load_baseline(data, judge.baseline or "gpt-4-0314", [q["question_id"] for q in questions])
    variant, gen = _variant(model, ctx)
    out_dir = ctx.run.samples_dir(model.label, variant, spec.name)
    params = SamplingParams(temperature=0.0, max_new_tokens=_cap(ctx, spec.name), seed=ctx.seed)
    completions = _generate(ctx, models, gen, [({"role": "user", "content": q["turns"][0]["content"]},) for q in questions],
                            params)
    answers = [_fastchat_answer(q["question_id"], model.label, [(c.text, c.completion_tokens)])
               for q, c in zip(questions, completions, strict=True)]
    _write_jsonl(out_dir / "model_answer" / f"{model.label}.jsonl", answers)
    failed_gen = [i for i, c in enumerate(completions) if c.error]

    items = [{"question_id": q["question_id"], "question": q["turns"][0]["content"], "answer": c.text,
              "baseline_answer": baseline[q["question_id"]]}
             for i, (q, c) in enumerate(zip(questions, completions, strict=True)) if i not in set(failed_gen)]
    judgments = [redact(j, (_key_env(ctx),)) for j in judge_mod.judge(judge, items, model.label, backend, cache,
                                                                     _concurrency(ctx), endpoint)]
    _write_jsonl(out_dir / "model_judgment" / judge.id.replace("/", "__") / f"{model.label}.jsonl", judgments)
    record = arena_record(model.label, variant, judgments, [c.completion_tokens for c in completions], info,
                          _provenance(spec, model, ctx, data, params, started), baseline=judge.baseline or "gpt-4-0314",
                          total_questions=len(questions), seed=ctx.seed)
    return record.model_copy(update={"iteration": model.iteration, "checkpoint": model.checkpoint, "limit": ctx.limit,
                                     "status": _status(record, ctx),
                                     "notes": record.notes + _gen_notes(failed_gen) + _judge_notes(judge)})


def arena_record(label: str, variant: str | None, judgments: Sequence[dict[str, Any]], token_lens: Sequence[int] | None,
                 judge: JudgeInfo, provenance: Provenance, baseline: str = "gpt-4-0314", total_questions: int | None = None,
                 seed: int = 0) -> ResultRecord:
    """Score v0.1 model_judgment rows. `seed` offsets upstream's bootstrap seed 42 (0 = upstream's draws)."""
    from harness.scoring.arena_hard import DEFAULT_SEED, LABELS, arena_hard_score, avg_tokens

    if label == baseline:
        raise UserError(f"--model {label!r} is the baseline itself; give the evaluated model's name")
    total_games = 2 * (total_questions if total_questions is not None else len(judgments))
    scored = sum(1 for j in judgments for g in j["games"][:2] if g.get("score") in LABELS)
    coverage = Coverage(total=total_games, scored=scored, failed=total_games - scored)
    if not scored:
        return _failed(label, variant, "arena_hard", judge, provenance, coverage,
                       "no game verdict could be read: nothing to score")
    s = arena_hard_score(judgments, model=label, baseline=baseline, seed=DEFAULT_SEED + seed)
    metrics = {"score": Metric(value=s.score, ci_low=s.ci_low, ci_high=s.ci_high, n=len(judgments))}
    notes = [f"Bradley-Terry on {s.n_battles} battles from {s.n_games} games vs {baseline}; 100 bootstrap rounds"]
    if token_lens:
        metrics["avg_tokens"] = Metric(value=float(avg_tokens(list(token_lens))), n=len(token_lens))
    else:
        notes.append("avg tokens unavailable: no model_answer file with token_len beside the judgments")
    games = [g for j in judgments for g in j["games"][:2]]
    if s.n_unparsed:
        notes.append(f"{s.n_unparsed} games without a verdict after the upstream retries: no battle")
    return ResultRecord(model=label, variant=variant, suite="arena_hard",
                        status=_judged_status(total_games, len(games), games), metrics=metrics, coverage=coverage,
                        judge=judge, notes=notes, provenance=provenance)


def arena_dir(root: Path) -> Path:
    """The v0.1 folder: <data>/arena_hard/v0.1 (data pull layout) or a mirror holding question.jsonl directly."""
    for cand in (root / "v0.1", root):
        if (cand / "question.jsonl").is_file():
            return cand
    raise UserError(f"{root}: no Arena-Hard v0.1 question.jsonl; run `sppo-bench data pull --suites arena_hard`")


def load_baseline(data: Path, baseline: str, question_ids: Sequence[str]) -> dict[str, str]:
    path = data / "model_answer" / f"{baseline}.jsonl"
    if not path.is_file():
        raise UserError(f"{path}: baseline answers of {baseline} missing; run `sppo-bench data pull --suites arena_hard`")
    answers = {r["question_id"]: r["choices"][0]["turns"][0]["content"] for r in read_jsonl(path, "baseline answers")}
    missing = [q for q in question_ids if q not in answers]
    if missing:
        raise UserError(f"{path}: no baseline answer for {len(missing)} questions (e.g. {missing[:3]}); re-pull the data")
    return answers


# ------------------------------------------------------------------------------------------------------------ MT-Bench

def _run_mt_bench(spec: SuiteSpec, model: ModelRef, ctx: RunContext) -> ResultRecord:
    from harness.judges import mt_bench as judge_mod

    started = now()
    models = _Models(ctx, model=model)
    data = suite_data(ctx.settings, "mt_bench")
    questions = read_jsonl(data / "question.jsonl", "MT-Bench questions")[: ctx.limit or None]
    refs = {r["question_id"]: r["choices"][0]["turns"]
            for r in read_jsonl(data / "reference_answer" / "gpt-4.jsonl", "MT-Bench reference answers")}
    prompts = judge_mod.load_prompts(data / "judge_prompts.jsonl")
    judge = choose_judge("mt_bench", ctx.judge, _key_env(ctx))
    backend, info, endpoint = judge_backend(judge, ctx, judge_mod.spec_prompt_hash(judge, prompts), models)
    cache = JudgeCache(ctx.settings.cache_db, cache_namespace(judge.id, info.prompt_hash, backend.fingerprint))
    variant, gen = _variant(model, ctx)
    out_dir = ctx.run.samples_dir(model.label, variant, spec.name)
    cap = _cap(ctx, spec.name)

    def params(q: dict[str, Any]) -> SamplingParams:
        return SamplingParams(temperature=MT_TEMPERATURE.get(q["category"], 0.7), max_new_tokens=cap, seed=ctx.seed)

    # Turn 2 is conditioned on the model's own first answer, so the turns are generated in two rounds.
    first = _generate_each(ctx, models, gen, [(({"role": "user", "content": q["turns"][0]},), params(q)) for q in questions])
    second = _generate_each(ctx, models, gen, [(({"role": "user", "content": q["turns"][0]},
                                         {"role": "assistant", "content": c.text},
                                         {"role": "user", "content": q["turns"][1]}), params(q))
                                       for q, c in zip(questions, first, strict=True)])
    answers = [_fastchat_answer(q["question_id"], model.label, [(a.text, a.completion_tokens),
                                                                  (b.text, b.completion_tokens)], fastchat=True)
               for q, a, b in zip(questions, first, second, strict=True)]
    _write_jsonl(out_dir / "model_answer" / f"{model.label}.jsonl", answers)
    failed_gen = [i for i, (a, b) in enumerate(zip(first, second, strict=True)) if a.error or b.error]

    items = [{"question": q, "answers": [a.text, b.text], "reference": refs.get(q["question_id"])}
             for i, (q, a, b) in enumerate(zip(questions, first, second, strict=True)) if i not in set(failed_gen)]
    judgments = [redact(j, (_key_env(ctx),)) for j in judge_mod.judge(judge, prompts, items, model.label, backend,
                                                                     cache, _concurrency(ctx), endpoint)]
    _write_jsonl(out_dir / "model_judgment" / f"{judge.id.replace('/', '__')}_single.jsonl", judgments)
    record = mt_record(model.label, variant, judgments, info, _provenance(spec, model, ctx, data, cap, started),
                       total=2 * len(questions))
    return record.model_copy(update={"iteration": model.iteration, "checkpoint": model.checkpoint, "limit": ctx.limit,
                                     "status": _status(record, ctx),
                                     "notes": record.notes + _gen_notes(failed_gen) + _judge_notes(judge)})


def mt_record(label: str, variant: str | None, judgments: Sequence[dict[str, Any]], judge: JudgeInfo,
              provenance: Provenance, total: int | None = None) -> ResultRecord:
    from harness.scoring.mt_bench import mt_bench_scores

    s = mt_bench_scores(judgments)
    total = len(judgments) if total is None else total
    scored = s.n_turn_1 + s.n_turn_2
    coverage = Coverage(total=total, scored=scored, failed=total - scored)
    if s.average is None:
        return _failed(label, variant, "mt_bench", judge, provenance, coverage, "no rating could be read")
    metrics = {"average": Metric(value=s.average, n=scored)}
    if s.turn_1 is not None:
        metrics["turn_1"] = Metric(value=s.turn_1, n=s.n_turn_1)
    if s.turn_2 is not None:
        metrics["turn_2"] = Metric(value=s.turn_2, n=s.n_turn_2)
    return ResultRecord(model=label, variant=variant, suite="mt_bench",
                        status=_judged_status(total, len(judgments), judgments),
                        metrics=metrics, coverage=coverage, judge=judge, provenance=provenance,
                        notes=[f"{s.n_unparsed} judgments unparsable (score -1), excluded as FastChat does"]
                        if s.n_unparsed else [])


# -------------------------------------------------------------------------------------------------------------- shared

def judge_backend(judge: JudgeSpec, ctx: RunContext, prompt_hash: str,
                  models: _Models | None = None) -> tuple[Any, JudgeInfo, str]:
    """The judge's backend, its JudgeInfo and the endpoint to name in errors."""
    from harness.backends import load_backend

    injected = ctx.options.get("judge_instance")
    if judge.official:
        opts = ctx.judge_backend or BackendOptions(backend="openai", model=judge.model)
        if opts.model is None:
            opts = replace(opts, model=judge.model)
        endpoint = opts.base_url or OPENAI_URL
        if injected is None and opts.backend == "openai":
            probe(endpoint)  # an endpoint that is down fails here, before any generation is judged
        backend = injected or load_backend(opts, ctx.settings)
        if not isinstance(backend, ChatBackend):
            raise CapabilityMissing(f"judge backend {opts.backend!r} cannot generate chat completions")
        model_name = str(opts.model)
    else:
        opts = ctx.judge_backend or BackendOptions(backend="hf", model=None, batch_size=ctx.backend.batch_size)
        if injected is None and models is not None and ctx.judge_backend is None and ctx.backend.backend == "hf":
            from harness.backends import resolve_checkpoint

            evaluated = models.model.checkpoint if models.model else ctx.backend.model
            if resolve_checkpoint(ctx.settings, None) == resolve_checkpoint(ctx.settings, evaluated):
                injected = models.generator()  # the embedded default judging itself: load it once
        backend = injected or load_backend(opts, ctx.settings)
        if not isinstance(backend, ChoiceScorer):
            raise CapabilityMissing(f"the local judge needs a backend that scores choices (hf); {opts.backend!r} cannot")
        endpoint = f"local {opts.backend}"
        model_name = opts.model or "embedded default (SmolLM2-135M-Instruct)"
    info = JudgeInfo(id=judge.id, model=model_name, prompt_hash=prompt_hash, backend=getattr(backend, "name", opts.backend),
                     official=judge.official)
    return backend, info, endpoint


def suite_data(settings: Settings, suite: str) -> Path:
    """The suite's local data folder via harness.data.require (which names the fix when it is missing)."""
    try:
        from harness.data import require
    except ImportError:
        folder = settings.data_dir / suite
        if folder.is_dir():
            return folder
        raise UserError(f"{folder}: no {suite} data; run `sppo-bench data pull --suites {suite}`") from None
    return Path(require(settings, suite))


def read_jsonl(path: Path, what: str) -> list[dict[str, Any]]:
    from harness.io import read_text

    rows = []
    for n, line in enumerate(read_text(path, what).splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise UserError(f"{path}:{n}: not JSON ({exc.msg}); re-pull or fix the {what}") from None
    return rows


def redact(obj: Any, env_names: Sequence[str] = ("OPENAI_API_KEY",)) -> Any:
    """Replace any API key value found in the environment by "***" in strings nested in `obj`."""
    secrets = [os.environ[n] for n in env_names if len(os.environ.get(n, "")) >= 8]
    extra = [v for k, v in os.environ.items() if k.endswith("_API_KEY") and len(v) >= 8]
    secrets = sorted(set(secrets + extra), key=len, reverse=True)
    if not secrets:
        return obj

    def walk(x: Any) -> Any:
        if isinstance(x, str):
            for s in secrets:
                x = x.replace(s, "***")
            return x
        if isinstance(x, dict):
            return {k: walk(v) for k, v in x.items()}
        if isinstance(x, list | tuple):
            return [walk(v) for v in x]
        return x

    return walk(obj)


def _variant(model: ModelRef, ctx: RunContext) -> tuple[str | None, int | None]:
    """Best-of-n comes from ctx.options["best_of_n"] or from a "best-of-N" variant on the model reference."""
    from harness.bestofn import n_from_variant

    n = ctx.options.get("best_of_n") or n_from_variant(model.variant)
    if n:
        from harness.bestofn import variant_name

        return model.variant or variant_name(int(n)), int(n)
    return model.variant, None


def _generate(ctx: RunContext, models: _Models, n: int | None, conversations: Sequence[tuple[Message, ...]],
              params: SamplingParams) -> list[Completion]:
    return _generate_each(ctx, models, n, [(c, params) for c in conversations])


def _generate_each(ctx: RunContext, models: _Models, n: int | None,
                   items: Sequence[tuple[tuple[Message, ...], SamplingParams]]) -> list[Completion]:
    backend = models.generator()
    if not n:
        return backend.generate([ChatRequest(conv, p) for conv, p in items])
    from harness.bestofn import SAMPLING, best_of_n
    from harness.sppo.rank import LocalJudge

    scorer = ctx.options.get("preference_scorer") or _local_scorer(ctx)
    ranker = LocalJudge(scorer, batch_size=ctx.backend.batch_size)
    cap = items[0][1].max_new_tokens if items else SAMPLING.max_new_tokens
    chosen = best_of_n(backend, [conv for conv, _ in items], n, ranker,
                       params=replace(SAMPLING, max_new_tokens=cap), seed=ctx.seed)
    return [b.completion for b in chosen]


@dataclass
class _Models:
    """The model backend of one suite run, loaded on first use and shared by both MT-Bench rounds, best-of-n and a
    local judge that is the same model."""

    ctx: RunContext
    loaded: ChatBackend | None = None

    model: ModelRef | None = None

    def generator(self) -> ChatBackend:
        """The unit's checkpoint on the run's backend (never the backend's default model)."""
        if self.loaded is None:
            injected = self.ctx.options.get("generator")
            if injected is None:
                from harness.backends import load_backend

                if self.model is None:
                    raise ValueError("_Models needs the unit's model to load a generator")
                injected = load_backend(replace(self.ctx.backend, model=self.model.checkpoint), self.ctx.settings)
            self.loaded = injected
        return self.loaded


def _local_scorer(ctx: RunContext) -> ChoiceScorer:
    from harness.backends import load_backend

    backend = load_backend(ctx.judge_backend or BackendOptions(backend="hf", model=None), ctx.settings)
    if not isinstance(backend, ChoiceScorer):
        raise CapabilityMissing("best-of-n needs a preference model that scores choices (an hf backend)")
    return backend


def _cap(ctx: RunContext, suite: str) -> int:
    return int(ctx.options.get("max_new_tokens") or MAX_NEW_TOKENS[suite])


def _concurrency(ctx: RunContext) -> int:
    return (ctx.judge_backend.max_concurrency if ctx.judge_backend else ctx.backend.max_concurrency) or 8


def _key_env(ctx: RunContext) -> str:
    return ctx.judge_backend.api_key_env if ctx.judge_backend else "OPENAI_API_KEY"


def _fastchat_answer(question_id: Any, model: str, turns: Sequence[tuple[str, int]], fastchat: bool = False) -> dict:
    """arena-hard model_answer row (turns [{content, token_len}]); FastChat's MT-Bench rows keep turns as strings."""
    import time

    out_turns: list[Any] = [t for t, _ in turns] if fastchat else [{"content": t, "token_len": n} for t, n in turns]
    row: dict[str, Any] = {"question_id": question_id, "answer_id": uuid.uuid4().hex, "model_id": model,
                           "choices": [{"index": 0, "turns": out_turns}], "tstamp": time.time()}
    if fastchat:
        row["token_len"] = [n for _, n in turns]
    return row


def _write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def _provenance(spec: SuiteSpec, model: ModelRef, ctx: RunContext, data: Path, generation: Any,
                started: Any) -> Provenance:
    gen = generation.__dict__ if hasattr(generation, "__dict__") else {"max_new_tokens": generation}
    return Provenance(
        source="run", location=model.checkpoint, packages=package_versions(),
        dataset=DatasetProvenance(id=spec.dataset.id if spec.dataset else None,
                                  revision=spec.dataset.revision if spec.dataset else None, source=str(data)),
        generation={**gen, "backend": ctx.backend.backend, "best_of_n": ctx.options.get("best_of_n")},
        seed=ctx.seed, started_at=started, finished_at=now())


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("sppo-bench", "alpaca-eval", "fschat", "scikit-learn", "pandas"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def _failed(label: str, variant: str | None, suite: str, judge: JudgeInfo, provenance: Provenance, coverage: Coverage,
            error: str) -> ResultRecord:
    return ResultRecord(model=label, variant=variant, suite=suite, status="failed", coverage=coverage, judge=judge,
                        error=error, provenance=provenance)


def _judged_status(expected: int, judged: int, items: Sequence[dict[str, Any]]) -> Status:
    """complete when every item got a judgment (an unparsable verdict is a judgment, shown as coverage, as upstream
    scores without it); partial when items were never judged (generation or judge-call errors)."""
    errored = sum(1 for it in items if it.get("error"))
    return "complete" if judged == expected and not errored else "partial"


def _status(record: ResultRecord, ctx: RunContext) -> Status:
    """A --limit run is partial (never complete); a failed record stays failed."""
    return "partial" if ctx.limit and record.status != "failed" else record.status


def _gen_notes(failed: Sequence[int]) -> list[str]:
    return [f"{len(failed)} generations failed (items {list(failed)[:10]}); not judged, counted in coverage"] if failed \
        else []


def _judge_notes(judge: JudgeSpec) -> list[str]:
    if judge.official:
        return [f"judge: {judge.id} (official)"]
    return [f"judge: {judge.id} (local; not comparable with the official judge's numbers)"]
