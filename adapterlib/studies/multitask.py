"""Many tasks, one model: task checkpoints that take turns on one shared, frozen base.

    bank = AdapterBank(model)                     # model: base + adapters, policy "adapter"
    record = bank.train_task(cfg, tokenizer, "runs/bank/sst2")   # trains on THIS model object
    bank.train_task(cfg_cola, tokenizer, "runs/bank/cola")       # sst2's weights are untouched
    bank.activate("sst2")                         # load_adapter: swap adapters + LayerNorms + head

Each task trains only its own adapters, LayerNorms and classifier (the paper's trained set);
everything else is frozen and shared, so a new task can never change what an earlier one
learned. Before each task the bank resets those parameters to the starting point it saw at
construction (pre-trained LayerNorms, near-identity adapters, a fresh head).
"""
from __future__ import annotations

import hashlib
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from accelerate.utils import set_seed
from safetensors.torch import save_file

from .. import fast as speedups
from ..checkpoint import DEFAULT_GROUPS, WEIGHTS_NAME, load_adapter, read_adapter_config, save_adapter, trained_state
from ..config import TrainConfig
from ..data import get_task, load_glue
from ..errors import UsageError
from ..heads import head_input
from ..params import param_report
from ..policies import param_groups, set_trainable
from ..record import RunRecord
from ..train import fit, run_id, run_record


