"""Access to the suite registry; importing `benchmarks` fills it."""

from __future__ import annotations

from harness.registry import Registry
from harness.specs import SUITES, SuiteSpec


def suites() -> Registry[SuiteSpec]:
    import benchmarks  # noqa: F401  (registers every suite)

    return SUITES


def get_suite(name: str) -> SuiteSpec:
    return suites().get(name)


def parse_suite_list(text: str | None, default: list[str] | None = None) -> list[SuiteSpec]:
    if not text:
        return [get_suite(n) for n in (default or [])]
    return [get_suite(n.strip()) for n in text.split(",") if n.strip()]
