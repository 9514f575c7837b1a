"""The SPPO objective on held-out prompts: does the preference model SPPO trains against prefer an iteration's greedy
answers to the base model's?

For every held-out prompt (`prompts/heldout_prompts.jsonl`, written for this project, disjoint from the training
prompts and from every evaluation set; tests/test_sppo_objective.py checks that), the base and each iteration answer
greedily (temperature 0, at most `objective.max_new_tokens` tokens). The training preference model, built from the
config's `[ranker]` by `rank.build_ranker` exactly as the pipeline builds it, ranks the pair (iteration, base): the
local judge asks "A or B?" in both orders, and P(iteration > base) = sigma(s_iteration - s_base) (probs.py), the
probability the SPPO loss is computed from; for the local judge that is sigma((L_ib - L_bi) / 2), the mean of the two
orders' log-odds (harness.judges.pairwise.COMBINATION), so a judge that says 0.55 in each order gives 0.55. Identical
answers get exactly 1/2 without a call (the two orders are the same request, so their logits cancel).

Per iteration, a `ResultRecord` (suite `sppo_objective`) with
- `win_rate_vs_base`: 100 x the mean of P over prompts (AlpacaEval's soft win rate), n, and a 95% percentile
  bootstrap interval over prompts (`stats.mean_interval`, the project's one-sample resampler; P is already the
  paired, per-prompt comparison);
- `differing_answers`: % of prompts whose greedy answers differ (exact text);
- `empty_answers` / `repeated_token_answers` and the base's `base_empty_answers` / `base_repeated_token_answers`:
  counts of degenerate answers (see `is_repeated_token`), n = prompts;
and one `ItemRow` per prompt: `scores["preference"]` = 1 + P in [1, 2] (AlpacaEval's convention: 2 = the iteration
preferred), `scores["differs"]` 0/1, the prompt, the iteration's answer, and the judge's account in `judgment`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness import stats
from harness.backends.base import BackendOptions, ChatBackend, ChatRequest, Completion, SamplingParams
from harness.errors import UserError
from harness.identity import fingerprint
from harness.judges.pairwise import COMBINATION
from harness.provenance import package_versions
from harness.records import Coverage, DatasetProvenance, ItemRow, JudgeInfo, Metric, Provenance, ResultRecord, now
from harness.settings import Settings
from harness.sppo import rank, sample
from harness.sppo.config import ObjectiveConfig, SPPOConfig
from harness.sppo.probs import preference_matrix

SUITE = "sppo_objective"
METRIC = "win_rate_vs_base"
BUNDLED_HELDOUT = "heldout_prompts.jsonl"
REPEAT_MAX_BLOCK = 10
"""Longest block of words `is_repeated_token` looks for."""
REPEAT_MIN_RUN = 10
"""Fewest words a repeated run must cover (so "very very very" is not degenerate)."""

BackendFactory = Callable[[str], ChatBackend]
RankerFactory = Callable[[], rank.PreferenceModel]
Log = Callable[[str], None]


@dataclass(frozen=True)
class Judged:
    preference: float
    """P(iteration > base) in [0, 1]."""
    account: str


def evaluate_objective(
    cfg: SPPOConfig,
    base: str,
    checkpoints: Sequence[tuple[int, str]],
    settings: Settings,
    *,
    backend_factory: BackendFactory | None = None,
    ranker_factory: RankerFactory | None = None,
    log: Log = print,
) -> list[tuple[ResultRecord, list[ItemRow]]]:
    """Per (iteration, checkpoint): the record and item rows of its greedy answers against the base's, on the
    held-out prompts, under the training preference model. The factories replace the policy backends and the
    preference model (tests); by default they are the pipeline's own."""
    started = now()
    prompts = heldout_prompts(cfg.objective)
    open_backend = backend_factory or _policy_backend_factory(cfg, base, settings)
    base_answers = greedy_answers(open_backend(base), prompts, cfg.objective)
    log(f"objective: base answered {len(prompts)} held-out prompts")
    ranker = ranker_factory() if ranker_factory else rank.build_ranker(cfg.ranker, base, settings,
                                                                    cfg.model.chat_template)
    results = []
    for iteration, checkpoint in checkpoints:
        answers = greedy_answers(open_backend(checkpoint), prompts, cfg.objective)
        judged = judge_pairs(ranker, prompts, answers, base_answers)
        record, rows = summarize(cfg, iteration, checkpoint, prompts, answers, base_answers, judged)
        record = record.model_copy(update={"judge": judge_info(ranker, base, cfg),
                                           "provenance": _provenance(cfg, checkpoint, base, started, settings)})
        results.append((record, rows))
        win = record.metrics[METRIC]
        log(f"objective: iter {iteration} win rate vs base {win.value:.1f} "
            f"[{win.ci_low:.1f}, {win.ci_high:.1f}] (n={win.n}), answers differ on "
            f"{record.metrics['differing_answers'].value:.0f}%")
    return results


