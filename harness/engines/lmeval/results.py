"""lm-eval results (the JSON `lm_eval --output_path` writes, or the Open LLM Leaderboard's published results files)
into typed, leaderboard-normalized records: `sppo-bench import lm-eval RESULTS.json --model NAME --out RUN_DIR`.

The same parser turns our own `lm_eval.simple_evaluate` output into records (harness.engines.lmeval), so a number
imported from the leaderboard and a number we computed go through one code path. Each suite's rule is the
`LeaderboardRule` on its spec.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness.errors import UserError
from harness.io import read_text
from harness.records import Coverage, DatasetProvenance, Metric, Provenance, ResultRecord, now
from harness.scoring import leaderboard as lb
from harness.specs import LeaderboardRule, SuiteSpec

REQUIRED_FIELDS = ("results", "versions")


def import_file(path: Path, model: str, specs: Sequence[SuiteSpec], iteration: int | None = None,
                variant: str | None = None) -> list[ResultRecord]:
    """Every lm-eval suite among `specs` whose task the results file holds, as a record."""
    text = read_text(path, "lm-eval results file")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not JSON ({exc.msg} at line {exc.lineno}); pass the results_*.json lm-eval wrote") from None
    check_schema(data, path)
    try:
        return _import(path, data, model, specs, iteration, variant)
    except UserError as exc:
        raise UserError(str(exc) if str(exc).startswith(str(path)) else f"{path}: {exc}") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "record"
        raise UserError(f"{path}: {where}: {err['msg'].removeprefix('Value error, ')}; fix or re-create the results "
                        "file") from None


def _import(path: Path, data: dict[str, Any], model: str, specs: Sequence[SuiteSpec], iteration: int | None,
            variant: str | None) -> list[ResultRecord]:
    lm_eval_suites = [s for s in specs if s.engine == "lm-eval"]
    found = [s for s in lm_eval_suites if s.lm_eval_task and _has_task(data, s.lm_eval_task)]
    if not found:
        names = ", ".join(sorted(data["results"])[:8]) or "none"
        known = ", ".join(s.lm_eval_task or "" for s in lm_eval_suites)
        raise UserError(f"{path}: no Open LLM Leaderboard task in it (found: {names}); expected one of {known}")
    return [
        build_record(
            spec,
            data,
            model=model,
            source="import:lm-eval",
            location=str(path),
            iteration=iteration,
            variant=variant,
        )
        for spec in found
    ]


def leaves_of(path: Path, task: str) -> list[str]:
    """The leaf tasks of `task` in a results file (itself when it has none)."""
    data = json.loads(read_text(path, "lm-eval results file"))
    return _Results(data, task).leaves


def check_schema(data: Any, path: Path | str) -> None:
    """An lm-eval 0.4 results file: a JSON object with `results` (task -> "metric,filter" values) and `versions`."""
    if not isinstance(data, dict):
        raise UserError(f"{path}: an lm-eval results file is a JSON object, got {type(data).__name__}")
    for key in REQUIRED_FIELDS:
        if key not in data:
            hint = " (this looks like a per-sample file; pass results_*.json)" if "doc_id" in data else ""
            raise UserError(f"{path}: missing field `{key}` of lm-eval 0.4 results{hint}; pass the results_*.json "
                            "written by `lm_eval --output_path` (lm-eval >= 0.4)")
        if not isinstance(data[key], dict):
            raise UserError(f"{path}: field `{key}` should be an object, got {type(data[key]).__name__}")
    for task, entry in data["results"].items():
        if not isinstance(entry, dict):
            raise UserError(f"{path}: field `results.{task}` should be an object of metrics, got "
                            f"{type(entry).__name__}; pass the results_*.json lm-eval wrote")


def rule_for(spec: SuiteSpec) -> LeaderboardRule:
    if spec.leaderboard is None:
        raise UserError(f"suite {spec.name!r} has no lm-eval scoring rule (`leaderboard=` on its spec)")
    return spec.leaderboard


def build_record(
    spec: SuiteSpec,
    data: Mapping[str, Any],
    *,
    model: str,
    source: str,
    location: str | None = None,
    iteration: int | None = None,
    variant: str | None = None,
    checkpoint: str | None = None,
    limit: int | None = None,
    dataset: DatasetProvenance | None = None,
    notes: list[str] | None = None,
    extra_generation: Mapping[str, Any] | None = None,
    git_sha: str | None = None,
) -> ResultRecord:
    """One suite's record from an lm-eval results dict, normalized as the leaderboard does."""
    task = spec.lm_eval_task or spec.name
    rule = rule_for(spec)
    view = _Results(data, task)
    notes = list(notes or [])
    metrics, subtasks = _score(spec, rule, view, notes)
    n_original, n_effective = view.sample_counts()
    partial = limit is not None or (n_original is not None and n_effective is not None and n_effective < n_original)
    if partial and limit is None:
        notes.append(f"evaluated {n_effective} of {n_original} items (lm-eval limit)")
        limit = view.config_limit()
    config: Mapping[str, Any] = data["config"] if isinstance(data.get("config"), dict) else {}
    generation = _generation(spec, rule, view, data, config, extra_generation)
    return ResultRecord(
        model=model,
        variant=variant,
        iteration=iteration,
        checkpoint=checkpoint,
        suite=spec.name,
        status="partial" if partial else "complete",
        metrics=metrics,
        subtasks=subtasks,
        limit=limit,
        coverage=Coverage(total=n_effective, scored=n_effective, available=n_original)
        if n_original is not None and n_effective is not None else None,
        notes=notes,
        provenance=Provenance(
            source=source,
            location=location,
            packages={k: str(v) for k, v in {"lm_eval": data.get("lm_eval_version"),
                                              "transformers": data.get("transformers_version")}.items() if v},
            dataset=dataset or view.dataset(spec),
            generation={k: v for k, v in generation.items() if v is not None},
            seed=config.get("random_seed"),
            git_sha=git_sha,
            finished_at=now(),
        ),
    )


