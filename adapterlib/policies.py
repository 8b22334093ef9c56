"""What is trained: named policies over parameter groups found by module TYPE.

Groups (the paper's and adapter-bert's trained set is `adapter + layernorm + head`):
  adapter   - parameters of `Adapter` modules, and the trained parts of peft's tuners (LoRA's A and B,
              (IA)3's vectors, prefix tuning's prefixes; adapterlib.methods)
  layernorm - every nn.LayerNorm, the embedding LayerNorm included
  head      - everything outside `model.base_model` (the new task classifier)
  embedding - nn.Embedding tables of the base model
  pooler    - the base model's pooler (dense + tanh over [CLS]), which the head reads
  other     - the rest of the pre-trained base (attention, FFN)
"""
from __future__ import annotations

import sys

from torch import nn

from .errors import UsageError
from .inject import transformer_layers
from .modules import Adapter

POLICIES = ("adapter", "full", "top_k", "layernorm", "head", "pfeiffer", "bitfit", "lora", "ia3", "prefix")


def _peft_tuner_parameters(model: nn.Module) -> list:
    """The parameters peft added to `model` (none if peft was never imported: then it cannot have added any)."""
    if "peft" not in sys.modules:
        return []
    from peft.tuners.prefix_tuning import PrefixEncoder
    from peft.tuners.tuners_utils import BaseTunerLayer
    found = []
    for module in model.modules():
        if isinstance(module, BaseTunerLayer):  # LoRA, (IA)3: the wrapped layer's own weights stay in the base
            found += [p for name in module.adapter_layer_names for p in getattr(module, name).parameters()]
        elif isinstance(module, PrefixEncoder):
            found += list(module.parameters())
    return found


def param_groups(model: nn.Module) -> dict[str, str]:
    """Map every parameter name to its group (see module docstring)."""
    typed: dict[int, str] = {id(p): "adapter" for p in _peft_tuner_parameters(model)}
    pooler = getattr(model.base_model, "pooler", None)
    for module in model.modules():  # pre-order: an Adapter claims its Linears before they are seen
        kind = ("adapter" if isinstance(module, Adapter) else "layernorm" if isinstance(module, nn.LayerNorm)
                else "embedding" if isinstance(module, nn.Embedding) else "pooler" if module is pooler else None)
        if kind:
            for p in module.parameters():
                typed.setdefault(id(p), kind)
    base = model.base_model
    base_ids = {id(p) for p in base.parameters()} if base is not model else None
    return {name: typed.get(id(p)) or ("other" if base_ids is None or id(p) in base_ids else "head")
            for name, p in model.named_parameters()}


def set_trainable(model: nn.Module, policy: str, k: int | None = None, train_pooler: bool = False,
                  train_layernorm: bool | None = None) -> nn.Module:
    """Freeze everything, then unfreeze what `policy` trains; returns the model.

    adapter   - adapters + all LayerNorms + head (paper; pooler stays frozen as in adapter-bert)
    full      - every parameter (full fine-tuning)
    top_k     - the top k transformer layers + head ("variable fine-tuning", paper Fig. 3/4)
    layernorm - all LayerNorms + head
    head      - the classification head only
    pfeiffer, lora, ia3, prefix - the adapters (bottleneck or peft's) + head, LayerNorms frozen
    bitfit    - every bias term of the base (LayerNorms' included, the pooler's only with train_pooler) + head
    train_pooler: also train the pooler (full fine-tuning always does). The bundled MiniLM's
    pooler is untrained, so a frozen one is a fixed random projection in front of the head.
    train_layernorm: adapter and pfeiffer only; True/False adds/removes every LayerNorm (None: as listed).
    Everything is checked before any parameter changes.
    """
    if policy not in POLICIES:
        raise UsageError(f"unknown policy {policy!r}; known: {', '.join(POLICIES)}")
    if (policy == "top_k") != (k is not None):
        raise UsageError("k is required for policy 'top_k' and only for it")
    groups = param_groups(model)
    adapted = ("adapter", "pfeiffer", "lora", "ia3", "prefix")
    if policy in adapted and "adapter" not in groups.values():
        raise UsageError(f"policy {policy!r} needs adapters: call adapterlib.add_adapters(model, config) "
                         "(or adapterlib.methods.add_method) first")
    if train_layernorm is not None and policy not in ("adapter", "pfeiffer"):
        raise UsageError(f"train_layernorm applies to policies adapter and pfeiffer, not {policy!r}")
    trained = {
        "adapter": {"adapter", "layernorm", "head"},
        "full": {"adapter", "layernorm", "head", "embedding", "pooler", "other"},
        "top_k": {"head"},
        "layernorm": {"layernorm", "head"},
        "head": {"head"},
        "bitfit": {"head"},
    }.get(policy, {"adapter", "head"})
    if train_layernorm is not None:
        trained = trained | {"layernorm"} if train_layernorm else trained - {"layernorm"}
    if train_pooler:
        if "pooler" not in groups.values():
            raise UsageError("train_pooler: this model has no pooler (head_input='mean' replaces it)")
        trained = trained | {"pooler"}
    layers = transformer_layers(model) if policy == "top_k" else []
    if policy == "top_k" and (isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= len(layers)):
        raise UsageError(f"k must be an integer in 1..{len(layers)} for this model, got {k!r}")
    for name, p in model.named_parameters():
        p.requires_grad_(groups[name] in trained or (policy == "bitfit" and is_base_bias(name, groups[name])))
    if policy == "top_k":
        for layer in layers[len(layers) - k:]:
            layer.requires_grad_(True)
    return model


def is_base_bias(name: str, group: str) -> bool:
    """A bias term of the pre-trained network (what BitFit trains): a `bias` of a LayerNorm or a base layer."""
    return group in ("layernorm", "other", "embedding") and name.rsplit(".", 1)[-1] == "bias"
