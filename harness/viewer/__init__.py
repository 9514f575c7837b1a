"""The run viewer: a static site (opens from disk, fetches nothing) with the card's tables, plots, SPPO training
summary, judges and coverage, and per-suite item browsers that put every checkpoint's answer side by side.

Entry point: `build_site(sources, out_dir) -> Path` (the written index.html); `sppo-bench view` calls it.
"""

from harness.viewer.site import build_site

__all__ = ["build_site"]