def heldout_prompts(cfg: ObjectiveConfig) -> list[sample.Prompt]:
    path = heldout_path(cfg)
    prompts = sample.read_prompt_file(path)
    if cfg.n is not None and cfg.n > len(prompts):
        raise UserError(f"objective.n = {cfg.n} but {path} holds {len(prompts)} prompts; lower objective.n")
    return prompts[: cfg.n] if cfg.n else prompts


def heldout_path(cfg: ObjectiveConfig) -> Path:
    if cfg.prompts == sample.BUNDLED:
        return sample.bundled_prompts_path().with_name(BUNDLED_HELDOUT)
    return Path(cfg.prompts)


def greedy_answers(backend: ChatBackend, prompts: Sequence[sample.Prompt], cfg: ObjectiveConfig) -> list[Completion]:
    params = SamplingParams(temperature=0.0, top_p=1.0, max_new_tokens=cfg.max_new_tokens, seed=cfg.seed)
    requests = [ChatRequest(messages=({"role": "user", "content": p.text},), params=params) for p in prompts]
    return backend.generate(requests)


def judge_pairs(ranker: rank.PreferenceModel, prompts: Sequence[sample.Prompt], answers: Sequence[Completion],
                base_answers: Sequence[Completion]) -> list[Judged | None]:
    """P(iteration > base) per prompt; None where either answer failed. Identical answers: 1/2, not judged."""
    out: list[Judged | None] = [None] * len(prompts)
    to_rank = []
    for i, (p, a, b) in enumerate(zip(prompts, answers, base_answers, strict=True)):
        if a.error or b.error:
            continue
        if a.text == b.text:
            out[i] = Judged(0.5, "identical answers: P = 1/2 by symmetry, not judged")
            continue
        to_rank.append((i, sample.SampledPrompt(prompt_id=p.id, prompt=p.text, responses=[a.text, b.text],
                                                seeds=[0, 0], finish_reasons=[a.finish_reason, b.finish_reason])))
    ranked = ranker.rank([row for _, row in to_rank]) if to_rank else []
    for (i, _), r in zip(to_rank, ranked, strict=True):
        p_win = preference_matrix(r.scores)[0][1]
        account = f"P(iteration > base) = {p_win:.4f} from scores {r.scores[0]:+.4f} / {r.scores[1]:+.4f}"
        if r.logits is not None:
            account += (f"; logit(A) - logit(B) = {r.logits[0][1]:+.3f} with the iteration as A, "
                        f"{r.logits[1][0]:+.3f} with the base as A ({COMBINATION})")
        out[i] = Judged(p_win, account)
    return out


def summarize(cfg: SPPOConfig, iteration: int, checkpoint: str, prompts: Sequence[sample.Prompt],
              answers: Sequence[Completion], base_answers: Sequence[Completion],
              judged: Sequence[Judged | None]) -> tuple[ResultRecord, list[ItemRow]]:
    """The record (without judge and provenance) and item rows of one iteration; pure."""
    rows = [
        ItemRow(item=p.id, scores={"preference": 1.0 + j.preference, "differs": float(a.text != b.text)},
                judgment=j.account, prompt=p.text, answer=a.text, length=a.completion_tokens)
        for p, a, b, j in zip(prompts, answers, base_answers, judged, strict=True)
        if j is not None
    ]
    if not rows:
        raise UserError("objective: no held-out prompt got two answers to compare; check the policy backends")
    prefs = np.array([r.scores["preference"] - 1.0 for r in rows])
    interval = stats.mean_interval(prefs, cfg.objective.bootstrap, cfg.objective.seed)
    low, high = interval.ci_low, interval.ci_high
    n = len(rows)
    ok = [(a, b) for a, b, j in zip(answers, base_answers, judged, strict=True) if j is not None]
    metrics = {
        METRIC: Metric(value=100 * float(prefs.mean()), ci_low=100 * low, ci_high=100 * high, n=n),
        "differing_answers": Metric(value=100 * float(np.mean([r.scores["differs"] for r in rows])), n=n),
        "empty_answers": Metric(value=sum(not a.text.strip() for a, _ in ok), n=n),
        "repeated_token_answers": Metric(value=sum(is_repeated_token(a.text) for a, _ in ok), n=n),
        "base_empty_answers": Metric(value=sum(not b.text.strip() for _, b in ok), n=n),
        "base_repeated_token_answers": Metric(value=sum(is_repeated_token(b.text) for _, b in ok), n=n),
    }
    partial = cfg.objective.n is not None
    record = ResultRecord(
        model=f"{cfg.name} Iter {iteration}", iteration=iteration, checkpoint=checkpoint, suite=SUITE,
        status="partial" if partial or n < len(prompts) else "complete", metrics=metrics,
        limit=cfg.objective.n, coverage=Coverage(total=len(prompts), scored=n, failed=len(prompts) - n),
        notes=[f"win rate of greedy answers (<= {cfg.objective.max_new_tokens} tokens) against the base model's under "
               "the training preference model; not a quality measure by an independent judge",
               *([f"local judge: {COMBINATION}"] if cfg.ranker.kind == "judge" else [])],
        provenance=Provenance(source="run", location=checkpoint),
    )
    return record, rows


