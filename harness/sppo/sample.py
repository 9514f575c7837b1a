"""Step 1 of an iteration: the prompts it trains on, and K sampled responses per prompt from the current policy.

Sampling goes through any `ChatBackend`; each (prompt, sample) request carries its own seed, derived from the run
seed, the iteration, the prompt id and the sample index, so a rerun reproduces the same responses.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

from harness.backends.base import BackendOptions, ChatBackend, ChatRequest, SamplingParams
from harness.errors import UserError
from harness.io import iter_jsonl, read_jsonl, write_jsonl
from harness.settings import Settings
from harness.sppo.config import PromptsConfig, SamplingConfig

BUNDLED = "bundled"


@dataclass(frozen=True)
class Prompt:
    id: str
    text: str


@dataclass(frozen=True)
class SampledPrompt:
    prompt_id: str
    prompt: str
    responses: list[str]
    seeds: list[int]
    finish_reasons: list[str]


def prompts_for_iteration(cfg: PromptsConfig, iteration: int, settings: Settings) -> list[Prompt]:
    """The prompts iteration t (1-based) trains on: a hub split per iteration, or a disjoint part of a local file."""
    if cfg.source.startswith("hub:"):
        prompts = _hub_prompts(cfg, iteration, settings)
    else:
        prompts = read_prompt_file(bundled_prompts_path() if cfg.source == BUNDLED else Path(cfg.source))
        part = (iteration - 1) % cfg.parts
        prompts = [p for i, p in enumerate(prompts) if i % cfg.parts == part]
    return prompts[: cfg.per_iteration] if cfg.per_iteration else prompts


def bundled_prompts_path() -> Path:
    return Path(str(resources.files("harness.sppo").joinpath("prompts", "default_prompts.jsonl")))


def read_prompt_file(path: Path) -> list[Prompt]:
    """A JSONL file with a "prompt" field per line (and an optional "id"); empty or duplicate prompts are refused."""
    prompts: list[Prompt] = []
    seen: dict[str, int] = {}
    for lineno, row in iter_jsonl(path, "prompt file"):
        text = row.get("prompt") if isinstance(row, dict) else None
        if not isinstance(text, str) or not text.strip():
            raise UserError(f'{path}:{lineno}: empty or missing "prompt"; give every line a non-empty "prompt" text')
        key = " ".join(text.split())
        if key in seen:
            raise UserError(f"{path}:{lineno}: duplicate prompt (same as line {seen[key]}); remove one of them")
        seen[key] = lineno
        prompts.append(Prompt(id=str(row.get("id") or f"line-{lineno}"), text=text))
    if not prompts:
        raise UserError(f"{path}: no prompts; add JSON lines with a \"prompt\" field")
    return prompts


def sample_responses(
    prompts: Sequence[Prompt],
    backend: ChatBackend,
    cfg: SamplingConfig,
    iteration: int,
    progress: Callable[[int], None] | None = None,
) -> list[SampledPrompt]:
    """K responses per prompt, in batches of `cfg.batch_size` requests; a failed request stops the step."""
    requests = [
        (p, j, ChatRequest(messages=({"role": "user", "content": p.text},), params=_params(cfg, iteration, p, j)))
        for p in prompts
        for j in range(cfg.k)
    ]
    texts: dict[tuple[str, int], tuple[str, int, str]] = {}
    for start in range(0, len(requests), cfg.batch_size):
        chunk = requests[start : start + cfg.batch_size]
        for (p, j, req), done in zip(chunk, backend.generate([r for _, _, r in chunk]), strict=True):
            if done.error or done.finish_reason == "error":
                raise UserError(
                    f"sampling failed for prompt {p.id!r} (sample {j}): {done.error}; fix the backend and rerun to resume"
                )
            texts[(p.id, j)] = (done.text, req.params.seed, done.finish_reason)
        if progress:
            progress(len(chunk))
    return [
        SampledPrompt(
            prompt_id=p.id,
            prompt=p.text,
            responses=[texts[(p.id, j)][0] for j in range(cfg.k)],
            seeds=[texts[(p.id, j)][1] for j in range(cfg.k)],
            finish_reasons=[texts[(p.id, j)][2] for j in range(cfg.k)],
        )
        for p in prompts
    ]


def write_samples(path: Path, rows: Sequence[SampledPrompt]) -> Path:
    return write_jsonl(path, [asdict(r) for r in rows])


def read_samples(path: Path) -> list[SampledPrompt]:
    return [SampledPrompt(**row) for row in read_jsonl(path, "samples file")]


def write_prompts(path: Path, prompts: Sequence[Prompt]) -> Path:
    return write_jsonl(path, [{"id": p.id, "prompt": p.text} for p in prompts])


def open_policy_backend(checkpoint: str, cfg: SamplingConfig, settings: Settings, chat_template: str | None) -> ChatBackend:
    """The policy as a chat backend. No generation cache: the pipeline caches each step's file by content instead,
    and a retrained checkpoint at the same path must never be served stale samples."""
    options = BackendOptions(model=checkpoint, backend=cfg.backend, batch_size=cfg.batch_size,
                             chat_template=chat_template, use_cache=False)
    return load_chat_backend(options, settings)


def load_chat_backend(options: BackendOptions, settings: Settings) -> ChatBackend:
    from harness.backends import load_backend

    return load_backend(options, settings)


def _params(cfg: SamplingConfig, iteration: int, prompt: Prompt, j: int) -> SamplingParams:
    return SamplingParams(temperature=cfg.temperature, top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens,
                          seed=request_seed(cfg.seed, iteration, prompt.id, j))


def request_seed(base: int, iteration: int, prompt_id: str, j: int) -> int:
    digest = hashlib.sha256(f"{base}/{iteration}/{prompt_id}/{j}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def _hub_prompts(cfg: PromptsConfig, iteration: int, settings: Settings) -> list[Prompt]:
    dataset_id = cfg.source.removeprefix("hub:")
    split = cfg.split_template.format(iteration=iteration)
    if settings.offline:
        raise UserError(
            f"prompts come from the hub ({dataset_id}, split {split}) but HF_HUB_OFFLINE is set; "
            "go online once or point prompts.source at a local .jsonl file"
        )
    try:
        import datasets

        ds = datasets.load_dataset(dataset_id, split=split)
    except Exception as exc:  # network, missing split, auth: one line for the user
        raise UserError(f"cannot load prompts {dataset_id} split {split} ({exc.__class__.__name__}: {exc}); "
                        "check the id, the split name and your hub access") from None
    return [Prompt(id=f"{split}-{i}", text=str(row[cfg.column])) for i, row in enumerate(ds)]
