"""The errors that mean "bad input": the CLI prints them as one line instead of a traceback."""
from .checkpoint import CheckpointError
from .config import AdapterConfigError, TrainConfigError
from .data import GlueDataError, UnknownTaskError
from .inject import UnsupportedModelError
from .models import ModelLoadError
from .train import OutputWriteError

USER_ERRORS = (AdapterConfigError, TrainConfigError, UnknownTaskError, GlueDataError, ModelLoadError,
               CheckpointError, UnsupportedModelError, OutputWriteError, ValueError, FileNotFoundError)
