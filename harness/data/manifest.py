"""The manifest.json written into every pulled suite folder: where each file came from and what it holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

MANIFEST = "manifest.json"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceInfo(_Strict):
    kind: Literal["hub", "url", "pypi", "mirror"]
    id: str
    """Hub dataset id, URL prefix, `package==version`, or the mirror folder."""
    revision: str | None = None
    """Hub commit, git commit of the URLs, or package version."""
    sha256: str | None = None
    """sha256 of the fetched artifact when it is one file (the wheel)."""


class FileInfo(_Strict):
    sha256: str
    bytes: int
    rows: int | None = None
    """JSONL lines / JSON array items; None for other files."""


class PartInfo(_Strict):
    name: str
    source: SourceInfo
    files: dict[str, FileInfo]


class Manifest(_Strict):
    schema_version: Literal[1] = 1
    suite: str
    parts: list[PartInfo]
    missing: dict[str, str] = {}
    """Optional parts that no source could provide, with the reason."""
    notes: list[str] = []
    pulled_at: str
    tool_version: str

    def rows(self, file: str) -> int | None:
        for part in self.parts:
            if file in part.files:
                return part.files[file].rows
        return None

    def total_rows(self) -> int:
        """Rows over the data files (per-subject copies under by_subject/ are not counted twice)."""
        return sum(f.rows or 0 for p in self.parts for n, f in p.files.items() if not n.startswith("by_subject/"))


def load_manifest(folder: Path) -> Manifest | None:
    """The folder's manifest if it is present, parses and every listed file exists; else None."""
    path = folder / MANIFEST
    try:
        manifest = Manifest.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, ValidationError):
        return None
    for part in manifest.parts:
        if not all((folder / name).is_file() for name in part.files):
            return None
    return manifest


def manifest_sha256(folder: Path) -> str | None:
    """Content identity of a pulled data folder (or of a sub-folder of one): sha256 over its manifest's file
    digests, independent of when it was pulled. None for a folder no manifest describes (a user mirror)."""
    import hashlib

    for candidate in (folder, folder.parent):
        manifest = load_manifest(candidate)
        if manifest is not None:
            files = sorted((p.name, n, f.sha256) for p in manifest.parts for n, f in p.files.items())
            return hashlib.sha256(json.dumps([manifest.suite, files]).encode()).hexdigest()
    return None
