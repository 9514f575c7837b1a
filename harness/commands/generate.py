"""`sppo-bench generate [--model M] --prompts FILE.jsonl --out FILE.jsonl`: completions only, no scoring.

Each input line is `{"prompt": "..."}` or `{"messages": [{"role": ..., "content": ...}, ...]}` (other keys are kept);
each output line is the input plus "completion", "completion_tokens" and "finish_reason" (and "error" when the
backend failed on it: such a line has `"completion": null` and the command exits 1). Written atomically at the end; an
interrupted run loses nothing that was generated, since the generation cache answers the rerun.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.backends import load_backend
from harness.backends.base import ChatRequest, Message, SamplingParams
from harness.commands.options import add_backend_options, backend_options, label_arg
from harness.errors import UserError
from harness.io import atomic_write_text, iter_jsonl
from harness.reporting import refuse_inside_sources
from harness.settings import Settings

ROLES = ("system", "user", "assistant")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="generate completions for a JSONL prompt file")
    p.add_argument("--model", help="checkpoint folder or hub id (default: the embedded SmolLM2-135M-Instruct); "
                                   "the model id for --backend openai")
    p.add_argument("--prompts", required=True, help='JSONL, one {"prompt": ...} or {"messages": [...]} per line')
    p.add_argument("--out", required=True, help="JSONL to write: each input line plus its completion")
    p.add_argument("--max-new-tokens", type=int, default=512)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--stop", action="append", default=[], help="stop string (repeatable)")
    p.add_argument("--seed", type=int, default=0, help="per-sample seed (a line's own \"seed\" key overrides it)")
    add_backend_options(p)
    p.set_defaults(func=cmd_generate)


def cmd_generate(args: argparse.Namespace, settings: Settings) -> int:
    if args.max_new_tokens < 1:
        raise UserError(f"--max-new-tokens {args.max_new_tokens}: must be at least 1")
    if not (math.isfinite(args.temperature) and args.temperature >= 0) or not (math.isfinite(args.top_p) and 0 < args.top_p <= 1):
        raise UserError(f"--temperature {args.temperature} / --top-p {args.top_p}: need a finite temperature >= 0 and "
                        "0 < top-p <= 1")
    path = Path(args.prompts)
    if args.model is not None:
        label_arg(args.model, "--model")
    refuse_inside_sources([Path(args.out)], [path])  # --out over --prompts would replace the prompts
    rows = read_prompts(path)
    if not rows:
        raise UserError(f'{path}: no prompts in it; write one {{"prompt": ...}} or {{"messages": [...]}} per line')
    base = SamplingParams(temperature=args.temperature, top_p=args.top_p, max_new_tokens=args.max_new_tokens,
                          stop=tuple(args.stop), seed=args.seed)
    requests = [ChatRequest(messages=messages, params=base if seed is None else replace(base, seed=seed))
                for _, messages, seed in rows]
    options = backend_options(args, args.model)
    backend = load_backend(options, settings)
    completions = backend.generate(requests)
    lines, failed = [], 0
    for (row, _, _), c in zip(rows, completions, strict=True):
        out = {**row, "completion": None if c.error else c.text, "completion_tokens": c.completion_tokens,
               "finish_reason": c.finish_reason}
        if c.error:
            out["error"] = c.error
            failed += 1
        lines.append(json.dumps(out, ensure_ascii=False))
    atomic_write_text(Path(args.out), "".join(line + "\n" for line in lines))
    cached = sum(c.cached for c in completions)
    print(f"{len(lines)} completions -> {args.out} ({cached} from cache, {failed} failed)")
    if failed:
        print(f"sppo-bench: {failed} prompts failed; their lines carry \"error\"; rerun to retry them", file=sys.stderr)
        return 1
    return 0


def read_prompts(path: Path) -> list[tuple[dict[str, Any], tuple[Message, ...], int | None]]:
    """Parse the prompt file; any bad line is a UserError naming its line number."""
    rows = []
    for n, row in iter_jsonl(path, "prompts file"):
        messages = _messages(row, f"{path}:{n}")
        seed = row.get("seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise UserError(f'{path}:{n}: "seed" must be an integer, got {json.dumps(seed)[:40]}')
        rows.append((row, messages, seed))
    return rows


def _messages(row: Any, where: str) -> tuple[Message, ...]:
    if not isinstance(row, dict):
        raise UserError(f'{where}: expected a JSON object with "prompt" or "messages", got {type(row).__name__}')
    if "messages" in row:
        messages = row["messages"]
        if not isinstance(messages, list) or not messages:
            raise UserError(f'{where}: "messages" must be a non-empty list of {{"role", "content"}} objects')
        for m in messages:
            if (not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str)):
                raise UserError(f'{where}: bad message {json.dumps(m)[:80]}; each needs "role" ({"/".join(ROLES)}) '
                                'and a string "content"')
        return tuple({"role": m["role"], "content": m["content"]} for m in messages)
    if isinstance(row.get("prompt"), str):
        return ({"role": "user", "content": row["prompt"]},)
    raise UserError(f'{where}: needs a string "prompt" or a "messages" list; keys found: {", ".join(row) or "none"}')
