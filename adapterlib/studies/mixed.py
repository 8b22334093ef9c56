"""Mixed-task batched inference: one frozen base serves a batch that mixes several tasks' examples.

    mixed = MixedTaskModel.from_bank(bank)                      # or MixedTaskModel(model, {"sst2": path, ...})
    logits = mixed(batch, tasks=["sst2", "cola", "sst2", ...])  # one 1-D logits tensor per example, in order

Every task's checkpoint (adapters, LayerNorms, head: whatever its method trained) stays resident beside
the one shared copy of the frozen base. Each module that a checkpoint changes is replaced by a
`RoutedModule` holding one copy per task (its frozen tensors shared with the base, only the task's own
tensors per copy; a bottleneck adapter is routed whole), and a `Router` says which task runs. A mixed batch
is split by task (what AdapterHub's `BatchSplit` does), each group is cut to its own longest example, and runs
with its task's modules, so each example gets exactly the computation per-task inference gives it: the logits are
bit for bit the same (tests/test_methods.py). Heads may differ in label count.

Why not run the frozen layers once on the whole mixed batch (peft's `adapter_names` does, for LoRA)?
The adapters sit inside every layer, so the hidden states differ per task from the first adapter on;
and a matrix multiply over more rows may round differently on the CPU (a different kernel blocking),
which would break bit-identity. What a resident bank saves is the swap: no checkpoint is copied
into the model between tasks (`AdapterBank.activate`), and no per-task batches are assembled
upstream. `mixed_throughput` measures it against per-task batches.
"""
from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from ..checkpoint import WEIGHTS_NAME, base_signature, read_adapter_config
from ..errors import UsageError
from ..heads import head_input
from ..modules import Adapter
from .multitask import AdapterBank, task_logits  # noqa: F401 (AdapterBank: from_bank)


class Router:
    """Which task's modules run now (set by MixedTaskModel around each group)."""

    def __init__(self):
        self.task: str | None = None


class RoutedModule(nn.Module):
    """One copy of a module per task; runs the copy of `router.task`. Attributes it lacks (a wrapped Linear's
    `weight`, which peft's LoRA layer reads) are the routed copy's (the first task's outside a forward)."""

    def __init__(self, copies: dict[str, nn.Module], router: Router):
        super().__init__()
        self.tasks = nn.ModuleDict(copies)
        self.router = router

    def forward(self, *args, **kwargs):
        if self.router.task is None:
            raise UsageError("a routed module ran outside MixedTaskModel (no task is routed)")
        return self.tasks[self.router.task](*args, **kwargs)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            tasks, router = self.__dict__["_modules"].get("tasks"), self.__dict__.get("router")
            if tasks is None or router is None:
                raise
            return getattr(tasks[router.task] if router.task is not None else next(iter(tasks.values())), name)


def _task_copy(module: nn.Module, tensors: dict[str, torch.Tensor]) -> nn.Module:
    """A copy of `module` with `tensors` ({parameter name inside it: tensor}) as its own parameters; every
    other parameter stays the very tensor of `module` (shared frozen weights, no memory)."""
    shared = {id(p): p for name, p in module.named_parameters() if name not in tensors}
    twin = copy.deepcopy(module, shared)
    for name, tensor in tensors.items():
        path, _, param = name.rpartition(".")
        owner = twin.get_submodule(path) if path else twin
        owner._parameters[param] = nn.Parameter(tensor, requires_grad=False)
        if isinstance(owner, nn.Linear) and param == "weight":  # a head with another label count
            owner.out_features = tensor.shape[0]
    return twin


