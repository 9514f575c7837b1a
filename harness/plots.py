"""One PNG per suite: its headline metric across SPPO iterations, one line per decoding variant.

Uses matplotlib's object API with the Agg canvas (no pyplot, no global backend switch), so it is safe in any process.
"""

from __future__ import annotations

import io
from collections.abc import Iterable

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from harness.cards import columns, headline_caption
from harness.catalog import get_suite
from harness.records import ResultRecord
from harness.specs import CARD_TABLES


def headline_plots(records: Iterable[ResultRecord]) -> dict[str, bytes]:
    """suite name -> PNG bytes, in card-table order, for every suite scored at two or more iterations."""
    records = [r for r in records if r.iteration is not None and r.status != "failed"]
    out: dict[str, bytes] = {}
    for suite in dict.fromkeys(c.suite for kind in CARD_TABLES for c in columns(kind)):
        headline = get_suite(suite).headline
        lines: dict[str, dict[int, float]] = {}
        for r in records:
            metric = r.metrics.get(headline) if r.suite == suite else None
            if metric is not None and r.iteration is not None:
                lines.setdefault(r.variant or "default decoding", {}).setdefault(r.iteration, metric.value)
        if len({i for points in lines.values() for i in points}) >= 2:
            out[suite] = _plot(suite, lines)
    return out



def _plot(suite: str, lines: dict[str, dict[int, float]]) -> bytes:
    spec = get_suite(suite)
    metric = spec.headline_metric
    fig = Figure(figsize=(5.0, 3.2), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    iterations: set[int] = set()
    for variant, points in lines.items():
        xs = sorted(points)
        iterations.update(xs)
        ax.plot(xs, [points[x] for x in xs], marker="o", label=variant)
    ax.set_xticks(sorted(iterations))
    ax.set_xlabel("SPPO iteration")
    ax.set_ylabel(metric.label)
    ax.set_title(headline_caption(suite))
    ax.grid(alpha=0.3)
    if len(lines) > 1:
        ax.legend(fontsize="small")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()
