"""Further subcommands (sweep, aggregate, course) register here."""


def add_commands(sub) -> None:
    return None
