"""The narrow backend protocol every suite, judge and the SPPO sampler talks to.

A backend takes a batch of chat requests and returns completions with token counts. Scoring candidate next tokens
(what local judges need) is a separate capability, `ChoiceScorer`, that not every backend has.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": str}


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int = 0
    """Per-request seed: the same request with the same seed gives the same completion."""
    top_logprobs: int | None = None
    """Ask for the top-k log-probabilities of each generated token (judges with logprob parsers need them)."""


@dataclass(frozen=True)
class ChatRequest:
    messages: tuple[Message, ...]
    params: SamplingParams = SamplingParams()


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str = "stop"
    """"stop", "length" or "error"."""
    top_logprobs: list[dict[str, float]] | None = None
    """One {token: logprob} dict per generated token, when asked for."""
    cached: bool = False
    error: str | None = None
    """Set (with finish_reason "error") when the request failed for good; never a fake text."""


@dataclass(frozen=True)
class ChoiceRequest:
    """Score candidate continuations of an assistant turn: P(next token = choice | messages, assistant prefix).

    Each choice is tokenized on its own, so write it as the model would emit it after the prefix (" A" vs "A").
    """

    messages: tuple[Message, ...]
    choices: tuple[str, ...]
    assistant_prefix: str = ""


@runtime_checkable
class ChatBackend(Protocol):
    name: str

    @property
    def fingerprint(self) -> str:
        """Stable id of the model + backend settings that change outputs; part of every cache key."""
        ...

    def generate(self, requests: Sequence[ChatRequest]) -> list[Completion]: ...


@runtime_checkable
class ChoiceScorer(Protocol):
    @property
    def fingerprint(self) -> str: ...

    def choice_logprobs(self, requests: Sequence[ChoiceRequest]) -> list[dict[str, float]]:
        """Log-probability of each choice as the continuation, renormalised over the choices.

        When the choices' first tokens are distinct (judge grades "1".."9", "A"/"B"), this is the next-token
        log-probability of each choice's first token; when two choices share a first token ("1" and "10"), the whole
        token sequence of each choice is scored so they stay distinguishable.
        """
        ...


@dataclass
class BackendOptions:
    """What the CLI gathers for any backend; each backend reads the fields it needs."""

    model: str | None = None
    backend: str = "hf"
    device: str = "auto"
    dtype: str = "auto"
    batch_size: int = 8
    chat_template: str | None = None
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    max_concurrency: int = 8
    use_cache: bool = True
    extra: dict[str, str] = field(default_factory=dict)
    """Backend-specific knobs, e.g. openai "timeout", "max_retries"; vllm "tensor_parallel_size"."""
