"""Insert adapters at the paper's position in HuggingFace encoder models.

Each transformer layer has two sub-layers (attention, feed-forward). Each ends in
`LayerNorm(x + dropout(dense(...)))`. We wrap the last module before the residual add in an
`AdapterSlot`, giving `LayerNorm(x + adapter(dropout(dense(...))))` exactly as in the official
adapter-bert code. The wrapper keeps the original module as `.inner`, so `print(model)` and
`state_dict()` show the adapter where it runs, e.g.
`bert.encoder.layer.3.output.dropout.adapter.down.weight`.

Supporting a new architecture means adding one row to PLACEMENTS.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

from torch import nn

from .config import AdapterConfig, AdapterConfigError
from .errors import UnsupportedModelError, UsageError  # defined there; importable from here as before
from .modules import Adapter, AdapterSlot


@dataclass(frozen=True)
class Placement:
    """Where adapters go, as module paths relative to `model.base_model`."""

    layers: str     # the ModuleList of transformer layers
    attention: str  # per layer: last module before the attention residual add
    ffn: str        # per layer: last module before the feed-forward residual add


_BERT_LIKE = Placement(layers="encoder.layer", attention="attention.output.dropout", ffn="output.dropout")
MAX_SIZE_PER_HIDDEN = 8   # an adapter at most this many times the model's hidden size (the paper: m <= d / 3)
PLACEMENTS: dict[str, Placement] = {
    "bert": _BERT_LIKE,
    "roberta": _BERT_LIKE,
    "xlm-roberta": _BERT_LIKE,
    "electra": _BERT_LIKE,
    # DistilBERT: no dropout follows the attention projection; the FFN ends in dropout.
    "distilbert": Placement(layers="transformer.layer", attention="attention.out_lin", ffn="ffn.dropout"),
}


def placement_for(model: nn.Module) -> Placement:
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type not in PLACEMENTS:
        raise UnsupportedModelError(
            f"adapterlib does not know where adapters go in model type {model_type!r}; "
            f"supported: {', '.join(sorted(PLACEMENTS))} (add a row to adapterlib.inject.PLACEMENTS)")
    return PLACEMENTS[model_type]


def transformer_layers(model: nn.Module) -> nn.ModuleList:
    """The model's list of transformer layers, bottom (0) to top."""
    return model.base_model.get_submodule(placement_for(model).layers)


def _split(path: str) -> tuple[str, str]:
    parent, _, attr = path.rpartition(".")
    return parent, attr


def add_adapters(model: nn.Module, config: AdapterConfig | None = None) -> nn.Module:
    """Insert two bottleneck adapters per transformer layer (in place); returns the model.

    Only the layers in `config.layers` (None = all) and the sub-layers in `config.positions`
    get adapters. New adapters are created on the device and dtype of the layer they join,
    so this also works on a weightless `meta` model for exact parameter counts.
    """
    config = config or AdapterConfig()
    placement = placement_for(model)
    if adapter_slots(model):
        raise UsageError("model already has adapters; load a fresh base model to add a new set")
    layers = transformer_layers(model)
    chosen = range(len(layers)) if config.layers is None else config.layers
    if any(i >= len(layers) for i in chosen):
        raise UsageError(f"layers {config.layers} out of range: "
                         f"the model has {len(layers)} layers (0..{len(layers) - 1})")
    hidden = model.config.hidden_size if hasattr(model.config, "hidden_size") else model.config.dim
    if config.size > MAX_SIZE_PER_HIDDEN * hidden:  # checked before any adapter is allocated
        raise AdapterConfigError(f"adapter size {config.size} exceeds {MAX_SIZE_PER_HIDDEN} x the model's hidden size "
                                 f"{hidden} (= {MAX_SIZE_PER_HIDDEN * hidden}); a bottleneck adapter is narrower than "
                                 "the model")
    ref = next(model.parameters())
    for i in chosen:
        for position in config.positions:
            parent_path, attr = _split(getattr(placement, position))
            parent = layers[i].get_submodule(parent_path)
            adapter = Adapter(hidden, config, device=ref.device, dtype=ref.dtype)
            setattr(parent, attr, AdapterSlot(getattr(parent, attr), adapter))
    model.adapter_config = config
    return model


def adapter_slots(model: nn.Module) -> list[tuple[int, str, AdapterSlot]]:
    """Every inserted adapter as (layer index, position, slot), bottom to top."""
    placement = placement_for(model)
    found = []
    for i, layer in enumerate(transformer_layers(model)):
        for position in ("attention", "ffn"):
            module = layer.get_submodule(getattr(placement, position))
            if isinstance(module, AdapterSlot):
                found.append((i, position, module))
    return found


def enable_adapters(model: nn.Module, layers=None) -> None:
    """Switch adapters on in `layers` (None = all) and off everywhere else (inference ablation)."""
    for i, _, slot in adapter_slots(model):
        slot.enabled = layers is None or i in set(layers)


@contextlib.contextmanager
def adapters_removed(model: nn.Module, layers):
    """Temporarily bypass the adapters of `layers`; the paper's Figure 6 ablation."""
    before = [slot.enabled for _, _, slot in adapter_slots(model)]
    removed = set(layers)
    try:
        for i, _, slot in adapter_slots(model):
            if i in removed:
                slot.enabled = False
        yield model
    finally:
        for (_, _, slot), was in zip(adapter_slots(model), before, strict=True):
            slot.enabled = was
