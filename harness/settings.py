"""Settings read once from the environment at the CLI edge, then passed down frozen."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    home: Path
    """Cache home: generation cache, prepared models, pulled data (SPPO_BENCH_HOME, default ~/.cache/sppo-bench)."""
    offline: bool
    """True when HF_HUB_OFFLINE is set: never try the hub."""

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def cache_db(self) -> Path:
        return self.home / "cache.sqlite"

    @property
    def fingerprint_db(self) -> Path:
        """Remembered file digests of checkpoints (harness.identity), so a rerun does not rehash the weights."""
        return self.home / "fingerprints.sqlite"


def from_env(environ: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if environ is None else environ)
    home = Path(env.get("SPPO_BENCH_HOME") or Path.home() / ".cache" / "sppo-bench").expanduser()
    offline = env.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}
    return Settings(home=home, offline=offline)
