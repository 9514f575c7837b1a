"""Command-line option groups shared by several commands, and their parsing into the typed objects the Python API
takes (`BackendOptions`, `RunOptions`, `ScaleOut`). The environment is read here, once (the judge's API key decides
whether the default judge is the official one)."""

from __future__ import annotations

import argparse
import math

from harness.backends.base import BackendOptions
from harness.engines.context import RunOptions
from harness.errors import UserError
from harness.evaluation import ScaleOut
from harness.executors import EXECUTORS


def add_backend_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model backend")
    g.add_argument("--backend", default="hf", help="hf (default), openai, vllm or fake")
    g.add_argument("--device", default="auto", help="cpu, cuda, or auto")
    g.add_argument("--dtype", default="auto", help="auto, float32, bfloat16, float16")
    g.add_argument("--batch-size", type=int, default=8)
    g.add_argument("--chat-template", help="a Jinja chat template file for checkpoints that lack one")
    g.add_argument("--base-url", help="OpenAI-compatible endpoint (openai backend)")
    g.add_argument("--api-key-env", default="OPENAI_API_KEY", help="name of the env var holding the API key")
    g.add_argument("--max-concurrency", type=int, default=8, help="requests in flight (openai backend)")
    g.add_argument("--no-cache", action="store_true", help="bypass the generation cache")
    g.add_argument("--backend-opt", action="append", default=[], metavar="KEY=VALUE",
                   help="backend-specific option, e.g. timeout=60, max_retries=3 (openai), tensor_parallel_size=2 (vllm)")


def backend_options(args: argparse.Namespace, model: str | None = None) -> BackendOptions:
    positive(args.batch_size, "--batch-size")
    positive(args.max_concurrency, "--max-concurrency")
    if args.chat_template:
        from pathlib import Path

        from harness.io import read_text

        read_text(Path(args.chat_template), "chat template file")  # a missing template fails before any work
    return BackendOptions(model=model, backend=args.backend, device=args.device, dtype=args.dtype,
                          batch_size=args.batch_size, chat_template=args.chat_template, base_url=args.base_url,
                          api_key_env=args.api_key_env, max_concurrency=args.max_concurrency,
                          use_cache=not args.no_cache, extra=parse_pairs(args.backend_opt, "--backend-opt"))


def add_judge_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("judged suites (AlpacaEval, Arena-Hard, MT-Bench)")
    add_judge_choice(g)
    g.add_argument("--max-new-tokens", type=int, help="cap every answer's length (default: each suite's upstream cap)")
    g.add_argument("--best-of-n", type=int, help="also evaluate best-of-N decoding as its own row, chosen by the judge")
    g.add_argument("--repeats", type=int, help="independent passes (re-sampled answers, fresh judgments); records carry "
                                              "the between-repeat standard deviation (default 1)")


def add_judge_choice(g: argparse._ArgumentGroup) -> None:
    """Which judge, on which backend: shared by `eval`, `train-and-eval` configs and `judge calibrate`."""
    g.add_argument("--judge", help="official, local, or a judge id (default: official when its API key is set, else local)")
    g.add_argument("--judge-backend", help="backend of the judge model: openai (official judges) or hf (local judges)")
    g.add_argument("--judge-model", help="judge model: an API model name, or a local checkpoint for a local judge")
    g.add_argument("--judge-base-url", help="OpenAI-compatible endpoint of the judge (e.g. a local Llama-3-70B server)")
    g.add_argument("--judge-api-key-env", help="name of the env var holding the judge's API key (default OPENAI_API_KEY)")
    g.add_argument("--judge-concurrency", type=int, help="judge requests in flight")
    g.add_argument("--judge-timeout", type=float, help="seconds before an API judge request is abandoned (then retried)")
    g.add_argument("--judge-max-retries", type=int, help="retries of a failed API judge request (default: the client's)")


def judge_calls(args: argparse.Namespace) -> tuple[float | None, int | None]:
    """--judge-timeout and --judge-max-retries, checked."""
    if args.judge_timeout is not None and not (math.isfinite(args.judge_timeout) and args.judge_timeout > 0):
        raise UserError(f"--judge-timeout {args.judge_timeout}: give a positive number of seconds")
    if args.judge_max_retries is not None and args.judge_max_retries < 0:
        raise UserError(f"--judge-max-retries {args.judge_max_retries}: must be 0 or more")
    return args.judge_timeout, args.judge_max_retries


