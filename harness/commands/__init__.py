"""Command groups, in the order `sppo-bench --help` lists them. One explicit list: no plugin discovery."""

from harness.commands import compare, core, data, evaluate, generate, imports, judge, report, train, view

COMMAND_MODULES = (train, evaluate, report, compare, view, core, imports, generate, judge, data)
