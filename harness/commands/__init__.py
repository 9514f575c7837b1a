"""Command groups, in the order `sppo-bench --help` lists them. One explicit list: no plugin discovery."""

from harness.commands import core, data, evaluate, generate, imports, report, train, view

COMMAND_MODULES = (train, evaluate, report, view, core, imports, generate, data)
