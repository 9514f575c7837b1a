"""`nox -s perf`: run every tests/perf/bench_*.py module's `main()` and print its ratios.

Each benchmark measures sppo-bench against a baseline side by side in the same process and prints
`name: ours X s, baseline Y s, ratio R (target T)`. Nothing here asserts a wall-clock limit.
Run one: `python -m tests.perf bench_backends`.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time

import tests.perf as pkg


def main(argv: list[str]) -> int:
    wanted = set(argv)
    names = sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if m.name.startswith("bench_"))
    for name in names:
        if wanted and name not in wanted:
            continue
        print(f"== {name}", flush=True)
        start = time.perf_counter()
        importlib.import_module(f"tests.perf.{name}").main()
        print(f"== {name} took {time.perf_counter() - start:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
