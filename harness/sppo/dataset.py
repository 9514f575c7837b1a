"""Step 3: the preference dataset, as parquet in TRL's conversational format plus the official SPPO columns.

Columns: `prompt` ([{"role": "user", ...}]), `chosen` / `rejected` ([{"role": "assistant", ...}]) — TRL's explicit-
prompt preference format — and `chosen_probs`, `chosen_probs_win`, `chosen_probs_lose` named as in uclaml/SPPO's
`compute_prob.py`; `prompt_id` and `rm_scores` (the ranker's scores) for provenance.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from harness.errors import UserError
from harness.io import atomic_write_bytes
from harness.sppo.probs import check_finite, choose_pair
from harness.sppo.rank import Ranked
from harness.sppo.sample import SampledPrompt

COLUMNS = ("prompt_id", "prompt", "chosen", "rejected", "chosen_probs", "chosen_probs_win", "chosen_probs_lose",
           "rm_scores")


def build_preference_frame(samples: Sequence[SampledPrompt], ranked: Sequence[Ranked], where: str = "") -> pd.DataFrame:
    by_id = {r.prompt_id: r for r in ranked}
    rows = []
    for s in samples:
        r = by_id.get(s.prompt_id)
        if r is None or len(r.scores) != len(s.responses):
            raise UserError(f"{where}scores do not match the samples for prompt {s.prompt_id!r}; delete the scores "
                            "file and rerun to rank again")
        check_finite(r.scores, where=f"{where}prompt {s.prompt_id!r}: ")  # raises NonFiniteScores
        pair = choose_pair(r.scores)
        rows.append({
            "prompt_id": s.prompt_id,
            "prompt": [{"role": "user", "content": s.prompt}],
            "chosen": [{"role": "assistant", "content": s.responses[pair.chosen]}],
            "rejected": [{"role": "assistant", "content": s.responses[pair.rejected]}],
            "chosen_probs": pair.chosen_probs,
            "chosen_probs_win": pair.chosen_probs_win,
            "chosen_probs_lose": pair.chosen_probs_lose,
            "rm_scores": list(r.scores),
        })
    return pd.DataFrame(rows, columns=list(COLUMNS))


def write_parquet(path: Path, frame: pd.DataFrame) -> Path:
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return atomic_write_bytes(path, buf.getvalue())


def read_parquet(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path)
