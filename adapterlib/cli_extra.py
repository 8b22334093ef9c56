"""Subcommands beyond train/evaluate; each module registers its own parsers, when its command runs.

`python -m adapterlib --help` lists these commands from the one-line summaries below, without
importing their modules (the sweep module alone pulls dask, datasets and pandas). Choosing a
command (`python -m adapterlib sweep ...`, also `sweep --help`) imports its module, whose
`add_commands(sub)` then builds the real parsers. tests/test_imports.py checks that the
summaries here are the ones the modules register.
"""
from __future__ import annotations

import argparse
import importlib

# module (under adapterlib) -> {command: its one-line help, exactly as the module's add_commands has it}
LAZY_COMMANDS = {
    "runner": {"course": "run the notebook course in order with papermill"},
    "sweep": {"sweep": "run a YAML grid of trainings, resumably, on dask.distributed",
              "aggregate": "recompute a study's tables (CSV) from its run records",
              "status": "how far each reproduction study is (a Markdown table)"},
}


class LazySubParsers(argparse._SubParsersAction):
    """argparse subcommands whose parsers are built by their module only when the command is chosen.

    `add_lazy(module, {command: help})` lists each command with a placeholder parser; when one of
    them is chosen, the placeholders are dropped and `adapterlib.<module>.add_commands(self)`
    registers the real parsers, which then parse the rest of the command line.
    (`parser.add_subparsers(action=LazySubParsers, ...)`.)
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._lazy: dict[str, str] = {}  # command -> module still to import

    def add_lazy(self, module: str, commands: dict[str, str]) -> None:
        for name, summary in commands.items():
            self.add_parser(name, help=summary, add_help=False)
            self._lazy[name] = module

    def load(self, module: str) -> None:
        """Replace `module`'s placeholders by the parsers its add_commands builds."""
        names = [name for name, m in self._lazy.items() if m == module]
        for name in names:
            del self._lazy[name], self._name_parser_map[name]
        self._choices_actions[:] = [a for a in self._choices_actions if a.dest not in names]
        importlib.import_module(f"{__package__}.{module}").add_commands(self)

    def __call__(self, parser, namespace, values, option_string=None):
        if values and values[0] in self._lazy:
            self.load(self._lazy[values[0]])
        super().__call__(parser, namespace, values, option_string)


def add_commands(sub) -> None:
    """course (runner: every notebook with papermill); sweep, aggregate, status (sweep)."""
    for module, commands in LAZY_COMMANDS.items():
        if isinstance(sub, LazySubParsers):
            sub.add_lazy(module, commands)
        else:  # a plain argparse subparsers object: build the real parsers now
            importlib.import_module(f"{__package__}.{module}").add_commands(sub)
