"""Write a model card and its plots from records: the one function `report` and `train-and-eval` both call.

Everything is rendered in memory first and the output paths are checked before anything is written (atomically), so
bad input leaves nothing behind.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness import cards
from harness.errors import UserError
from harness.io import NAME_MAX, atomic_write_bytes, atomic_write_text
from harness.records import ResultRecord
from harness.settings import Settings
from harness.store import RunDir


@dataclass
class Report:
    card: Path
    plots: list[Path] = field(default_factory=list)
    records: int = 0
    eval_results: list[Path] = field(default_factory=list)
    """Hub `.eval_results/<suite>.yaml` files written beside the card (harness.evalresults)."""
    hub_model: str | None = None


def write_report(records: Sequence[ResultRecord], out: Path, *, source: str, subject: str | None = None,
                 plots: bool = True, preface: Sequence[str] = (), eval_results: bool | str | None = True,
                 run: RunDir | None = None, settings: Settings | None = None) -> Report:
    """The card for `records` at `out` (plots in `<out stem>-plots/` beside it, and the card model's Hub
    `.eval_results/` files unless `eval_results` is off; "all": also partial and local-judge records, with their caveat
    in the notes). `subject`: the model the card is about (default: the latest
    iteration); `preface`: lines quoted under the title (a profile's note, suites not run); `run`: the run directory
    the records come from, whose items.jsonl give the numbers' intervals and the section comparing iterations."""
    from harness import evalresults

    records = with_stored_calibrations(list(records), settings) if settings else list(records)
    chosen = cards.choose_subject(records, subject)
    plot_dir = plots_dir(out)
    pngs: dict[str, bytes] = {}
    if plots:
        from harness.plots import headline_plots

        pngs = headline_plots(records)
    links = {suite: f"{plot_dir.name}/{suite}.png" for suite in pngs}
    text = with_preface(cards.render_card(records, subject=chosen, source=source, plots=links, run=run), preface)
    hub_model = evalresults.pick_model(records, chosen) if eval_results else None
    hub_files = evalresults.render_files(records, hub_model, everything=eval_results == "all") if hub_model else {}
    check_output(out)
    written = [atomic_write_bytes(plot_dir / f"{suite}.png", png) for suite, png in pngs.items()]
    hub = [atomic_write_text(out.parent / evalresults.FOLDER / name, text) for name, text in hub_files.items()]
    return Report(card=atomic_write_text(out, text), plots=written, records=len(records), eval_results=hub,
                  hub_model=hub_model if hub else None)


def plots_dir(out: Path) -> Path:
    """`<card stem>-plots/` beside the card; a stem too long for that folder name (a legal 253-byte card name) is cut
    and made distinct by a short hash."""
    import hashlib

    name = f"{out.stem}-plots"
    if len(os.fsencode(name)) > NAME_MAX:
        digest = hashlib.sha256(os.fsencode(out.stem)).hexdigest()[:8]
        stem = out.stem
        while len(os.fsencode(f"{stem}-{digest}-plots")) > NAME_MAX:
            stem = stem[:-1]
        name = f"{stem}-{digest}-plots"
    return out.parent / name


def with_preface(card: str, lines: Sequence[str]) -> str:
    """Quote `lines` under the card's title."""
    if not lines:
        return card
    block = "\n>\n".join(f"> {line}" for line in lines) + "\n"
    head, sep, rest = card.partition("\n# ")
    if not sep:
        return block + "\n" + card
    title, nl, body = rest.partition("\n")
    return f"{head}{sep}{title}{nl}\n{block}{body}"


def check_output(path: Path) -> None:
    """Refuse before writing anything: an output path under a file, or a folder where the file should go."""
    if path.is_dir():
        raise UserError(f"{path} is a folder; give a file path to write to")
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise UserError(f"{path}: {parent} is a file, not a folder; choose an output path outside it")


def refuse_inside_sources(outputs: Sequence[Path], sources: Sequence[Path]) -> None:
    """Refuse an output path that resolves inside a run folder being read, or onto a file being read (symbolic links
    resolved): `report --out RUN/records/m/ifeval.json` would replace the very record it reports on."""
    from harness.results import run_dir

    protected: list[tuple[Path, bool]] = []
    for source in sources:
        run = run_dir(source)
        if run is not None:
            protected.append((Path(os.path.realpath(run.root)), True))
        elif os.path.lexists(source):
            protected.append((Path(os.path.realpath(source)), False))
    for out in outputs:
        real = Path(os.path.realpath(out))
        for path, folder in protected:
            if real == path or (folder and path in real.parents):
                what = f"the run folder {path}" if folder else f"{path}, a file"
                raise UserError(f"{out}: resolves inside {what} this command reads; write the output elsewhere")


def with_stored_calibrations(records: list[ResultRecord], settings: Settings) -> list[ResultRecord]:
    """Records whose judge was calibrated after they were made (`sppo-bench judge calibrate`) get that calibration, so
    the card cites it; a judge never calibrated stays without one (the card then says so)."""
    from harness.engines.judge_backend import stored_calibration

    out = []
    for r in records:
        judge = r.judge
        if judge is not None and judge.calibration is None and judge.fingerprint:
            found = stored_calibration(settings, judge.id, judge.prompt_hash, judge.fingerprint)
            if found is not None:
                r = r.model_copy(update={"judge": judge.model_copy(update={"calibration": found})})
        out.append(r)
    return out
