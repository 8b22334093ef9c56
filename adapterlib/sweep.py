"""`python -m adapterlib sweep`: resumable grids on dask.distributed (being written)."""


def add_commands(sub) -> None:
    return None
