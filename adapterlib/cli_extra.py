"""Subcommands beyond train/evaluate; each module registers its own parser."""


def add_commands(sub) -> None:
    from . import runner, sweep
    runner.add_commands(sub)   # course: run every notebook with papermill
    sweep.add_commands(sub)    # sweep, aggregate
