"""IFEval through our lm-eval engine on two backends, greedy answers item by item: `python -m tests.vllm_cpu_lmeval
BACKEND MODEL OUT_DIR [--limit N] [--max-new-tokens M]` runs `sppo-bench eval --backend BACKEND --suites ifeval` in
this process (hf: lm-eval's HFLM with our hf backend's generation; vllm: lm-eval's own `vllm` model,
`lm_eval.models.vllm_causallms.VLLM`) and writes OUT_DIR/timing.json (model load and generate_until seconds, answer
tokens re-encoded by the model's tokenizer, wall); `--compare A_DIR B_DIR` prints how many answers are identical
(tests.engine_compare.answers) and both speeds. `nox -s vllm_cpu` runs hf in the project's venv and vllm in the venv
of vLLM's CPU build (`vllm-cpu`); vLLM spawns workers: keep the __main__ guard."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

SUITE = "ifeval"


def vllm_metadata() -> str | None:
    """The CPU build installs as the distribution `vllm-cpu`, while lm-eval's vllm model reads `version("vllm")` when
    it is imported (PackageNotFoundError). Give the venv a metadata-only `vllm` distribution at the version vLLM
    itself derives for that case, `version("vllm-cpu") + "+cpu"` (vllm.platforms.vllm_version_matches_substr: its
    CPU platform is detected by "cpu" in that version; without it: "Device string must not be empty"). Returns the
    folder written, None when `vllm` metadata was already there."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        version("vllm")
        return None
    except PackageNotFoundError:
        pass
    import sysconfig

    cpu = f"{version('vllm-cpu')}+cpu"
    folder = Path(sysconfig.get_paths()["purelib"]) / f"vllm-{cpu}.dist-info"
    folder.mkdir(exist_ok=True)
    (folder / "METADATA").write_text(f"Metadata-Version: 2.1\nName: vllm\nVersion: {cpu}\n"
                                     "Summary: metadata only: the code is the vllm-cpu distribution's\n")
    (folder / "INSTALLER").write_text("tests.vllm_cpu_lmeval\n")
    return str(folder)


def evaluate(backend: str, model: str, out: Path, limit: int, max_new_tokens: int) -> int:
    if backend == "vllm":
        written = vllm_metadata()
        if written:
            print(f"wrote {written} (vllm-cpu has no `vllm` distribution metadata; lm-eval's vllm model reads it)")
    import harness.engines.lmeval as engine
    from harness.cli import main

    timing: dict[str, Any] = {"backend": backend, "load_s": 0.0, "generate_s": 0.0, "tokens": 0, "requests": 0}
    load_lm = engine.load_lm

    def timed_load(*args: Any, **kwargs: Any) -> Any:
        start = time.monotonic()
        lm = load_lm(*args, **kwargs)
        timing["load_s"] += time.monotonic() - start
        generate_until = lm.generate_until

        def timed_generate(requests: list[Any], *rest: Any, **kw: Any) -> list[str]:
            begin = time.monotonic()
            texts = generate_until(requests, *rest, **kw)
            timing["generate_s"] += time.monotonic() - begin
            timing["requests"] += len(requests)
            timing["tokens"] += sum(len(lm.tokenizer.encode(t, add_special_tokens=False)) for t in texts)
            return texts

        lm.generate_until = timed_generate
        return lm

    engine.load_lm = timed_load  # run_suite looks it up in the package: the product path, timed
    run = out / "run"
    shutil.rmtree(run, ignore_errors=True)  # a fresh run: `eval` resumes (and would skip) a finished one
    start = time.monotonic()
    rc = main(["eval", model, "--backend", backend, "--device", "cpu", "--dtype", "float32", "--suites", SUITE,
               "--suite-limit", f"{SUITE}={limit}", "--max-new-tokens", str(max_new_tokens), "--no-cache",
               "--out", str(run)])
    timing["wall_s"] = time.monotonic() - start
    timing = {k: round(v, 1) if isinstance(v, float) else v for k, v in timing.items()}
    (out / "timing.json").write_text(json.dumps(timing, indent=1) + "\n")
    return rc


def first_difference(a: str | None, b: str | None) -> int:
    a, b = a or "", b or ""
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


def compare(a: Path, b: Path) -> int:
    from tests.engine_compare import answers

    left, right = answers(a / "run", SUITE), answers(b / "run", SUITE)
    sides = [json.loads((d / "timing.json").read_text()) for d in (a, b)]
    names = [f"lm-eval {s['backend']}" for s in sides]
    keys = sorted(set(left) & set(right), key=str)
    same = [k for k in keys if left[k] == right[k]]
    one_side = len(set(left) ^ set(right))
    print(f"{SUITE}: {len(same)}/{len(keys)} greedy answers identical ({names[0]} vs {names[1]}); "
          f"{one_side} items on one side only")
    for k in keys:
        if left[k] != right[k]:
            print(f"  item {k[0]}: answers part at character {first_difference(left[k], right[k])} "
                  f"of {len(left[k] or '')} / {len(right[k] or '')}")
    for name, side in zip(names, sides, strict=True):
        print(f"{name:12s} load {side['load_s']} s, generate {side['generate_s']} s for {side['tokens']} tokens "
              f"({side['tokens'] / max(side['generate_s'], 1e-9):.0f} tok/s), eval wall {side['wall_s']} s")
    report = {"suite": SUITE, "items": len(keys), "identical": len(same), "only_one_side": one_side, "sides": sides}
    (a.parent / "lmeval-compare.json").write_text(json.dumps(report, indent=1) + "\n")
    # numerics may part two greedy answers late in a long generation: reported, not a failure; missing items are one
    return 0 if keys and not one_side else 1


if __name__ == "__main__":
    if sys.argv[1] == "--compare":
        sys.exit(compare(Path(sys.argv[2]), Path(sys.argv[3])))
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("backend")
    p.add_argument("model")
    p.add_argument("out", type=Path)
    p.add_argument("--limit", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=128)
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    sys.exit(evaluate(args.backend, args.model, args.out, args.limit, args.max_new_tokens))
