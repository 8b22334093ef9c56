"""Houlsby adapters and their successors, one name each (`TrainConfig.method`), under one training loop.

    houlsby   two bottleneck adapters per layer + every LayerNorm + head (the paper; policy "adapter")
    pfeiffer  ONE bottleneck adapter per layer, after the feed-forward block, + head (Pfeiffer et al. 2021;
              AdapterHub's "pfeiffer"/SeqBn preset): adapterlib's own adapters at placement "ffn"
    bitfit    every bias term of the base, LayerNorms' included, + head (Ben Zaken et al. 2022)
    lora      peft's LoRA (Hu et al. 2022) on peft's default targets for the model type (BERT: query, value),
              rank `lora_r`, peft's alpha and dropout, + head
    ia3       peft's (IA)3 (Liu et al. 2022) on peft's default targets (BERT: key, value, output.dense) + head
    prefix    peft's prefix tuning (Li & Liang 2021): `prefix_length` trained key/value vectors per layer + head
    full, top_k, layernorm, head: as adapterlib.policies

LoRA, (IA)3 and prefix tuning are peft's own modules, not re-implementations; peft is imported only
when one of them is applied. The model stays the HuggingFace model: LoRA and (IA)3 layers are
injected in place (`peft.inject_adapter_in_model`), and prefix tuning's prefixes (peft's
`PrefixEncoder`, called through peft's `get_prompt`) are a submodule `prefix_encoder` that a forward
pre-hook hands to the encoder as its key/value cache, as peft's own `PeftModelForSequenceClassification` does. So
`param_groups`, `param_report`, checkpoints, heads and `adapterlib.fast` work on every method alike.
The head is trained by adapterlib's policies (peft's `modules_to_save` copy is not used).

Prefix tuning on BERT, as peft runs it (and so here, bit for bit): transformers numbers a batch's tokens
after the cached prefix, so with p virtual tokens the real tokens take absolute positions p, p+1, ...
instead of 0, 1, ...; max_length + p must fit the model's position table (`add_method` checks it).
"""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from torch import nn

from .config import ADAPTER_METHODS, PEFT_METHODS, TrainConfig, policy_of_method
from .errors import UnsupportedModelError
from .inject import add_adapters
from .policies import param_groups, set_trainable

# What each method trains, in words (a run record's `trained.description`).
TRAINS = {
    "houlsby": "bottleneck adapters (2 per layer) + LayerNorms + head",
    "pfeiffer": "bottleneck adapters (1 per layer, after the feed-forward block) + head",
    "bitfit": "every bias term of the base (LayerNorms' included) + head",
    "lora": "LoRA matrices A, B (peft) + head",
    "ia3": "(IA)3 scaling vectors (peft) + head",
    "prefix": "prefix key/value vectors in every layer (peft) + head",
    "full": "every parameter",
    "top_k": "the top k transformer layers + head",
    "layernorm": "LayerNorms + head",
    "head": "head",
}


def peft_version() -> str | None:
    """The installed peft's version (without importing it), or None."""
    try:
        return version("peft")
    except PackageNotFoundError:
        return None


def peft_settings(method: str, model: nn.Module, lora_r: int | None = None, prefix_length: int | None = None) -> dict:
    """The explicit peft options of `method` on `model` (peft's defaults for its type, made explicit so a checkpoint
    rebuilds exactly these modules whatever a later peft's defaults are). UnsupportedModelError if peft has none."""
    from peft.utils import constants

    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if method == "prefix":
        return {"method": "prefix", "num_virtual_tokens": prefix_length or 20}
    table = {"lora": constants.TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING,
             "ia3": constants.TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING}[method]
    if model_type not in table:
        raise UnsupportedModelError(f"peft {peft_version()} cannot apply method {method!r} to model type "
                                    f"{model_type!r} (it has no default target modules for it); use another method or "
                                    "a model type peft covers (bert, roberta, ...)")
    if method == "lora":
        from peft import LoraConfig
        defaults = LoraConfig(r=lora_r or 8)
        return {"method": "lora", "r": defaults.r, "lora_alpha": defaults.lora_alpha,
                "lora_dropout": defaults.lora_dropout, "target_modules": sorted(table[model_type])}
    return {"method": "ia3", "target_modules": sorted(table[model_type]),
            "feedforward_modules": sorted(constants.TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING[model_type])}


