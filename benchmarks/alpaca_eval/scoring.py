"""AlpacaEval 2 scoring through alpaca_eval's own metrics: raw win rate / SE / counts (`get_winrate`) and the
length-controlled win rate (`get_length_controlled_winrate`).

The LC GLM needs `df_gamed.csv` (per-instruction difficulties + the gamed-baseline rows) from the hub dataset
`tatsu-lab/alpaca_eval`; alpaca_eval downloads it at run time. We never download it here and never substitute a
placeholder (a placeholder silently gives e.g. 37.76 instead of 19.30 for gpt-3.5-turbo-1106): when the file is not at
`df_gamed_path(settings)` (where `sppo-bench data pull` puts it), LC is reported unavailable with the reason.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import pandas as pd

from harness.settings import Settings

N_INSTRUCTIONS = 805
DF_GAMED_FILENAME = "df_gamed.csv"
DF_GAMED_COLUMNS = ("model", "index", "preference", "std_delta_len", "instruction_difficulty", "not_gamed_baseline")


def alpaca_eval_module(name: str = "alpaca_eval") -> Any:
    """Import alpaca_eval (or a submodule) without its pkg_resources deprecation warning on every CLI run."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
        return importlib.import_module(name)


def df_gamed_path(settings: Settings) -> Path:
    """Where the pulled `df_gamed.csv` (hub dataset tatsu-lab/alpaca_eval) lives: <data_dir>/alpaca_eval/df_gamed.csv."""
    return settings.data_dir / "alpaca_eval" / DF_GAMED_FILENAME


@dataclass(frozen=True)
class WinRate:
    win_rate: float
    standard_error: float
    n_wins: int
    n_wins_base: int
    n_draws: int
    n_total: int
    discrete_win_rate: float


@dataclass(frozen=True)
class LengthControlled:
    value: float | None
    stderr: float | None
    reason: str | None = None
    """Why LC is unavailable (value None), in one line."""


def win_rate(preferences: Sequence[float | None]) -> WinRate:
    """alpaca_eval's `get_winrate` on preferences in [1, 2] (1 = baseline wins). None/NaN (failed judgments) are
    dropped before, so they count neither as wins nor as losses; the caller reports them as coverage."""
    get_winrate = alpaca_eval_module("alpaca_eval.metrics").get_winrate

    valid = [float(p) for p in preferences if p is not None and not math.isnan(float(p))]
    if not valid:
        raise ValueError("no valid preference to score")
    out = get_winrate(pd.DataFrame({"preference": valid}))
    return WinRate(
        win_rate=float(out["win_rate"]),
        standard_error=float(out["standard_error"]),
        n_wins=int(out["n_wins"]),
        n_wins_base=int(out["n_wins_base"]),
        n_draws=int(out["n_draws"]),
        n_total=int(out["n_total"]),
        discrete_win_rate=float(out["discrete_win_rate"]),
    )


def avg_length(outputs: Sequence[str]) -> int:
    """Mean character length of the model outputs, truncated to int exactly as alpaca_eval's leaderboard does."""
    if not outputs:
        raise ValueError("no outputs")
    return int(pd.Series(list(outputs)).str.len().mean())


def length_controlled(annotations: pd.DataFrame, df_gamed: Path | None) -> LengthControlled:
    """LC win rate through alpaca_eval's own `get_length_controlled_winrate` (GLM `length_controlled_v1`).

    `annotations`: columns instruction, output_1 (baseline), generator_1, output_2 (model), generator_2, annotator,
    preference; its index must be the position of each instruction in the canonical 805 (the GLM looks the instruction
    difficulty up by that position). Rows with a missing preference are dropped. The function runs with
    `hf_hub_download` answering the local `df_gamed` file and `save_weights_dir=None`, so nothing is downloaded and
    nothing is written into site-packages.
    """
    reason = df_gamed_problem(df_gamed, annotations.index)
    if reason:
        return LengthControlled(None, None, reason)
    assert df_gamed is not None
    get_length_controlled_winrate = alpaca_eval_module("alpaca_eval.metrics").get_length_controlled_winrate

    frame = annotations[annotations["preference"].notna()].copy()
    frame["preference"] = frame["preference"].astype(float)
    with _local_hub_file(df_gamed):
        out = get_length_controlled_winrate(frame, save_weights_dir=None, is_add_glm_preference_inplace=False)
    value, stderr = float(out["length_controlled_winrate"]), out.get("lc_standard_error")
    if math.isnan(value):
        return LengthControlled(None, None, "alpaca_eval's GLM returned NaN (too few valid annotations to fit)")
    return LengthControlled(value, None if stderr is None or math.isnan(float(stderr)) else float(stderr))


def df_gamed_problem(path: Path | None, positions: pd.Index) -> str | None:
    """None when `path` is a usable df_gamed.csv for these instruction positions, else the reason, in one line."""
    if path is None or not Path(path).is_file():
        where = f" at {path}" if path else ""
        return (f"LC win rate unavailable: alpaca_eval's GLM needs {DF_GAMED_FILENAME} from the hub dataset "
                f"tatsu-lab/alpaca_eval, not found{where}; run `sppo-bench data pull --suites alpaca_eval` where the hub "
                "is reachable (raw win rate is unaffected)")
    try:
        header = pd.read_csv(path, nrows=0).columns
        missing = [c for c in DF_GAMED_COLUMNS if c not in header]
        if missing:
            return f"LC win rate unavailable: {path} lacks columns {missing}; re-pull it with `sppo-bench data pull`"
        idx = pd.read_csv(path, usecols=["index"])["index"]
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        return f"LC win rate unavailable: cannot read {path} ({exc}); re-pull it with `sppo-bench data pull`"
    known = set(idx.unique().tolist())
    outside = [int(p) for p in positions if int(p) not in known]
    if outside:
        return (f"LC win rate unavailable: {len(outside)} instruction positions (e.g. {outside[:3]}) have no difficulty "
                f"in {path}")
    return None


@contextlib.contextmanager
def _local_hub_file(path: Path) -> Iterator[None]:
    """alpaca_eval calls `hf_hub_download(repo_id=..., filename="df_gamed.csv", ...)`; answer it from disk.
    The patch is scoped to this call (not thread-safe with a concurrent LC computation in the same process)."""

    def local(*args: Any, filename: str | None = None, **kwargs: Any) -> str:
        if filename != DF_GAMED_FILENAME:
            raise FileNotFoundError(f"offline: alpaca_eval asked for {filename!r}, only {DF_GAMED_FILENAME} is local")
        return str(path)

    with mock.patch("alpaca_eval.metrics.glm_winrate.hf_hub_download", local):
        yield

