"""Suite data: where it comes from, how it is pulled, and where it lies once pulled.

Other modules need three calls:
- `require(settings, suite) -> Path`: the suite's pulled folder, or a UserError saying where the data comes from;
- `ensure(settings, suite) -> Path`: the same, pulling it first when it is missing;
- `nltk_dir(settings) -> Path`: the folder to put in NLTK_DATA (holds tokenizers/punkt_tab/english for IFEval).
"""

from __future__ import annotations

from pathlib import Path

from harness.data.manifest import Manifest, load_manifest
from harness.data.pulling import Outcome, all_targets, pull, where_from
from harness.data.verify import verified_identity, verify
from harness.errors import UserError
from harness.settings import Settings

__all__ = ["Manifest", "MissingData", "Outcome", "data_identity", "ensure", "has_offline_source", "load_manifest",
           "missing_reason", "nltk_dir", "pull", "require", "suite_dir"]


class MissingData(Exception):
    """A suite's data is not in the data home (and the hub is not used). Not a UserError on purpose: in a run of many
    suites (`--suites open_llm_v2`, the main job) that one unit fails with this reason in its record, so the card names
    the missing suite and the command that gets it, and the other suites still run."""


def missing_reason(settings: Settings, suite: str) -> str | None:
    """None when the suite's data is pulled; else one line naming the command that gets it."""
    target = _target(suite)
    if load_manifest(settings.data_dir / target.folder) is not None:
        return None
    from harness.data.pulling import has_pinned_source

    if target.hub and not has_pinned_source(target):
        return f"{suite}: hub only: run `sppo-bench data pull --suites {suite}` where the hub is reachable"
    return (f"{suite}: not pulled: run `sppo-bench data pull --suites {suite}` (with the hub, or `--data-dir DIR` "
            "holding its pinned upstream files, e.g. ../shared/data)")


def memo_db(settings: Settings) -> Path:
    """Where the sha256 of pulled data files are remembered by (path, size, mtime, ctime, inode)."""
    return settings.home / "data-hashes.sqlite"


def data_identity(settings: Settings, folder: Path) -> str | None:
    """Content identity of a pulled folder, its files checked against their manifest first (UserError on a mismatch);
    None for a folder no manifest describes."""
    return verified_identity(folder, memo_db(settings))


def has_offline_source(suite: str) -> bool:
    """Whether `data pull --data-dir` can build the suite from a mirror (not only from the hub)."""
    target = all_targets().get(suite)
    return target is not None and any(part.mirror or part.wheel or part.urls for part in target.parts)


def suite_dir(settings: Settings, suite: str) -> Path:
    return settings.data_dir / _target(suite).folder


def require(settings: Settings, suite: str, part: str | None = None) -> Path:
    """The pulled folder of `suite` (`punkt_tab` for the NLTK data); UserError naming the source when not pulled.

    `part` also requires one optional piece (arena_hard's "v0.1", which has no offline source)."""
    target = _target(suite)
    folder = settings.data_dir / target.folder
    manifest = load_manifest(folder)
    if manifest is None:
        raise UserError(where_from(target))
    verify(folder, manifest, memo_db(settings))  # the bytes about to be read are the ones pulled, or a refusal
    if part is not None and part not in {p.name for p in manifest.parts}:
        known = [p for p in target.parts if p.name == part]
        if not known:
            raise UserError(f"{suite} has no part {part!r}; known: {', '.join(p.name for p in target.parts)}")
        src = known[0].url_revision or (known[0].wheel.requirement if known[0].wheel else "a mirror")
        raise UserError(f"{suite} {part} is not pulled (it comes from {src}; last try: "
                        f"{manifest.missing.get(part, 'not attempted')}); run `sppo-bench data pull --suites {suite} "
                        f"--data-dir DIR` with a mirror holding it (e.g. ../shared/data)")
    return folder


def ensure(settings: Settings, suite: str, data_dir: Path | None = None) -> Path:
    """`require`, pulling the suite (and what it needs) first when it is missing."""
    target = _target(suite)
    for outcome in pull(settings, [target.name], data_dir=data_dir):
        if outcome.status == "failed":
            raise UserError(outcome.message)
    return require(settings, suite)


def from_mirror(settings: Settings, suite: str, mirror: Path) -> Path | None:
    """`eval --data-dir DIR` where DIR holds upstream files (../shared/data) rather than the converted layout: the
    suite is converted into the data home once and read from there. None when the suite has no mirror layout at all;
    MissingData for a hub-only suite the mirror lacks; UserError when the mirror's pinned files are wrong."""
    from harness.data.pulling import has_pinned_source

    target = all_targets().get(suite)
    if target is None or not has_offline_source(suite):
        return None
    outcome = pull(settings, [target.name], data_dir=mirror)[0]
    if outcome.status == "failed":
        reason = missing_reason(settings, suite)
        if reason and target.hub and not has_pinned_source(target):
            raise MissingData(reason)
        raise UserError(outcome.message)
    return require(settings, suite)


def nltk_dir(settings: Settings) -> Path:
    """Set NLTK_DATA to this folder: it holds tokenizers/punkt_tab/english (pulled with the ifeval suite)."""
    return require(settings, "punkt_tab")


def _target(suite: str):
    targets = all_targets()
    name = "punkt_tab" if suite in ("nltk", "punkt") else suite
    if name not in targets:
        from harness.specs import SUITES

        spec = SUITES.get(name)  # unknown suite: raises with close names
        raise UserError(f"suite {spec.name!r} has no data of its own (it is the mean of {', '.join(spec.aggregate_of)})")
    return targets[name]
