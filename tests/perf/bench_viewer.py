"""Run viewer speed for 805 AlpacaEval items x 4 checkpoints (published outputs and annotations from
shared/data/alpaca_eval/results): first contentful paint of the item browser in headless Chromium, and the time
until every item is loaded and the filters work.

Ours (first page in the HTML, all items from a data file loaded after the first paint) against a baseline built
side by side from the same records: the same templates with every item in the HTML (page size 805), the layout a
plain static page would have. Median of ROUNDS fresh loads each, alternating. Target: first paint <= 2 s.

Run: `python -m tests.perf bench_viewer` (needs chromium: apt-get install -y chromium).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

ROUNDS = 5
TARGET_S = 2.0


def main() -> None:
    from tests.viewer_cdp import find_chromium

    shared = Path(__file__).resolve().parents[2].parent / "shared" / "data"
    exe = find_chromium()
    if exe is None or not (shared / "alpaca_eval").is_dir():
        print(f"viewer: skipped ({'chromium not installed' if exe is None else f'{shared} absent'})")
        return
    with tempfile.TemporaryDirectory(prefix="bench-viewer-") as tmp:
        run(Path(tmp), shared, exe)


def run(tmp: Path, shared: Path, exe: str) -> None:
    from harness.viewer import build_site
    from tests.viewer_fixtures import alpaca_805

    source = alpaca_805(tmp / "run", shared)
    start = time.perf_counter()
    build_site([source], tmp / "ours")
    built = time.perf_counter() - start
    build_site([source], tmp / "baseline", page_size=805)
    pages = {name: tmp / name / "suites" / "alpaca_eval.html" for name in ("ours", "baseline")}
    data_mb = (tmp / "ours" / "suites" / "alpaca_eval.data.js").stat().st_size / 1e6
    print(f"805 items x 4 checkpoints; build {built:.2f} s; page {pages['ours'].stat().st_size / 1e3:.0f} kB + "
          f"data {data_mb:.1f} MB (baseline page {pages['baseline'].stat().st_size / 1e6:.1f} MB)", flush=True)
    times: dict[str, dict[str, list[float]]] = {n: {"paint": [], "load": [], "ready": []} for n in pages}
    for _ in range(ROUNDS):
        for name, page in pages.items():
            for key, ms in measure(exe, page).items():
                times[name][key].append(ms)
    for key, what in (("paint", "first paint"), ("load", "load event (page parsed and laid out)"),
                      ("ready", "every item loaded and filterable")):
        ours, base = (statistics.median(times[n][key]) for n in ("ours", "baseline"))
        target = f"target <= {TARGET_S} s; " if key == "paint" else ""
        print(f"viewer {what}: ours {ours / 1e3:.3f} s, baseline {base / 1e3:.3f} s, ratio {base / ours:.2f}x "
              f"({target}ours per round {[round(v) for v in times['ours'][key]]} ms)", flush=True)


def measure(exe: str, page: Path) -> dict[str, float]:
    """First contentful paint, load event end and data ready, in ms since navigation start, each in a fresh browser
    (cold page cache)."""
    from tests.viewer_cdp import Browser

    with Browser(exe) as browser:
        browser.open(page)
        fcp = browser.wait_for('(performance.getEntriesByName("first-contentful-paint")[0] || {}).startTime')
        load = browser.evaluate('performance.getEntriesByType("navigation")[0].loadEventEnd')
        ready = browser.wait_for("Number(document.documentElement.dataset.ready)")
    return {"paint": float(fcp), "load": float(load), "ready": float(ready)}