def _generation(spec: SuiteSpec, rule: LeaderboardRule, view: _Results, data: Mapping[str, Any],
                config: Mapping[str, Any], extra: Mapping[str, Any] | None) -> dict[str, Any]:
    """How the numbers were produced: chat template, shots, generation settings, task versions, lm-eval's metric."""
    task = view.task
    generation: dict[str, Any] = {
        "apply_chat_template": bool(data.get("chat_template")) if "chat_template" in data else None,
        "fewshot_as_multiturn": data.get("fewshot_as_multiturn"),
        "n_shot": {t: data.get("n-shot", {}).get(t) for t in [task, *view.leaves]} if "n-shot" in data else None,
        "generation_kwargs": view.generation_kwargs(),
        "task_versions": {t: data["versions"].get(t) for t in [task, *view.leaves] if t in data["versions"]},
        "card_metric": spec.headline,
        "lm_eval_metric": f"{rule.metric},{rule.filter}",
        "model_args": config.get("model_args"),
        "batch_size": config.get("batch_size"),
    }
    generation.update(extra or {})
    return generation


def _score(spec: SuiteSpec, rule: LeaderboardRule, view: _Results, notes: list[str]) -> tuple[dict[str, Metric], dict[str, dict[str, Metric]]]:
    n_total = view.total_n()
    metrics: dict[str, Metric] = {}
    subtasks: dict[str, dict[str, Metric]] = {}
    match rule.kind:
        case "ifeval":
            prompt = view.get(view.task, "prompt_level_strict_acc", rule.filter)
            inst = view.get(view.task, "inst_level_strict_acc", rule.filter)
            metrics[spec.headline] = Metric(value=lb.ifeval_score(inst.value, prompt.value), n=n_total)
            for name in (rule.metric, *rule.also):
                m = view.get(view.task, name, rule.filter)
                metrics[name] = _scaled(m, 0.0)
        case "subtasks":
            missing = sorted(set(rule.subtask_choices) - set(view.leaves))
            if missing:
                raise UserError(f"{view.task}: results lack subtasks {', '.join(missing)}; the leaderboard averages all "
                                f"{len(rule.subtask_choices)} (rerun the whole `{view.task}` group)")
            per = {t: view.get(t, rule.metric, rule.filter) for t in rule.subtask_choices}
            value = lb.subtask_mean({t: m.value for t, m in per.items()}, rule.subtask_choices)
            stderrs = {t: m.stderr for t, m in per.items() if m.stderr is not None}
            stderr = lb.subtask_mean_stderr(stderrs, rule.subtask_choices) if len(stderrs) == len(per) else None
            metrics[spec.headline] = Metric(value=value, stderr=stderr, n=n_total)
            metrics[f"{rule.metric}_raw"] = _scaled(view.group_value(rule.metric, rule.filter), 0.0)
            for t, m in per.items():
                lo = 1.0 / rule.subtask_choices[t]
                subtasks[t] = {rule.metric: _scaled(m, lo), f"{rule.metric}_raw": _scaled(m, 0.0)}
        case "group":
            names = (rule.metric, *rule.also)
            if rule.metric == "exact_match_original" and not view.has_metric("exact_match_original"):
                # Results written before lm-eval adopted math-verify have one check, the original one, named exact_match.
                names = ("exact_match",)
                notes.append("exact_match_original taken from `exact_match`: these results predate lm-eval's "
                             "math-verify check, so their exact_match is the original answer check")
            keys = (rule.metric, *names[1:])  # the first is stored as the card's metric even when read from a fallback
            for key, name in zip(keys, names, strict=True):
                metrics[key] = _scaled(view.group_value(name, rule.filter), rule.lower_bound)
            if rule.lower_bound:
                metrics[f"{rule.metric}_raw"] = _scaled(view.group_value(names[0], rule.filter), 0.0)
            for t in (view.leaves if view.leaves != [view.task] else []):
                subtasks[t] = {k: _scaled(view.get(t, n, rule.filter), rule.lower_bound) for k, n in zip(keys, names, strict=True)}
        case "raw":
            metrics[spec.headline] = _scaled(view.group_value(rule.metric, rule.filter), 0.0)
    if rule.unweighted_too:
        leaf_values = [view.get(t, rule.metric, rule.filter).value for t in view.leaves]
        metrics[f"{rule.metric}_unweighted"] = Metric(value=lb.raw(sum(leaf_values) / len(leaf_values)), n=n_total)
    return metrics, subtasks


