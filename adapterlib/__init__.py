"""adapterlib: bottleneck adapters (Houlsby et al. 2019) for HuggingFace BERT-family models.

    model, tokenizer = load_base_model()            # bundled all-MiniLM-L6-v2, offline
    add_adapters(model, AdapterConfig(size=64))     # two adapters per layer, paper position
    set_trainable(model, "adapter")                 # adapters + LayerNorms + head
    # or any method, Houlsby's successors included: add_method(model, TrainConfig(method="lora"))
    print(param_report(model))
    claims()                                        # which of the paper's claims hold here (a DataFrame)
"""
import importlib
import sys
import types
from typing import TYPE_CHECKING

from ._version import __version__  # noqa: F401 (public: adapterlib.__version__)

# Public name -> the submodule that defines it. Nothing is imported until a name is first used,
# so `import adapterlib` (and `python -m adapterlib --help`) stays fast and has no side effects;
# `al.train` and `al.evaluate_task` pull the training engine (accelerate, datasets, ...) then.
_EXPORTS = {
    "checkpoint": ["CheckpointError", "load_adapter", "save_adapter"],
    "config": ["INIT_SCHEMES", "TRAIN_METHODS", "MODEL_PRESETS", "AdapterConfig", "AdapterConfigError", "TrainConfig",
               "TrainConfigError"],
    "errors": ["AdapterlibError"],
    "fast": ["speed_up", "slow_down"],
    "heads": ["HEAD_INPUTS", "MeanPooler", "head_input", "set_head_input"],
    "inject": ["PLACEMENTS", "UnsupportedModelError", "adapter_slots", "adapters_removed", "add_adapters",
               "enable_adapters"],
    "methods": ["add_method"],
    "models": ["ModelLoadError", "load_base_model", "model_from_preset", "tiny_config"],
    "modules": ["Adapter", "AdapterSlot"],
    "params": ["ParamReport", "adapter_param_formula", "param_report"],
    "policies": ["POLICIES", "param_groups", "set_trainable"],
    "record": ["RunRecord"],
    "train": ["evaluate_task", "train"],
    "course.claims": ["claims"],
}
_SOURCE = {name: module for module, names in _EXPORTS.items() for name in names}

if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names load on first use
    from .checkpoint import CheckpointError, load_adapter, save_adapter
    from .config import (
        INIT_SCHEMES,
        MODEL_PRESETS,
        TRAIN_METHODS,
        AdapterConfig,
        AdapterConfigError,
        TrainConfig,
        TrainConfigError,
    )
    from .course.claims import claims
    from .errors import AdapterlibError
    from .fast import slow_down, speed_up
    from .heads import HEAD_INPUTS, MeanPooler, head_input, set_head_input
    from .inject import (
        PLACEMENTS,
        UnsupportedModelError,
        adapter_slots,
        adapters_removed,
        add_adapters,
        enable_adapters,
    )
    from .methods import add_method
    from .models import ModelLoadError, load_base_model, model_from_preset, tiny_config
    from .modules import Adapter, AdapterSlot
    from .params import ParamReport, adapter_param_formula, param_report
    from .policies import POLICIES, param_groups, set_trainable
    from .record import RunRecord
    from .train import evaluate_task, train


def __getattr__(name: str):
    """Load a public name (or a submodule, e.g. `adapterlib.fast`) on first use."""
    if name in _SOURCE:
        value = getattr(importlib.import_module(f".{_SOURCE[name]}", __name__), name)
        globals()[name] = value  # later lookups skip __getattr__
        return value
    if not name.startswith("__"):
        try:
            return importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise  # the submodule exists but one of its imports is missing
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """Keeps `adapterlib.train` the function: importing the submodule adapterlib.train (which
    binds the submodule as an attribute of its package) must not replace it."""

    def __setattr__(self, name, value):
        if isinstance(value, types.ModuleType) and name in _SOURCE:
            return  # the submodule stays reachable as sys.modules["adapterlib.<name>"]
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

__all__ = [
    "Adapter", "AdapterConfig", "AdapterConfigError", "AdapterSlot", "CheckpointError", "HEAD_INPUTS", "INIT_SCHEMES",
    "MeanPooler", "head_input", "set_head_input",
    "MODEL_PRESETS", "ModelLoadError", "PLACEMENTS", "POLICIES", "ParamReport", "UnsupportedModelError",
    "adapter_param_formula", "adapter_slots", "adapters_removed", "add_adapters", "enable_adapters",
    "load_adapter", "load_base_model", "model_from_preset", "param_groups", "param_report", "save_adapter",
    "set_trainable", "tiny_config", "TrainConfig", "TrainConfigError", "train", "evaluate_task",
    "AdapterlibError", "speed_up", "slow_down", "TRAIN_METHODS", "add_method", "RunRecord", "claims",
]
