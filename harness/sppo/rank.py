"""Step 2: a preference model scores the K responses of each prompt. Three kinds behind one protocol.

Every kind returns one score per response such that `P(i > j) = sigma(s_i - s_j)` (probs.py):
- `LocalJudge` (the offline default, harness.judges.pairwise, shared with best-of-n decoding): a local LLM asked
  "A or B?" in both orders through a `ChoiceScorer`, reduced like PairRM and halved so that the two orders combine
  by the mean of their log-odds: `s_i = mean_j (L[i][j] - L[j][i]) / 2`.
- `PairRM`: llm-blender's PairRM (optional extra, hub weights), called as the official `scripts/rank.py` calls it.
- `RewardModel`: any sequence-classification reward model; pointwise rewards are Bradley-Terry scores as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from harness.backends.base import BackendOptions, ChoiceScorer
from harness.errors import UserError
from harness.io import read_jsonl, write_jsonl
from harness.judges.pairwise import JUDGE_PROMPT, Candidates, LocalJudge, PreferenceModel, Ranked
from harness.settings import Settings
from harness.sppo.config import RankerConfig
from harness.sppo.sample import load_chat_backend

__all__ = ["JUDGE_PROMPT", "LocalJudge", "PairRM", "PreferenceModel", "Ranked", "RewardModel", "build_ranker",
           "read_ranked", "write_ranked"]

def build_ranker(cfg: RankerConfig, base_model: str, settings: Settings, chat_template: str | None) -> PreferenceModel:
    if cfg.kind == "judge":
        model = cfg.model or base_model
        scorer = load_chat_backend(BackendOptions(model=model, backend="hf", batch_size=cfg.batch_size,
                                                  chat_template=chat_template if model == base_model else None,
                                                  use_cache=False), settings)
        if not isinstance(scorer, ChoiceScorer):
            raise UserError(f"the judge backend for {model} cannot score choices; use an hf model as ranker.model")
        return LocalJudge(scorer, batch_size=cfg.batch_size)
    if cfg.kind == "pairrm":
        return PairRM(cfg.model or "llm-blender/PairRM", batch_size=cfg.batch_size, template_model=base_model)
    if not cfg.model:
        raise UserError("ranker.kind = 'reward-model' needs ranker.model (a sequence-classification reward model)")
    return RewardModel(cfg.model, batch_size=cfg.batch_size)


class PairRM:
    """llm-blender's PairRM, imported only when used (`pip install llm-blender`; weights from the hub).

    As the official `scripts/rank.py`, PairRM sees each prompt rendered by the policy's chat template up to the
    assistant turn (`apply_template`), and `Blender.rank(..., return_scores=True)` gives the per-response scores."""

    def __init__(self, model: str, batch_size: int = 1, template_model: str | None = None) -> None:
        self.model = model
        self.batch_size = batch_size
        self.template_model = template_model

    @property
    def fingerprint(self) -> str:
        return f"pairrm:{self.model}"

    def rank(self, rows: Sequence[Candidates], progress: Callable[[int], None] | None = None) -> list[Ranked]:
        try:
            import llm_blender  # type: ignore[import-not-found]
        except ModuleNotFoundError:
            raise UserError("ranker.kind = 'pairrm' needs llm-blender (pip install llm-blender, or "
                            "git+https://github.com/yuchenlin/LLM-Blender.git) and the hub; or use ranker.kind = 'judge'"
                            ) from None
        prompts = [r.prompt for r in rows]
        if self.template_model:
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(self.template_model)
            prompts = [str(tok.apply_chat_template([{"role": "user", "content": p},
                                                    {"role": "assistant", "content": "None"}],
                                                   tokenize=False)).split("None")[0] for p in prompts]
        blender = llm_blender.Blender()
        blender.loadranker(self.model)
        scores = blender.rank(prompts, [list(r.responses) for r in rows], return_scores=True,
                              batch_size=self.batch_size)
        if progress:
            progress(len(rows))
        return [Ranked(r.prompt_id, [float(x) for x in s]) for r, s in zip(rows, scores, strict=True)]


class RewardModel:
    """A sequence-classification reward model: one scalar per (prompt, response), used as a Bradley-Terry score."""

    def __init__(self, model: str, batch_size: int = 8) -> None:
        self.model_id = model
        self.batch_size = batch_size
        self._loaded: tuple[Any, Any] | None = None

    @property
    def fingerprint(self) -> str:
        return f"reward-model:{self.model_id}"

    def rank(self, rows: Sequence[Candidates], progress: Callable[[int], None] | None = None) -> list[Ranked]:
        import torch

        tok, model = self._load()
        out = []
        for row in rows:
            texts = [tok.apply_chat_template([{"role": "user", "content": row.prompt},
                                              {"role": "assistant", "content": resp}], tokenize=False)
                     for resp in row.responses]
            scores: list[float] = []
            for start in range(0, len(texts), self.batch_size):
                enc = tok(texts[start : start + self.batch_size], return_tensors="pt", padding=True,
                          add_special_tokens=False)
                with torch.no_grad():
                    scores += [float(x) for x in model(**enc).logits[:, 0]]
            out.append(Ranked(row.prompt_id, scores))
            if progress:
                progress(1)
        return out

    def _load(self) -> tuple[Any, Any]:
        if self._loaded is None:
            from transformers import AutoModelForSequenceClassification, AutoTokenizer

            tok = AutoTokenizer.from_pretrained(self.model_id)
            if tok.pad_token is None:
                tok.pad_token = tok.eos_token
            model = AutoModelForSequenceClassification.from_pretrained(self.model_id).eval()
            self._loaded = (tok, model)
        return self._loaded


def write_ranked(path: Path, rows: Sequence[Ranked]) -> Path:
    return write_jsonl(path, [{"prompt_id": r.prompt_id, "scores": r.scores, "logits": r.logits} for r in rows])


def read_ranked(path: Path) -> list[Ranked]:
    # NaN/Infinity are valid in Python's JSON: a broken reward model's scores survive the file and are caught later.
    return [Ranked(**row) for row in read_jsonl(path, "scores file")]
