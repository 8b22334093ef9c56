"""`python -m adapterlib course`: execute the notebook course with papermill (being written)."""


def add_commands(sub) -> None:
    return None
