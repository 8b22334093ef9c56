"""The name of a run: `run_id(cfg)`, a few readable settings plus a hash of the whole TrainConfig.

A module of its own (adapterlib.train re-exports both names) so that planning a sweep, reading its status or
finding a course run names runs without importing the trainer and its libraries.
"""
from __future__ import annotations

import hashlib
import json

from .config import TrainConfig
from .data import get_task


def run_id(cfg: TrainConfig) -> str:
    """Readable, unique name of a run: a few key settings plus a hash of the whole config.

    Recipe options added later (`TrainConfig.LEGACY_DEFAULTS`) enter the hash only when they
    differ from what earlier runs had, so the ids of committed records stay valid.
    """
    digest = hashlib.sha1(json.dumps(cfg.identity(), sort_keys=True).encode()).hexdigest()[:8]
    size = f"-m{cfg.adapter_size}" if cfg.policy == "adapter" else f"-k{cfg.top_k}" if cfg.policy == "top_k" else ""
    size = method_label(cfg) or size
    recipe = (f"-{cfg.head_input}" if cfg.head_input != "pooler" else "") + ("-tp" if cfg.train_pooler else "") \
        + (f"-es{cfg.patience}" if cfg.patience else "") \
        + (f"-{cfg.mixed_precision}" if cfg.mixed_precision != "no" else "")
    return f"{get_task(cfg.task).name}-{cfg.policy}{size}-lr{cfg.lr:g}-s{cfg.seed}{recipe}-{digest}"


def method_label(cfg: TrainConfig) -> str:
    """The run id's part for the methods' options (empty for every run made before `method` existed)."""
    size = {"pfeiffer": f"-m{cfg.adapter_size}", "lora": f"-r{cfg.lora_r}", "prefix": f"-p{cfg.prefix_length}"}
    label = size.get(cfg.method, "")
    if cfg.method in ("houlsby", "pfeiffer"):
        label = (f"-m{cfg.adapter_size}" if cfg.method == "houlsby" and label == "" else label) \
            + (f"-{cfg.nonlinearity}" if cfg.nonlinearity != "gelu" else "") \
            + ({True: "-ln", False: "-noln"}[cfg.train_layernorm] if cfg.train_layernorm is not None else "")
    return label
