"""Render the static site: `index.html` (overview), `suites/<suite>.html` (item browsers, first page rendered here,
the rest from `suites/<suite>.data.js` by a small script), `plots/`, `assets/`. Everything is rendered in memory
first; then each file is written atomically, and files an earlier build wrote but this one does not are removed.

The site opens from disk: no server, no network (a Content-Security-Policy forbids any fetch beyond the site's own
files, and inline scripts), no CDN.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2

from harness import __version__, cards
from harness.catalog import get_suite
from harness.errors import UserError
from harness.io import atomic_write_bytes, atomic_write_text
from harness.records import ResultRecord
from harness.viewer import items as items_mod
from harness.viewer import overview
from harness.viewer.sources import Loaded, load_sources

MANIFEST = ".sppo-viewer.json"
ASSETS = ("viewer.css", "viewer.js")
DATA_GLOBAL = "SPPO_VIEWER_DATA"
NOT_FOR_PUBLICATION = {
    "gpqa": "GPQA's authors ask that its questions never appear in plain text online (they are kept out of training "
            "data that way): keep this page and its data file local; the card, plots and Hub results files hold no "
            "GPQA question.",
}
"""Suites whose items a site shows only locally: the page says so and asks crawlers not to index it."""


def build_site(sources: Sequence[Path], out_dir: Path, *, page_size: int = items_mod.PAGE_SIZE) -> Path:
    """Write the viewer for run directories / train-and-eval folders `sources` into `out_dir`; returns index.html.
    `page_size`: items per page of an item browser (the first page is in the HTML, the rest come from the data)."""
    out_dir = Path(out_dir)
    _check_out_dir(out_dir)
    files = render_site(load_sources([Path(s) for s in sources]), out_dir, page_size)
    write_site(out_dir, files)
    return out_dir / "index.html"


@dataclass
class Checkpoint:
    label: str
    slug: str
    iteration: int | None
    summary: str
    """The record's headline metric (or its first metric when it lacks the headline) with n and CI."""
    href: str
    """The record's section on the overview."""


def render_site(loaded: Loaded, out_dir: Path, page_size: int = items_mod.PAGE_SIZE) -> dict[str, bytes]:
    """Relative path -> content of every file of the site."""
    md = items_mod.markdown()
    env = _environment()
    records = cards.with_averages(loaded.records)
    files: dict[str, bytes] = {f"assets/{name}": _asset(name) for name in ASSETS}
    suite_links = [{"name": s, "title": get_suite(s).title, "restricted": s in NOT_FOR_PUBLICATION} for s in loaded.items]

    def link(r: ResultRecord) -> str:
        if r.key in loaded.item_files:
            return f"suites/{r.suite}.html#ckpt={overview.checkpoint_slug(r.model, r.variant)}"
        return f"#{overview.record_anchor(r)}"

    for suite in loaded.items:
        page, data = _suite_page(env, md, suite, loaded, records, suite_links, page_size)
        files[f"suites/{suite}.html"] = page.encode()
        files[f"suites/{suite}.data.js"] = data.encode()
    from harness.plots import headline_plots

    plots = headline_plots(records)
    files.update({f"plots/{suite}.png": png for suite, png in plots.items()})
    item_counts = {(m, v, s): len(rows) for s, cols in loaded.items.items() for (m, v), rows in cols.items()}
    index = env.get_template("index.html.j2").render(
        root="", suite_links=suite_links, version=__version__, sources=loaded.sources,
        tables=overview.card_tables(records, md, link),
        plots=[(cards.headline_caption(s), f"plots/{s}.png") for s in plots],
        training=loaded.training, judges=overview.judges(loaded.records, link),
        records=overview.record_views(records, item_counts, link),
        file_link=lambda p: _file_link(Path(p), out_dir),
    )
    files["index.html"] = index.encode()
    return files


def write_site(out_dir: Path, files: dict[str, bytes]) -> None:
    previous = _manifest(out_dir)
    for rel, data in files.items():
        atomic_write_bytes(out_dir / rel, data)
    for rel in sorted(set(previous) - set(files)):
        stale = out_dir / rel
        if stale.is_file():
            stale.unlink()
    atomic_write_text(out_dir / MANIFEST, json.dumps({"generator": f"sppo-bench {__version__}",
                                                      "files": sorted(files)}, indent=1) + "\n")


def _suite_page(env: jinja2.Environment, md: Any, suite: str, loaded: Loaded, records: list[ResultRecord],
                suite_links: list[dict[str, Any]], page_size: int) -> tuple[str, str]:
    spec = get_suite(suite)
    by_key = {r.key: r for r in records}
    columns = [k for k in cards.row_order([r for r in records if r.suite == suite]) if k in loaded.items[suite]]
    checkpoints = []
    for model, variant in columns:
        record = by_key[(model, variant, suite)]
        checkpoints.append(Checkpoint(label=record.label, slug=overview.checkpoint_slug(model, variant),
                                      iteration=record.iteration, summary=overview.headline_text(record),
                                      href=f"../index.html#{overview.record_anchor(record)}"))
    items = items_mod.build_items(spec, [loaded.items[suite][k] for k in columns], md)
    data_file = f"{suite}.data.js"
    payload = {"suite": suite, "pageSize": page_size, "checkpoints": [c.slug for c in checkpoints],
               "notForPublication": suite in NOT_FOR_PUBLICATION, "items": items_mod.payload(items)}
    page = env.get_template("suite.html.j2").render(
        root="../", suite_links=suite_links, version=__version__, spec=spec, checkpoints=checkpoints,
        items=items[:page_size], total=len(items), changed=sum(it.changed for it in items),
        subtasks=sorted({it.subtask for it in items if it.subtask}), page_size=page_size,
        data_file=data_file, restricted=NOT_FOR_PUBLICATION.get(suite),
    )
    # JSON inside a JS string literal: JSON.parse of one string is faster than a literal of the same size.
    text = json.dumps(payload, separators=(",", ":"))
    return page, f"window.{DATA_GLOBAL} = JSON.parse({json.dumps(text)});\n"


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("harness.viewer", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _asset(name: str) -> bytes:
    return resources.files("harness.viewer").joinpath("assets", name).read_bytes()


def _file_link(target: Path, out_dir: Path) -> str:
    """A relative link from the site to a file of the run (the site usually sits inside the run folder)."""
    return quote(os.path.relpath(target.resolve(), out_dir.resolve()).replace(os.sep, "/"))


def _check_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir} is a file; give a folder for the site")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / MANIFEST).is_file():
        raise UserError(f"--out {out_dir} is a non-empty folder that holds no viewer site; give a new or empty folder")


def _manifest(out_dir: Path) -> list[str]:
    try:
        data = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return []
    files = data.get("files") if isinstance(data, dict) else None
    return [f for f in files if isinstance(f, str) and ".." not in f] if isinstance(files, list) else []