def is_repeated_token(text: str) -> bool:
    """True when the answer loops: some block of 1 to REPEAT_MAX_BLOCK consecutive words (whitespace-separated
    tokens, compared exactly) occurs at least 3 times back to back, and that run covers at least REPEAT_MIN_RUN
    words. Greedy decoding of a small model falls into such loops ("a simple sight, a simple sight, a simple
    sight, ..."); lists, whose numbers differ, and short emphasis ("very very very") do not count."""
    words = text.split()
    for size in range(1, REPEAT_MAX_BLOCK + 1):
        reps_needed = max(3, -(-REPEAT_MIN_RUN // size))
        for start in range(0, len(words) - size * reps_needed + 1):
            block = words[start : start + size]
            if all(words[start + k * size : start + (k + 1) * size] == block for k in range(1, reps_needed)):
                return True
    return False


def judge_info(ranker: rank.PreferenceModel, base: str, cfg: SPPOConfig) -> JudgeInfo:
    prompt_hash = hashlib.sha256(rank.JUDGE_PROMPT.encode()).hexdigest()[:16] if cfg.ranker.kind == "judge" else ""
    return JudgeInfo(id=f"sppo-ranker:{cfg.ranker.kind}", model=cfg.ranker.model or base, prompt_hash=prompt_hash,
                     backend="hf" if cfg.ranker.kind == "judge" else cfg.ranker.kind, official=False,
                     fingerprint=ranker.fingerprint)


def _policy_backend_factory(cfg: SPPOConfig, base: str, settings: Settings) -> BackendFactory:
    def open_backend(model: str) -> ChatBackend:
        # The base's answers are cached by content (its fingerprint is stable); a checkpoint retrained at the same
        # path must never be served stale answers, so checkpoints are not (as in sample.open_policy_backend).
        is_base = model == base
        options = BackendOptions(model=model, backend=cfg.sampling.backend, batch_size=cfg.objective.batch_size,
                                 chat_template=cfg.model.chat_template if is_base else None, use_cache=is_base)
        return sample.load_chat_backend(options, settings)

    return open_backend


def _provenance(cfg: SPPOConfig, checkpoint: str, base: str, started: object, settings: Settings) -> Provenance:
    path = heldout_path(cfg.objective)
    checkpoint_sha = fingerprint(checkpoint, cache_db=settings.fingerprint_db)
    return Provenance(
        source="run", location=checkpoint, packages=package_versions(), checkpoint_sha256=checkpoint_sha,
        dataset=DatasetProvenance(id="sppo-bench held-out prompts", source=str(path),
                                  sha256=hashlib.sha256(path.read_bytes()).hexdigest()),
        generation={"temperature": 0.0, "max_new_tokens": cfg.objective.max_new_tokens,
                    "backend": cfg.sampling.backend, "base": base, "base_fingerprint": fingerprint(base, cfg.model.chat_template, settings.fingerprint_db),
                    "checkpoint_fingerprint": checkpoint_sha,
                    "objective": json.loads(cfg.objective.model_dump_json())},
        seed=cfg.objective.seed, started_at=started, finished_at=now())  # type: ignore[arg-type]
