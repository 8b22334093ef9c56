"""Adapter-only checkpoints: the trained parameters of one task, safetensors + JSON.

Layout (the PEFT / AdapterHub convention):
    <dir>/adapter_model.safetensors   adapters, LayerNorms, head (or whatever was trained)
    <dir>/adapter_config.json         format, adapter config, base-model signature, tensor list

A checkpoint is a few MB next to a full model's hundreds; keeping one per task on a single
frozen base, and loading the one you need, is the paper's "many tasks, one model".
No pickle is ever loaded: safetensors holds only tensors.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .config import AdapterConfig
from .errors import AdapterlibError
from .heads import head_input, set_head_input
from .inject import adapter_slots, add_adapters, placement_for, transformer_layers
from .paths import replacing, write_text_atomic
from .policies import param_groups

FORMAT = "adapterlib-adapter"
VERSION = 1  # written for every checkpoint without peft modules (readers of version 1 know all of them)
READ_VERSION = 2  # 2: the checkpoint has `peft`, the peft modules to rebuild (adapterlib.methods)
WEIGHTS_NAME = "adapter_model.safetensors"
CONFIG_NAME = "adapter_config.json"
DEFAULT_GROUPS = ("adapter", "layernorm", "head")


class CheckpointError(AdapterlibError, ValueError):
    """The checkpoint is missing, malformed, or made for another architecture."""


def base_signature(model: nn.Module) -> dict:
    """What a checkpoint must match: architecture type, width, depth, number of labels."""
    cfg = model.config
    return {"model_type": cfg.model_type,
            "hidden_size": getattr(cfg, "hidden_size", getattr(cfg, "dim", None)),
            "num_layers": len(transformer_layers(model)),
            "num_labels": cfg.num_labels}


def trainable_groups(model: nn.Module) -> tuple[str, ...]:
    """The parameter groups that have trainable parameters now (what a task checkpoint must keep)."""
    by_group = param_groups(model)
    return tuple(sorted({by_group[n] for n, p in model.named_parameters() if p.requires_grad}))


def trained_state(model: nn.Module, groups=DEFAULT_GROUPS, only_trainable: bool = False) -> dict[str, torch.Tensor]:
    """The parameters of `groups` (with only_trainable: those of them that train now; BitFit trains only the biases
    of its groups), detached and contiguous (what a task checkpoint holds)."""
    by_group = param_groups(model)
    return {n: p.detach().contiguous().clone() for n, p in model.named_parameters()
            if by_group[n] in groups and (p.requires_grad or not only_trainable)}


def save_adapter(model: nn.Module, path, groups=DEFAULT_GROUPS, metadata: dict | None = None,
                 only_trainable: bool = False) -> Path:
    """Save the task-specific parameters (default: adapters, LayerNorms, head) to directory `path`.

    only_trainable: keep only the parameters of `groups` that train now (what `train` saves). A model with
    peft's modules (adapterlib.methods) also records their settings, so `load_adapter` rebuilds them.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    state = trained_state(model, groups, only_trainable)
    if not state:
        raise CheckpointError(f"model has no parameters in groups {groups}")
    config = getattr(model, "adapter_config", None)
    peft = getattr(model, "peft_settings", None)
    meta = {"format": FORMAT, "version": 2 if peft else VERSION, "groups": list(groups),
            "adapter_config": config.to_dict() if config else None, "head_input": head_input(model),
            "base": base_signature(model), "tensors": sorted(state), "metadata": metadata or {},
            **({"method": model.adapterlib_method} if getattr(model, "adapterlib_method", None) else {}),
            **({"peft": peft} if peft else {})}
    # each file atomically (a full disk leaves the previous file or none, never half of one); the weights first,
    # so a config never names tensors that are not there
    with replacing(path / WEIGHTS_NAME) as tmp:
        save_file(state, str(tmp), metadata={"format": FORMAT})
    write_text_atomic(path / CONFIG_NAME, json.dumps(meta, indent=2))
    return path


def read_adapter_config(path) -> dict:
    """Read and validate a checkpoint's JSON; raises CheckpointError with the reason."""
    path = Path(path)
    cfg_file = path / CONFIG_NAME
    if not (path / WEIGHTS_NAME).is_file() or not cfg_file.is_file():
        raise CheckpointError(f"{path} is not an adapterlib checkpoint: expected {CONFIG_NAME} and {WEIGHTS_NAME}")
    try:
        meta = json.loads(cfg_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{cfg_file} is not valid JSON: {e}") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{cfg_file} is not an adapterlib checkpoint config (format != {FORMAT!r})")
    version = meta.get("version")
    if type(version) is not int or not 1 <= version <= READ_VERSION:
        raise CheckpointError(f"{cfg_file}: version must be an integer in 1..{READ_VERSION}, got {version!r}")
    peft = meta.get("peft")
    if peft is not None and (not isinstance(peft, dict) or peft.get("method") not in ("lora", "ia3", "prefix")):
        raise CheckpointError(f"{cfg_file}: `peft` must name method lora, ia3 or prefix, got {peft!r}")
    base = meta.get("base")
    if not isinstance(base, dict) or not base or set(base) - set(_BASE_KEYS):
        raise CheckpointError(f"{cfg_file}: `base` must map some of {', '.join(_BASE_KEYS)} to the model's "
                              f"values, got {base!r}")
    tensors = meta.get("tensors")
    if not isinstance(tensors, list) or not tensors or not all(isinstance(t, str) for t in tensors):
        raise CheckpointError(f"{cfg_file}: `tensors` must be a non-empty list of tensor names, got {tensors!r}")
    adapter = meta.get("adapter_config")
    if adapter is not None:
        known = {f.name for f in dataclasses.fields(AdapterConfig)}
        if not isinstance(adapter, dict) or set(adapter) - known:
            unknown = sorted(set(adapter) - known) if isinstance(adapter, dict) else adapter
            raise CheckpointError(f"{cfg_file}: unknown adapter_config field(s) {unknown}; "
                                  f"known: {', '.join(sorted(known))}")
        try:
            AdapterConfig.from_dict(adapter)
        except (TypeError, ValueError) as e:
            raise CheckpointError(f"{cfg_file}: invalid adapter_config: {e}") from None
    if meta.get("head_input", "pooler") not in ("pooler", "mean"):
        raise CheckpointError(f"{cfg_file}: head_input must be 'pooler' or 'mean', got {meta['head_input']!r}")
    if not isinstance(meta.get("metadata", {}), dict):
        raise CheckpointError(f"{cfg_file}: metadata must be a mapping, got {meta['metadata']!r}")
    return meta


