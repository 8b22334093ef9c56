"""adapterlib: bottleneck adapters (Houlsby et al. 2019) for HuggingFace BERT-family models.

    model, tokenizer = load_base_model()            # bundled all-MiniLM-L6-v2, offline
    add_adapters(model, AdapterConfig(size=64))     # two adapters per layer, paper position
    set_trainable(model, "adapter")                 # adapters + LayerNorms + head
    print(param_report(model))
"""
from .checkpoint import CheckpointError, load_adapter, save_adapter
from .config import INIT_SCHEMES, MODEL_PRESETS, AdapterConfig, AdapterConfigError, TrainConfig, TrainConfigError
from .heads import HEAD_INPUTS, MeanPooler, head_input, set_head_input
from .inject import PLACEMENTS, UnsupportedModelError, adapter_slots, adapters_removed, add_adapters, enable_adapters
from .models import ModelLoadError, load_base_model, model_from_preset, tiny_config
from .modules import Adapter, AdapterSlot
from .params import ParamReport, adapter_param_formula, param_report
from .policies import POLICIES, param_groups, set_trainable
from .train import evaluate_task, train

__version__ = "0.1.0"

__all__ = [
    "Adapter", "AdapterConfig", "AdapterConfigError", "AdapterSlot", "CheckpointError", "HEAD_INPUTS", "INIT_SCHEMES",
    "MeanPooler", "head_input", "set_head_input",
    "MODEL_PRESETS", "ModelLoadError", "PLACEMENTS", "POLICIES", "ParamReport", "UnsupportedModelError",
    "adapter_param_formula", "adapter_slots", "adapters_removed", "add_adapters", "enable_adapters",
    "load_adapter", "load_base_model", "model_from_preset", "param_groups", "param_report", "save_adapter",
    "set_trainable", "tiny_config", "TrainConfig", "TrainConfigError", "train", "evaluate_task",
]
