"""Parameter accounting: what a task costs, in the groups adapter-bert trains.

Works on a weightless `meta` model, so BERT-base/large counts are exact without a download.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass

from torch import nn

from .policies import param_groups


@dataclass
class ParamReport:
    """Parameter counts of one model under its current trainable set.

    total      all parameters (base + adapters + head)
    trainable  parameters with requires_grad (what one task trains and must store)
    adapter / layernorm / head / pooler / other: trainable parameters by group
    frozen     total - trainable (shared by every task)
    base       the pre-trained network alone (no adapters, no head)
    embedding  the base's embedding tables (word, position, token-type)
    """

    total: int
    trainable: int
    adapter: int
    layernorm: int
    head: int
    other: int
    frozen: int
    base: int
    embedding: int
    adapter_total: int  # every adapter parameter, trainable or not
    pooler: int = 0     # trainable pooler parameters (train_pooler, or full fine-tuning)

    @property
    def base_no_embedding(self) -> int:
        return self.base - self.embedding

    @property
    def percent_of_base(self) -> float:
        """Trainable parameters per task as % of the pre-trained model."""
        return 100.0 * self.trainable / self.base

    @property
    def percent_of_base_head_aside(self) -> float:
        """Trainable parameters per task without the new classifier head, as % of the pre-trained model: exactly
        100 for full fine-tuning. The head (hidden x labels + labels) is new: the base never had it, so counting it
        would read 100.003% for full fine-tuning of MiniLM (770 head parameters over 22.7M)."""
        return 100.0 * (self.trainable - self.head) / self.base

    @property
    def percent_total_head_aside(self) -> float:
        """All parameters (base + adapters + head) without the new head, as % of the base: exactly 100 for full
        fine-tuning, 100 + the adapters' share with adapters."""
        return 100.0 * (self.total - self.head) / self.base

    @property
    def percent_of_base_no_embedding(self) -> float:
        """As % of the base without embedding tables (the paper's '2.1%' for size 64)."""
        return 100.0 * self.trainable / self.base_no_embedding

    def stored_params(self, n_tasks: int, shared_base: bool = True) -> int:
        """Parameters stored for n tasks. With a shared base (adapters, any frozen-base policy) the frozen
        parameters are stored once and each task adds its trainable set; without (full fine-tuning),
        each task stores a whole model: the base and its head."""
        if shared_base:
            return stored_params(self.frozen, [self.trainable] * n_tasks)
        return stored_params(0, [self.base + self.head] * n_tasks)

    def total_multiple(self, n_tasks: int, shared_base: bool = True) -> float:
        """Storage for n tasks relative to one pre-trained model (paper Table 1: 9x vs 1.3x)."""
        return storage_multiple(self.stored_params(n_tasks, shared_base), self.base)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(base_no_embedding=self.base_no_embedding, percent_of_base=self.percent_of_base,
                 percent_of_base_head_aside=self.percent_of_base_head_aside,
                 percent_of_base_no_embedding=self.percent_of_base_no_embedding)
        return d

    def __str__(self) -> str:
        rows = [("adapters", self.adapter), ("layernorm", self.layernorm), ("head", self.head),
                *([("pooler", self.pooler)] if self.pooler else []), ("other", self.other), ("trainable", self.trainable), ("frozen", self.frozen),
                ("total", self.total)]
        def percent(name, n):  # the head is new (not part of the base): the trainable row counts it aside
            if name == "head":
                return f"{'new':>10}"
            share = {"trainable": self.percent_of_base_head_aside,  # both hold the new head: left aside
                     "total": self.percent_total_head_aside}.get(name, 100.0 * n / self.base)
            return f"{share:>9.3f}%"

        lines = [f"{'group':<10} {'params':>13} {'% of base':>10}"]
        lines += [f"{name:<10} {n:>13,} {percent(name, n)}" for name, n in rows]
        lines.append(f"base model {self.base:,} ({self.base_no_embedding:,} without embeddings); "
                     f"trainable = {self.percent_of_base_no_embedding:.2f}% of the non-embedding base; "
                     f"% of base leaves out the task's new classifier head ({self.head:,})")
        return "\n".join(lines)


def stored_params(frozen: int, trained_per_task) -> int:
    """The storage formula (paper Table 1's "total" column), the one place it is written: the frozen
    parameters are stored once and every task stores its own trained set."""
    return int(frozen) + int(sum(trained_per_task))


def storage_multiple(stored: int, base: int) -> float:
    """Stored parameters in units of one pre-trained model (9x for full fine-tuning on 9 tasks)."""
    return stored / base


def param_report(model: nn.Module) -> ParamReport:
    """Count parameters by group (see adapterlib.policies) under the current trainable set."""
    groups = param_groups(model)
    all_by_group, trainable_by_group = Counter(), Counter()
    for name, p in model.named_parameters():
        all_by_group[groups[name]] += p.numel()
        if p.requires_grad:
            trainable_by_group[groups[name]] += p.numel()
    total = sum(all_by_group.values())
    trainable = sum(trainable_by_group.values())
    return ParamReport(
        total=total, trainable=trainable,
        adapter=trainable_by_group["adapter"], layernorm=trainable_by_group["layernorm"],
        head=trainable_by_group["head"],
        other=trainable_by_group["other"] + trainable_by_group["embedding"],
        frozen=total - trainable,
        base=total - all_by_group["adapter"] - all_by_group["head"],
        embedding=all_by_group["embedding"], adapter_total=all_by_group["adapter"],
        pooler=trainable_by_group["pooler"],
    )


def adapter_param_formula(hidden: int, size: int, n_layers: int, per_layer: int = 2) -> int:
    """Closed form from the paper: per_layer · L · (2·m·d + d + m)."""
    return per_layer * n_layers * (2 * size * hidden + hidden + size)