_BASE_KEYS = ("model_type", "hidden_size", "num_layers", "num_labels")


def load_adapter(model: nn.Module, path) -> nn.Module:
    """Load a task checkpoint onto `model` in place; adds adapters first if the model has none.

    Refuses (CheckpointError) a checkpoint made for another architecture, width, depth or
    label count, a different adapter configuration, or files that are not a valid checkpoint.
    Only the checkpoint's tensors change; every other (shared, frozen) weight is untouched.
    """
    meta = read_adapter_config(path)
    ours = base_signature(model)
    diffs = {k: (v, ours.get(k)) for k, v in meta["base"].items() if ours.get(k) != v}
    if diffs:
        detail = ", ".join(f"{k}: checkpoint {a!r} vs model {b!r}" for k, (a, b) in diffs.items())
        raise CheckpointError(f"checkpoint {path} was made for another model ({detail})")
    _ensure_adapters(model, meta.get("adapter_config"), path)
    _ensure_peft(model, meta.get("peft"), path)
    if meta.get("method") and getattr(model, "adapterlib_method", None) is None:
        model.adapterlib_method = meta["method"]
    wanted_input = meta.get("head_input", "pooler")  # checkpoints before head_input read the pooler
    if wanted_input != head_input(model):
        if wanted_input != "mean":
            raise CheckpointError(f"checkpoint {path} reads the pooler, but this model uses mean pooling")
        set_head_input(model, "mean")
    try:
        state = load_file(str(Path(path) / WEIGHTS_NAME), device=str(next(model.parameters()).device))
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{Path(path) / WEIGHTS_NAME} is not a valid safetensors file: {e}") from e
    params = dict(model.named_parameters())
    unknown = sorted(set(state) - set(params))
    if unknown or set(state) != set(meta["tensors"]):
        raise CheckpointError(f"checkpoint {path} does not match this model: unexpected tensors {unknown[:3]}")
    with torch.no_grad():
        for name, tensor in state.items():
            if params[name].shape != tensor.shape:
                raise CheckpointError(f"{name}: checkpoint shape {tuple(tensor.shape)} "
                                      f"vs model {tuple(params[name].shape)}")
        for name, tensor in state.items():
            params[name].copy_(tensor)
    return model


def _ensure_peft(model, settings, path) -> None:
    """Add the checkpoint's peft modules to a model without them; refuse a model with other ones."""
    have = getattr(model, "peft_settings", None)
    if settings is None:
        if have is not None:
            raise CheckpointError(f"checkpoint {path} has no peft modules, the model has {have}")
        return
    if have is None:
        from .methods import add_peft
        problem = _peft_size_problem(model, settings)
        if problem:
            raise CheckpointError(f"checkpoint {path}: cannot rebuild its peft modules {settings}: {problem}")
        try:
            add_peft(model, settings)
        except (TypeError, ValueError) as e:
            raise CheckpointError(f"checkpoint {path}: cannot rebuild its peft modules {settings}: {e}") from None
        model.adapterlib_method = settings["method"]
    elif have != settings:
        raise CheckpointError(f"checkpoint {path} has peft modules {settings}, the model has {have}")


def _peft_size_problem(model, settings) -> str | None:
    """Why a checkpoint's prefix length or LoRA rank cannot be built on `model`, or None: missing (prefix), not a
    positive integer, or beyond the model (its position table, its hidden size), which would reach torch's
    allocator raw (a rank or length of 10**9 asks for hundreds of GB)."""
    key, limit = {"prefix": ("num_virtual_tokens", "max_position_embeddings"),
                  "lora": ("r", "hidden_size")}.get(settings["method"], (None, None))
    if key is None or (key == "r" and key not in settings):  # LoRA without r: peft's default rank
        return None
    value, bound = settings.get(key), getattr(model.config, limit, None)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 or (bound and value > bound):
        return f"{key} must be an integer in 1..{bound or 'the model size'}, got {value!r}"
    return None


# AdapterConfig fields that change which tensors exist or what they compute (init does not).
_ARCH_FIELDS = ("size", "nonlinearity", "layers", "positions")


def _ensure_adapters(model, config_dict, path) -> None:
    if config_dict is None:
        return
    wanted = AdapterConfig.from_dict(config_dict)
    have = getattr(model, "adapter_config", None)
    if not adapter_slots(model):
        placement_for(model)  # clear error for unsupported model types
        add_adapters(model, wanted)
    elif have is not None and any(have.to_dict()[f] != wanted.to_dict()[f] for f in _ARCH_FIELDS):
        raise CheckpointError(f"checkpoint {path} has adapters {config_dict}, the model has {have.to_dict()}")