def add_peft(model: nn.Module, settings: dict) -> nn.Module:
    """Add peft's modules for `settings` (from `peft_settings`) to `model`, in place; returns the model."""
    if getattr(model, "peft_settings", None) is not None:
        raise UnsupportedModelError("the model already has peft modules; load a fresh base model")
    options = {k: v for k, v in settings.items() if k != "method"}
    if settings["method"] == "prefix":
        _add_prefix(model, options["num_virtual_tokens"])
    else:
        import peft
        config = (peft.LoraConfig if settings["method"] == "lora" else peft.IA3Config)(**options)
        try:
            peft.inject_adapter_in_model(config, model)
        except ValueError as e:  # a target module the model lacks
            raise UnsupportedModelError(f"peft cannot apply {settings['method']} to this model: "
                                        f"{str(e).splitlines()[0]}") from None
    model.peft_settings = dict(settings)
    return model


def _add_prefix(model: nn.Module, n_tokens: int) -> None:
    import torch
    from peft import PeftModel, PrefixTuningConfig
    from peft.import_utils import get_transformers_cache_name
    try:
        prompter = PeftModel(model, PrefixTuningConfig(num_virtual_tokens=n_tokens))
    except (ValueError, AttributeError, KeyError) as e:  # a config without the sizes peft reads
        raise UnsupportedModelError(f"peft cannot apply prefix tuning to model type "
                                    f"{getattr(model.config, 'model_type', None)!r}: "
                                    f"{str(e).splitlines()[0]}") from None
    model.prefix_encoder = prompter.prompt_encoder  # its parameters belong to the model (optimizer, state_dict)
    cache = get_transformers_cache_name()  # "cache" from transformers 5.24, "past_key_values" before

    def add_prefix(module, args, kwargs):
        # what PeftModelForSequenceClassification does for a classifier whose forward takes no cache (BERT's):
        # the backbone gets peft's prefix as its key/value cache, and the attention mask lets every token see it
        ids = kwargs.get("input_ids", args[0] if args else None)
        batch = (ids if ids is not None else kwargs["inputs_embeds"]).shape[0]
        kwargs[cache] = prompter.get_prompt(batch)
        mask = kwargs.get("attention_mask")
        if mask is not None:
            kwargs["attention_mask"] = torch.cat([mask.new_ones(batch, n_tokens), mask], dim=1)
        return args, kwargs

    model.base_model.register_forward_pre_hook(add_prefix, with_kwargs=True)


def add_method(model: nn.Module, cfg: TrainConfig) -> nn.Module:
    """Add the modules of `cfg.method` (bottleneck adapters or peft's) and set its trainable set; returns the model."""
    if cfg.method in ADAPTER_METHODS:
        add_adapters(model, cfg.adapter_config())
    elif cfg.method in PEFT_METHODS:
        positions = getattr(model.config, "max_position_embeddings", None)
        if cfg.method == "prefix" and positions and cfg.max_length + cfg.prefix_length > positions:
            # transformers numbers the tokens after the cached prefix: they take positions prefix_length onwards
            raise UnsupportedModelError(f"prefix tuning shifts the tokens' positions by --prefix-length "
                                        f"{cfg.prefix_length}: with --max-length {cfg.max_length} they need "
                                        f"{cfg.max_length + cfg.prefix_length}, the model has {positions}")
        add_peft(model, peft_settings(cfg.method, model, cfg.lora_r, cfg.prefix_length))
    set_trainable(model, policy_of_method(cfg.method), k=cfg.top_k if cfg.method == "top_k" else None,
                  train_pooler=cfg.train_pooler,
                  train_layernorm=cfg.train_layernorm if cfg.method in ADAPTER_METHODS else None)
    model.adapterlib_method = cfg.method  # what checkpoints and records name
    return model


def trained_summary(model: nn.Module, method: str | None = None) -> dict:
    """What a run trained: its method, the trainable parameters per group, and in words (a record's `trained`)."""
    groups, counts = param_groups(model), {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            counts[groups[name]] = counts.get(groups[name], 0) + p.numel()
    method = method or getattr(model, "adapterlib_method", None)
    return {"method": method, "groups": dict(sorted(counts.items())), "description": TRAINS.get(method),
            **({"peft": model.peft_settings} if getattr(model, "peft_settings", None) else {})}
