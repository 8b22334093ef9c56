"""adapterlib's errors: one base class, `AdapterlibError`, for every error that means "bad input".

    try:
        al.train(cfg)
    except al.AdapterlibError as e:   # any adapterlib error; each also keeps its builtin base,
        print(e)                      # so `except ValueError` (or RuntimeError, OSError) still works

This module imports nothing else from adapterlib, so any module can use it and importing it is
cheap. The classes stay importable where they were defined before (`adapterlib.inject`,
`adapterlib.models`, `adapterlib.train`). `USER_ERRORS` (what the CLI prints as one line instead
of a traceback) is built on first use.
"""


class AdapterlibError(Exception):
    """Base class of adapterlib's errors."""


class UnsupportedModelError(AdapterlibError, ValueError):
    """The model type has no row in PLACEMENTS."""


class ModelLoadError(AdapterlibError, RuntimeError):
    """The base model could not be found or loaded."""


class OutputWriteError(AdapterlibError, OSError):
    """The run trained, but its record or checkpoint could not be written (the message holds the scores)."""


class TrainingDiverged(AdapterlibError, ValueError):
    """The training loss became NaN or infinite: the run stops and is recorded as failed."""


def _user_errors() -> tuple:
    # Errors still defined in their own modules (not yet AdapterlibError subclasses), named here;
    # importing those modules here, not at the top, keeps `import adapterlib.errors` cheap.
    from .checkpoint import CheckpointError
    from .config import AdapterConfigError, TrainConfigError
    from .data import GlueDataError, UnknownTaskError
    return (AdapterlibError, AdapterConfigError, TrainConfigError, UnknownTaskError, GlueDataError, CheckpointError,
            ValueError, FileNotFoundError)


def __getattr__(name: str):
    if name == "USER_ERRORS":
        globals()[name] = value = _user_errors()
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
