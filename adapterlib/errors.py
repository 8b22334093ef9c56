"""adapterlib's errors: one base class, `AdapterlibError`, for every error that means "bad input".

    try:
        al.train(cfg)
    except al.AdapterlibError as e:   # any adapterlib error; each also keeps its builtin base,
        print(e)                      # so `except ValueError` (or RuntimeError, OSError) still works

This module imports nothing else from adapterlib, so any module can use it and importing it is
cheap. The classes stay importable where they were defined before (`adapterlib.inject`,
`adapterlib.models`, `adapterlib.train`). The classes defined elsewhere (AdapterConfigError,
TrainConfigError, UnknownTaskError, GlueDataError, CheckpointError, SweepError, SweepSpecError,
OutDirError) subclass AdapterlibError too. The CLI prints any AdapterlibError as one line (exit
code 2); any other exception is a bug and keeps its traceback.
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


class UsageError(AdapterlibError, ValueError):
    """A bad argument value with no more specific class (an unknown notebook or split, a count below 1, ...)."""