class MixedTaskModel(nn.Module):
    """A base model with every task's checkpoint resident; routes each example to its own task (in place)."""

    def __init__(self, model: nn.Module, checkpoints: dict[str, str | Path]):
        super().__init__()
        if not checkpoints:
            raise UsageError("MixedTaskModel needs at least one task checkpoint")
        self.model, self.router = model.eval(), Router()
        per_task = {task: self._read(task, path) for task, path in checkpoints.items()}
        owners = {task: _by_owner(model, state) for task, state in per_task.items()}
        first = next(iter(owners.values()))
        for task, owned in owners.items():
            if set(owned) != set(first):
                raise UsageError(f"checkpoint of task {task!r} changes other modules than the first task's "
                                 "(every task must use the same method and adapter settings)")
        for path in sorted(first):
            module = model.get_submodule(path)
            if isinstance(module, (nn.ParameterDict, nn.ParameterList)):  # indexed, never called: cannot route
                raise UsageError(f"{path} is a parameter container that the model indexes, not a module it calls "
                                 "(peft's (IA)3 vectors); MixedTaskModel routes modules only")
            routed = RoutedModule({task: _task_copy(module, owned[path]) for task, owned in owners.items()},
                                  self.router)
            parent, _, attr = path.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, attr, routed)
        self.tasks = list(checkpoints)

    def _read(self, task: str, path) -> dict[str, torch.Tensor]:
        if not task or "." in task:
            raise UsageError(f"task names must be non-empty and without '.', got {task!r}")
        meta = read_adapter_config(path)
        ours = {k: v for k, v in base_signature(self.model).items() if k != "num_labels"}
        theirs = {k: v for k, v in meta["base"].items() if k != "num_labels"}
        if (any(ours.get(k) != v for k, v in theirs.items())
                or meta.get("head_input", "pooler") != head_input(self.model)):
            raise UsageError(f"checkpoint {path} (task {task!r}) was made for another base model or head input")
        state = load_file(str(Path(path) / WEIGHTS_NAME))
        params = dict(self.model.named_parameters())
        missing = sorted(set(state) - set(params))
        if missing:
            raise UsageError(f"checkpoint {path} (task {task!r}) has tensors this model lacks, e.g. {missing[0]} "
                             "(add the same adapters / method to the base first)")
        return state

    @classmethod
    def from_bank(cls, bank: AdapterBank) -> "MixedTaskModel":
        """Every task of `bank`, on a copy of its model (the bank keeps working as before)."""
        return cls(copy.deepcopy(bank.model), dict(bank.paths))

    @torch.no_grad()
    def forward(self, batch: dict, tasks: list[str]) -> list[torch.Tensor]:
        """Logits of every example of `batch` (padded model inputs), each by its own task's modules, in order."""
        n = len(batch["input_ids"])
        if len(tasks) != n:
            raise UsageError(f"{len(tasks)} task names for a batch of {n} examples")
        unknown = sorted(set(tasks) - set(self.tasks))
        if unknown:
            raise UsageError(f"no checkpoint for task(s) {unknown}; known: {', '.join(self.tasks)}")
        out: list[torch.Tensor | None] = [None] * n
        for task, group in task_groups(batch, tasks):
            self.router.task = task
            try:
                logits = task_logits(self.model, group["inputs"])
            finally:
                self.router.task = None
            for row, i in enumerate(group["rows"]):
                out[i] = logits[row]
        return out


def task_groups(batch: dict, tasks: list[str]):
    """(task, {"rows": positions, "inputs": the rows cut to their own longest example}) per task, in first-seen
    order."""
    order = list(dict.fromkeys(tasks))
    mask = batch["attention_mask"]
    for task in order:
        rows = [i for i, t in enumerate(tasks) if t == task]
        index = torch.tensor(rows)
        length = int(mask[index].sum(dim=1).max())  # the group's own padded length ...
        if mask[index][:, length:].any():  # ... with right padding only (left padding: keep every column)
            length = mask.shape[1]
        yield task, {"rows": rows, "inputs": {k: v[index, :length] for k, v in batch.items()}}


def _by_owner(model: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """{module path: {parameter name inside it: tensor}} of a checkpoint's tensors. A tensor's module is the
    bottleneck `Adapter` holding it (its forward reads its own Linears' weights), else its immediate module."""
    adapters = {name for name, m in model.named_modules() if isinstance(m, Adapter)}
    owned: dict[str, dict[str, torch.Tensor]] = {}
    for name, tensor in state.items():
        path, _, param = name.rpartition(".")
        parent = path.rpartition(".")[0]
        if parent in adapters:
            path, param = parent, name[len(parent) + 1:]
        owned.setdefault(path, {})[param] = tensor
    return owned


@dataclass
class MixedThroughput:
    """Mixed-task inference against per-task batches, on the same examples (seconds: best of `repeats`)."""

    examples: int
    tasks: int
    mixed_s: float        # one MixedTaskModel call on the mixed batch
    per_task_s: float     # per task: its own model (or AdapterBank.activate, loading its checkpoint) + its own batch
    repeats: int

    @property
    def speedup(self) -> float:
        """per_task_s / mixed_s: above 1, the resident bank is faster."""
        return self.per_task_s / self.mixed_s

    def to_dict(self) -> dict:
        return {**asdict(self), "speedup": self.speedup,
                "mixed_examples_per_s": self.examples / self.mixed_s,
                "per_task_examples_per_s": self.examples / self.per_task_s}


def mixed_throughput(mixed: MixedTaskModel, per_task: dict, batch: dict, tasks: list[str],
                     repeats: int = 3) -> MixedThroughput:
    """Time `mixed` on a mixed batch against per-task batches of the same examples.

    per_task: {task: the model that serves it alone}, or {task: a function returning it}, e.g.
    `lambda: bank.activate("sst2")` (then the checkpoint swap is timed too, as it happens in serving).
    Seconds are the best of `repeats`; nothing asserts them, they are measured.
    """
    missing = sorted(set(tasks) - set(per_task))
    if missing:
        raise UsageError(f"no per-task model for task(s) {missing}")

    def one_task_at_a_time():
        for task, group in task_groups(batch, tasks):
            model = per_task[task]
            task_logits(model if isinstance(model, nn.Module) else model(), group["inputs"])

    def best(fn):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times)

    mixed_s = best(lambda: mixed(batch, tasks))
    return MixedThroughput(examples=len(tasks), tasks=len(set(tasks)), mixed_s=mixed_s,
                           per_task_s=best(one_task_at_a_time), repeats=repeats)