def judge_backend(args: argparse.Namespace) -> BackendOptions | None:
    """The judge backend the command line names; None = the judge's default."""
    given = [args.judge_backend, args.judge_model, args.judge_base_url, args.judge_api_key_env, args.judge_concurrency]
    if all(v is None for v in given):
        return None
    if args.judge_concurrency is not None:
        positive(args.judge_concurrency, "--judge-concurrency")
    backend = args.judge_backend or ("openai" if args.judge_base_url or args.judge_api_key_env else "hf")
    return BackendOptions(model=args.judge_model, backend=backend, device=args.device, dtype=args.dtype,
                          batch_size=args.batch_size, base_url=args.judge_base_url,
                          api_key_env=args.judge_api_key_env or "OPENAI_API_KEY",
                          max_concurrency=args.judge_concurrency or 8, use_cache=not args.no_cache)


def run_options(args: argparse.Namespace) -> RunOptions:
    """The typed run options of `eval` (the default judge resolved here, from the environment)."""
    from harness.judges import resolve_choice

    for flag in ("limit", "max_new_tokens", "best_of_n", "repeats"):
        value = getattr(args, flag, None)
        if value is not None:
            positive(value, "--" + flag.replace("_", "-"))
    judge = judge_backend(args)
    choice = args.judge or resolve_choice(judge.api_key_env if judge else "OPENAI_API_KEY")
    timeout, retries = judge_calls(args)
    limits = tuple((k, _whole(v, f"--suite-limit {k}")) for k, v in
                   parse_pairs(getattr(args, "suite_limit", None) or [], "--suite-limit").items())
    return RunOptions(limit=args.limit, suite_limits=limits, seed=args.seed, judge=choice, judge_backend=judge,
                      judge_timeout=timeout, judge_max_retries=retries,
                      max_new_tokens=args.max_new_tokens, data_dir=args.data_dir,
                      repeats=getattr(args, "repeats", None) or 1)


def add_executor_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("scale-out")
    g.add_argument("--executor", choices=EXECUTORS, default="local", help="where units of work run (default: local)")
    g.add_argument("--workers", type=int, default=1, help="parallel workers (local process pool, local Ray cluster CPUs)")
    g.add_argument("--ray-address", help="address of an existing Ray cluster (default: start a local one)")
    g.add_argument("--shards", action="append", default=[], metavar="SUITE=K",
                   help="split a suite's items over K units that merge exactly, e.g. alpaca_eval=4")
    g.add_argument("--retries", type=int, default=2, help="retries of a failing unit before it is recorded as failed")
    g.add_argument("--slurm", action="append", default=[], metavar="KEY=VALUE",
                   help="submitit/SLURM option, e.g. partition=gpu, timeout_min=120, gpus_per_node=1, cluster=local")
    g.add_argument("--wait", action="store_true", help="wait for another process using the same run folder to finish")


def scale_out(args: argparse.Namespace) -> ScaleOut:
    positive(args.workers, "--workers")
    if args.retries < 0:
        raise UserError(f"--retries {args.retries}: must be 0 or more")
    shards = {k: _whole(v, f"--shards {k}") for k, v in parse_pairs(args.shards, "--shards").items()}
    return ScaleOut(executor=args.executor, workers=args.workers, ray_address=args.ray_address,
                    slurm=parse_pairs(args.slurm, "--slurm"), shards=shards, retries=args.retries)


def parse_pairs(items: list[str], flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UserError(f"{flag} {item!r}: expected KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def label_arg(value: str, flag: str) -> str:
    """A row label or model name from the command line: not empty, and text (a non-UTF-8 argument arrives with
    surrogate escapes that no record, card or terminal can hold)."""
    if not value.strip():
        raise UserError(f"{flag} {value!r}: empty; give the model's row label, e.g. {flag} MyModel-Iter1")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        shown = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        raise UserError(f"{flag} {shown!r}: not valid UTF-8 text; give the label in UTF-8") from None
    return value


def finite(value: float, flag: str, *, low: float = 0.0, positive: bool = False) -> float:
    """A float option: finite (no nan, inf or 1e309) and >= low (> low when `positive`)."""
    if not math.isfinite(value) or value < low or (positive and value == low):
        bound = f"> {low:g}" if positive else f">= {low:g}"
        raise UserError(f"{flag} {value}: must be a finite number {bound}")
    return value


def positive(value: int | float, flag: str) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value >= 1):
        raise UserError(f"{flag} {value}: must be at least 1")


def _whole(text: str, flag: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise UserError(f"{flag}={text!r}: expected a whole number") from None
    if value < 1:
        raise UserError(f"{flag}={value}: must be at least 1")
    return value
