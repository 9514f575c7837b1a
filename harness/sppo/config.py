"""SPPO run configuration: TOML profiles validated strictly (a typo fails at load, naming the key).

`load_config(path)` reads a TOML file; `load_profile(name)` reads one of the bundled profiles in `profiles/`.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError, model_validator

from harness.errors import UserError
from harness.io import read_text

PROFILES = ("default", "paper")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelConfig(_Strict):
    base: str | None = None
    """Local folder or hub id of the base chat model; None = the embedded SmolLM2-135M-Instruct."""
    chat_template: str | None = None
    """A Jinja chat template file for a base model whose tokenizer has none."""
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"


class PromptsConfig(_Strict):
    source: str = "bundled"
    """"bundled" (prompts/default_prompts.jsonl), a local .jsonl file with a "prompt" field, or "hub:ORG/NAME"."""
    split_template: str = "train_iteration_{iteration}"
    """Hub sources: the split each iteration reads (Snorkel's UltraFeedback thirds)."""
    column: str = "prompt"
    parts: int = Field(default=3, ge=1)
    """Local sources: split the prompts into this many disjoint parts, one per iteration (cycling)."""
    per_iteration: int | None = Field(default=None, ge=1)
    """Use at most this many prompts per iteration (smoke runs)."""


class SamplingConfig(_Strict):
    k: int = Field(default=5, ge=2)
    """Responses per prompt (the paper's K)."""
    temperature: float = Field(default=0.7, ge=0)
    top_p: float = Field(default=0.9, gt=0, le=1)
    max_new_tokens: int = Field(default=2048, ge=1)
    backend: str = "hf"
    """Any `harness.backends` name: hf, vllm, openai."""
    batch_size: int = Field(default=8, ge=1)
    seed: int = 0


class RankerConfig(_Strict):
    kind: Literal["judge", "pairrm", "reward-model"] = "judge"
    """judge: a local LLM asked "A or B?" in both orders; pairrm: llm-blender's PairRM; reward-model: any
    sequence-classification reward model (pointwise scores, Bradley-Terry probabilities)."""
    model: str | None = None
    """The ranker's model (folder or hub id); judge default: the base model; pairrm default: llm-blender/PairRM."""
    batch_size: int = Field(default=8, ge=1)


class TrainConfig(_Strict):
    eta: float = Field(default=1000.0, gt=0)
    """SPPO's eta; TRL's beta = 1 / eta."""
    learning_rate: float = Field(default=5e-7, gt=0)
    optimizer: Literal["rmsprop"] = "rmsprop"
    lr_scheduler: Literal["linear"] = "linear"
    warmup_ratio: float = Field(default=0.1, ge=0, lt=1)
    per_device_batch_size: int = Field(default=8, ge=1)
    global_batch_size: int = Field(default=64, ge=1)
    """Per-device batch x devices x gradient accumulation."""
    epochs: float = Field(default=1.0, gt=0)
    max_length: int = Field(default=1024, ge=8)
    max_prompt_length: int = Field(default=512, ge=1)
    seed: int = 42
    device: str = "auto"
    bf16: bool = False
    gradient_checkpointing: bool = True
    """Trade compute for memory (TRL's default; what a 7B model needs); off is faster for small models."""
    length_grouped: bool = False
    """Batch pairs of similar length (transformers' LengthGroupedSampler on prompt + longer answer): less padding in
    each forward pass, but another data order than the seeded random one, so a profile opts in."""

    @model_validator(mode="after")
    def _batch_divides(self) -> TrainConfig:
        if self.global_batch_size % self.per_device_batch_size:
            raise ValueError(
                f"global_batch_size {self.global_batch_size} is not a multiple of per_device_batch_size "
                f"{self.per_device_batch_size}"
            )
        return self

    @property
    def beta(self) -> float:
        return 1.0 / self.eta


class EvalConfig(_Strict):
    suites: list[str] = Field(default_factory=lambda: ["ifeval", "alpaca_eval", "mt_bench"])
    limit: int | None = Field(default=None, ge=1)
    """Evaluate at most N items per task (smoke runs; records are marked partial)."""
    limits: dict[str, PositiveInt] = Field(default_factory=dict)
    """Per-suite limits that replace `limit` for the suites they name, e.g. {ifeval = 100, mt_bench = 10}."""
    max_new_tokens: int | None = Field(default=None, ge=1)
    """Cap every generation of every suite (smoke runs; lm-eval tasks and judged suites); None = each suite's own limit."""
    judge: str | None = None
    """Judge spec for the judged suites; None = the official judge when its API key is set, else the local one."""
    backend: str = "hf"
    batch_size: int = Field(default=8, ge=1)
    reference: str | None = None
    """A reference JSON (results/reference/NAME.json) to run the regression check against."""
    seed: int = 0


class ObjectiveConfig(_Strict):
    """The SPPO objective on held-out prompts (objective.py): the training preference model's win rate of each
    iteration's greedy answers against the base's."""

    prompts: str = "bundled"
    """"bundled" (prompts/heldout_prompts.jsonl, disjoint from the training prompts and every eval set) or a local
    .jsonl file with a "prompt" field."""
    n: int | None = Field(default=None, ge=1)
    """Use the first n held-out prompts (file order); None = all."""
    max_new_tokens: int = Field(default=64, ge=1)
    """Length cap of every greedy answer."""
    batch_size: int = Field(default=16, ge=1)
    bootstrap: int = Field(default=2000, ge=100)
    """Bootstrap resamples for the 95% interval of the win rate."""
    seed: int = 0


class SPPOConfig(_Strict):
    name: str = "SPPO"
    """Card row prefix: "<name> Iter 1"."""
    note: str | None = None
    """A line every record (and so every card) carries, e.g. that this is a smoke profile."""
    model: ModelConfig = ModelConfig()
    prompts: PromptsConfig = PromptsConfig()
    sampling: SamplingConfig = SamplingConfig()
    ranker: RankerConfig = RankerConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    objective: ObjectiveConfig = ObjectiveConfig()

    def digest(self, *sections: str) -> str:
        """A stable hash of the named sections (all when none), for step cache keys."""
        data = self.model_dump(mode="json")
        picked = {s: data[s] for s in sections} if sections else data
        return hashlib.sha256(json.dumps(picked, sort_keys=True).encode()).hexdigest()[:16]


def load_config(path: str | Path) -> SPPOConfig:
    path = Path(path)
    return parse_config(read_text(path, "config file"), str(path))


def load_profile(name: str) -> SPPOConfig:
    if name not in PROFILES:
        raise UserError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)} or pass --config FILE")
    text = resources.files("harness.sppo").joinpath("profiles", f"{name}.toml").read_text(encoding="utf-8")
    return parse_config(text, f"profile {name}")


def parse_config(text: str, where: str) -> SPPOConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{where}: not valid TOML ({exc}); fix the syntax") from None
    try:
        return SPPOConfig.model_validate(data)
    except ValidationError as exc:
        raise UserError(f"{where}: {_describe(exc)}") from None


def _describe(exc: ValidationError) -> str:
    err = exc.errors()[0]
    key = ".".join(str(p) for p in err["loc"]) or "top level"
    if err["type"] == "extra_forbidden":
        section = _section_model(err["loc"][:-1])
        known = ", ".join(section.model_fields) if section else ""
        return f"unknown key {key!r} (known keys there: {known}); fix or remove it"
    return f"{key}: {err['msg']}; fix that value"


def _section_model(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] = SPPOConfig
    for part in loc:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model