def _scaled(m: Metric, lower_bound: float) -> Metric:
    return Metric(
        value=lb.norm(m.value, lower_bound),
        stderr=None if m.stderr is None else lb.norm_stderr(m.stderr, lower_bound),
        n=m.n,
    )


class _Results:
    """Read access to one task (or group) of an lm-eval results dict, naming the missing field on error."""

    def __init__(self, data: Mapping[str, Any], task: str) -> None:
        self.data = data
        self.task = task
        self.results: dict[str, Any] = {**data.get("groups", {}), **data["results"]}
        if task not in self.results and not _has_task(data, task):
            raise UserError(f"results have no task `{task}`; found {', '.join(sorted(self.results)[:8])}")
        self.leaves = self._leaves(task)

    def _leaves(self, name: str) -> list[str]:
        group_subtasks = self.data.get("group_subtasks")
        if not isinstance(group_subtasks, dict):
            if name in self.results:
                return [name]
            raise UserError(f"results lack field `group_subtasks` needed to find the subtasks of `{name}`")
        if name not in group_subtasks:
            return [name]
        out: list[str] = []
        for child in group_subtasks[name]:
            out += self._leaves(child)
        return out

    def entry(self, task: str) -> Mapping[str, Any]:
        if task not in self.results:
            raise UserError(f"results lack field `results.{task}` (subtask of `{self.task}`)")
        entry = self.results[task]
        if not isinstance(entry, dict):
            raise UserError(f"field `results.{task}` should be an object of metrics")
        return entry

    def has_metric(self, metric: str) -> bool:
        return any(f"{metric}," in k for t in self.leaves for k in self.results.get(t, {}))

    def get(self, task: str, metric: str, filt: str) -> Metric:
        entry = self.entry(task)
        key = f"{metric},{filt}"
        if key not in entry:
            have = ", ".join(k for k in entry if "," in k and "_stderr" not in k) or "none"
            raise UserError(f"results lack field `results.{task}.{key}` (has: {have}); "
                            "the file is from another task version or lm-eval release")
        value = _number(entry[key], f"results.{task}.{key}")
        if value is None:
            raise UserError(f"field `results.{task}.{key}` is not a number")
        if not 0.0 <= value <= 1.0:
            raise UserError(f"field `results.{task}.{key}` is {value!r}, outside 0..1 (lm-eval writes every leaderboard "
                            "metric as a fraction); fix or re-create the results file")
        stderr_key = f"{metric}_stderr,{filt}"
        stderr = _number(entry.get(stderr_key), f"results.{task}.{stderr_key}")
        if stderr is not None and stderr < 0:
            raise UserError(f"field `results.{task}.{stderr_key}` is {stderr!r}, below 0; fix or re-create the file")
        return Metric(value=value, stderr=stderr, n=self.n(task))

    def n(self, task: str) -> int | None:
        counts = self.data.get("n-samples", {}).get(task)
        if isinstance(counts, dict) and "effective" in counts:
            return int(counts["effective"])
        entry = self.results.get(task, {})
        return int(entry["sample_len"]) if isinstance(entry.get("sample_len"), int) else None

    def total_n(self) -> int | None:
        ns = [self.n(t) for t in self.leaves]
        return None if any(n is None for n in ns) else sum(n for n in ns if n is not None)

    def sample_counts(self) -> tuple[int | None, int | None]:
        counts = [self.data.get("n-samples", {}).get(t) for t in self.leaves]
        if not all(isinstance(c, dict) and "original" in c and "effective" in c for c in counts):
            return None, None
        return sum(int(c["original"]) for c in counts), sum(int(c["effective"]) for c in counts)

    def config_limit(self) -> int | None:
        limit = (self.data.get("config") or {}).get("limit")
        return int(limit) if isinstance(limit, int | float) and limit >= 1 else None

    def group_value(self, metric: str, filt: str) -> Metric:
        """The group's own aggregate when lm-eval wrote one, else lm-eval's size-weighted pooling of the leaves."""
        key = f"{metric},{filt}"
        if self.task in self.results and key in self.results[self.task]:
            m = self.get(self.task, metric, filt)
            return Metric(value=m.value, stderr=m.stderr, n=self.total_n())
        if self.leaves == [self.task]:
            return self.get(self.task, metric, filt)
        from lm_eval.api.metrics import aggregate_subtask_metrics, pooled_sample_stderr

        per = [self.get(t, metric, filt) for t in self.leaves]
        sizes = [m.n for m in per]
        if any(s is None for s in sizes):
            raise UserError(f"results lack field `n-samples` needed to pool `{metric}` over the `{self.task}` subtasks")
        value = float(aggregate_subtask_metrics([m.value for m in per], sizes, weight_by_size=True))
        stderrs = [m.stderr for m in per]
        stderr = None if any(s is None for s in stderrs) else float(pooled_sample_stderr(stderrs, sizes))
        return Metric(value=value, stderr=stderr, n=self.total_n())

    def generation_kwargs(self) -> dict[str, Any] | None:
        configs = self.data.get("configs", {})
        kwargs = {t: configs[t].get("generation_kwargs") for t in self.leaves if t in configs}
        distinct = {json.dumps(v, sort_keys=True, default=str) for v in kwargs.values() if v}
        if not distinct:
            return None
        return json.loads(distinct.pop()) if len(distinct) == 1 else {t: v for t, v in kwargs.items() if v}

    def dataset(self, spec: SuiteSpec) -> DatasetProvenance | None:
        configs = self.data.get("configs", {})
        cfg = next((configs[t] for t in self.leaves if t in configs), None)
        if cfg is None:
            return DatasetProvenance(id=spec.dataset.id, revision=spec.dataset.revision) if spec.dataset else None
        kwargs = cfg.get("dataset_kwargs") or {}
        return DatasetProvenance(id=cfg.get("dataset_path"), revision=kwargs.get("revision"), source="lm-eval config")


def _has_task(data: Mapping[str, Any], task: str) -> bool:
    if task in data.get("results", {}) or task in data.get("groups", {}):
        return True
    return task in (data.get("group_subtasks") or {})


def _number(value: Any, where: str) -> float | None:
    if value is None or value == "N/A":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UserError(f"field `{where}` should be a number, got {value!r}")
    if math.isnan(value):
        return None
    if not math.isfinite(value):
        raise UserError(f"field `{where}` is {value!r} (JSON readers turn 1e309 into infinity), not a finite number; "
                        "fix or re-create the results file")
    return float(value)