def frozen_fingerprint(model) -> str:
    """sha256 over the shared parameters (everything outside adapters, LayerNorms and head)."""
    groups = param_groups(model)
    h = hashlib.sha256()
    for name, p in sorted(model.named_parameters()):
        if groups[name] not in DEFAULT_GROUPS:
            h.update(name.encode())
            h.update(p.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def probe_batch(task, tokenizer, n: int = 16, split: str = "dev", glue_dir=None, max_length: int = 128) -> dict:
    """The first `n` examples of a split as one padded batch (model inputs only), for logit fingerprints."""
    spec = get_task(task)
    ds = load_glue(spec, glue_dir, splits=[split])[split]
    ds = ds.select(range(min(n, len(ds))))
    texts = [list(ds[c]) for c in (("text_a", "text_b") if spec.is_pair else ("text_a",))]
    return dict(tokenizer(*texts, truncation=True, max_length=max_length, padding=True, return_tensors="pt"))


@torch.no_grad()
def task_logits(model, batch: dict) -> torch.Tensor:
    """Logits of `model` (in eval mode) on `batch`, on the CPU."""
    model.eval()
    device = next(model.parameters()).device
    return model(**{k: v.to(device) for k, v in batch.items()}).logits.cpu()


class AdapterBank:
    """Named task checkpoints (folders written by `save_adapter`) for one shared base model.

    Only one task is active at a time: `activate(name)` copies that task's tensors into the
    model; the shared frozen weights are never written.
    """

    def __init__(self, model):
        if not any(g == "adapter" for g in param_groups(model).values()):
            raise UsageError("the model has no adapters: call adapterlib.add_adapters(model, cfg) first")
        self.model = model
        self.paths: dict[str, Path] = {}
        self.active: str | None = None
        self._start = trained_state(model)  # every task starts from here

    def __contains__(self, name) -> bool:
        return name in self.paths

    @property
    def names(self) -> list[str]:
        return list(self.paths)

    def add(self, name: str, path) -> None:
        """Register an existing checkpoint folder (validated now, loaded on `activate`)."""
        read_adapter_config(path)
        self.paths[name] = Path(path)

    def save(self, name: str, path, metadata: dict | None = None) -> Path:
        """Save the model's current task parameters as task `name` and register them."""
        self.paths[name] = save_adapter(self.model, path, metadata={"task": name, **(metadata or {})})
        self.active = name
        return self.paths[name]

    def activate(self, name: str):
        """Load task `name`'s adapters, LayerNorms and head into the shared model; returns the model."""
        if name not in self.paths:
            raise KeyError(f"no checkpoint for task {name!r}; known: {', '.join(self.paths) or 'none'}")
        load_adapter(self.model, self.paths[name])
        self.active = name
        return self.model

    def reset(self) -> None:
        """Put the task parameters back at the bank's starting point (before training a new task)."""
        params = dict(self.model.named_parameters())
        with torch.no_grad():
            for name, tensor in self._start.items():
                params[name].copy_(tensor)
        self.active = None

    def train_task(self, cfg: TrainConfig, tokenizer, path, progress: bool = False, fast: bool = True) -> RunRecord:
        """Train task `cfg.task` on the shared model (policy adapter), save it to `path`, register it.

        The same recipe as `adapterlib.train` (model selection on the held-out validation slice,
        GLUE dev reported) but on this model object instead of a freshly loaded one.
        fast: as in `adapterlib.train`, switch the model to `adapterlib.speed_up`'s exact CPU dropout
        and attention (no weight changes; evaluation is unaffected) and tune malloc while training;
        fast=False runs the stock modules (undoing an earlier task's speed-up, `slow_down`).
        The shared model's head input (`adapterlib.heads.set_head_input`) must be cfg.head_input.
        Returns its run record (a RunRecord, as `adapterlib.train` does), with `checkpoint` the folder `path`
        and `speedups`: what this task ran with (`fast.active` of the model, malloc_tuned).
        """
        if cfg.policy != "adapter":
            raise UsageError(f"an AdapterBank trains policy 'adapter' only, got {cfg.policy!r}")
        spec, start = get_task(cfg.task), time.time()
        if spec.num_labels != self.model.config.num_labels:
            raise UsageError(f"{spec.display} has {spec.num_labels} labels, the shared model's head has "
                             f"{self.model.config.num_labels}; use tasks with the same number of labels")
        if cfg.mixed_precision != "no":
            raise UsageError("AdapterBank.train_task runs in full precision (mixed_precision='no')")
        if cfg.head_input != head_input(self.model) or cfg.train_pooler:
            raise UsageError(f"the task's config asks for head_input={cfg.head_input!r}"
                             f"{', train_pooler' if cfg.train_pooler else ''}; the shared model's head reads "
                             f"{head_input(self.model)!r} (set it with adapterlib.heads.set_head_input before "
                             "building the bank; a bank never trains the shared pooler)")
        self.reset()
        if fast:
            speedups.speed_up(self.model)   # adapterlib.speed_up, the public speed path
        else:
            speedups.slow_down(self.model)  # a model sped up for an earlier task runs stock modules now
        set_trainable(self.model, "adapter")
        set_seed(cfg.seed)
        with speedups.malloc_tuned(fast) as malloc_tuned:
            result = fit(self.model, tokenizer, cfg, progress)  # full precision on one device: the same object
        if result.model is not self.model:
            raise RuntimeError("accelerate wrapped the shared model; AdapterBank needs one device, no wrapper")
        self.save(spec.name, path, metadata={"run_id": run_id(cfg)})
        record = run_record(cfg, result, start)
        record.update(checkpoint=str(path),
                      speedups={"fast_modules": fast, "malloc_tuned": malloc_tuned, **speedups.active(self.model)})
        return RunRecord.from_json(record)


def checkpoint_bytes(path) -> int:
    """Size on disk of a task checkpoint folder (weights + JSON)."""
    return sum(f.stat().st_size for f in Path(path).iterdir() if f.is_file())


def checkpoint_contents(model, path) -> pd.DataFrame:
    """What a task checkpoint holds, by parameter group of `model`: tensors and parameters."""
    from safetensors import safe_open

    groups = param_groups(model)
    rows = {}
    with safe_open(str(Path(path) / WEIGHTS_NAME), framework="pt") as f:
        for name in f.keys():
            shape = f.get_slice(name).get_shape()
            row = rows.setdefault(groups[name], {"group": groups[name], "tensors": 0, "params": 0})
            row["tensors"] += 1
            row["params"] += int(np.prod(shape))
    return pd.DataFrame(sorted(rows.values(), key=lambda r: DEFAULT_GROUPS.index(r["group"])
                               if r["group"] in DEFAULT_GROUPS else len(DEFAULT_GROUPS)))


def saved_bytes(model, groups) -> int:
    """Measured size of the parameters in `groups` saved as one safetensors file."""
    by_group = param_groups(model)
    state = {n: p.detach().contiguous() for n, p in model.named_parameters() if by_group[n] in groups}
    with tempfile.TemporaryDirectory() as tmp:
        save_file(state, str(Path(tmp) / WEIGHTS_NAME))
        return (Path(tmp) / WEIGHTS_NAME).stat().st_size


BASE_GROUPS = ("embedding", "layernorm", "pooler", "other")  # the pre-trained network (no adapters, no head)


def storage_cost(model, checkpoints: dict) -> pd.DataFrame:
    """Storage for the tasks in `checkpoints` ({task: folder}): one base + N checkpoints vs N full models.

    Bytes are real file sizes: the checkpoint folders as written, the pre-trained base saved once,
    and one fully fine-tuned model (base + head) saved once and counted N times. Parameters come
    from `param_report(model)` under policy "adapter": frozen + N x trainable vs N x (base + head).
    One row per setup and task count n = 1..N.
    """
    report = param_report(model)
    base_bytes = saved_bytes(model, BASE_GROUPS)
    full_bytes = saved_bytes(model, (*BASE_GROUPS, "head"))
    sizes = [checkpoint_bytes(p) for p in checkpoints.values()]
    rows = []
    for n in range(1, len(sizes) + 1):
        rows.append({"setup": "adapters: one base + n checkpoints", "n_tasks": n, "shared_bytes": base_bytes,
                     "per_task_bytes": sum(sizes[:n]), "params": report.stored_params(n),
                     "multiple_of_base": report.total_multiple(n)})
        rows.append({"setup": "full fine-tuning: n models", "n_tasks": n, "shared_bytes": 0,
                     "per_task_bytes": n * full_bytes, "params": report.stored_params(n, shared_base=False),
                     "multiple_of_base": report.total_multiple(n, shared_base=False)})
    df = pd.DataFrame(rows)
    df["total_bytes"] = df["shared_bytes"] + df["per_task_bytes"]
    df["total_MB"] = df["total_bytes"] / 1e6
    return df

