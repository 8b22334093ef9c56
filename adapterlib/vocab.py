"""One vocabulary of methods: each method's key, display label, colour, marker and the runs it covers.

Code compares and indexes by key (a record's `policy`, or a Table 1 row's key); every table adapterlib computes
(aggregate.glue_table, glue_selection, glue_gap, size_curve, ...) carries keys, and labels are applied only where a
human reads them (plot legends, printed and displayed tables: display_labels):

    METHODS["full"].label                  # "full fine-tuning"
    METHODS["adapters_budget"].label       # "adapters (within 4%)", from BUDGET_PERCENT when it is read
    METHODS["adapter"].select(runs)        # the rows of a records frame (aggregate.records_frame) it covers
    key_of("adapters (within 4%)")         # "adapters_budget": a label back to its key

Two kinds of entries: every training method (a TrainConfig.method, under the key its records' `policy` has:
"adapter" for houlsby, any other method its own name) and the rows of the Table 1 analog (aggregate.glue_table),
which select runs of the adapter policy by size or by parameter budget. "full" is both.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

BUDGET_PERCENT = 4.0  # issue 14's goal: adapters at no more than this % of the base model's parameters per task
TABLE1_SIZES = (8, 64, 256)  # the paper's adapter sizes of Table 1's "adapters (8-256)"


class Policy(str, Enum):
    """What a run trains, as its record's `policy` names it (TrainConfig.policy; "adapter" is method houlsby)."""

    ADAPTER = "adapter"
    PFEIFFER = "pfeiffer"
    BITFIT = "bitfit"
    LORA = "lora"
    IA3 = "ia3"
    PREFIX = "prefix"
    FULL = "full"
    TOP_K = "top_k"
    LAYERNORM = "layernorm"
    HEAD = "head"

    @property
    def method(self) -> str:
        """The TrainConfig.method of this policy."""
        return "houlsby" if self is Policy.ADAPTER else self.value


def _policy(name: str) -> Callable:
    return lambda df: df["policy"] == name


def _table1_adapters(df):
    return (df["policy"] == Policy.ADAPTER.value) & df["adapter_size"].isin(TABLE1_SIZES)


def _within_budget(df):
    # the sizes of 8-256 that train at most BUDGET_PERCENT of the base per task (MiniLM: 8 and 64; m=256 is 10.5%)
    return _table1_adapters(df) & (df["percent_of_base"] <= BUDGET_PERCENT)


@dataclass(frozen=True)
class Method:
    """One entry of METHODS. `name` is the label, or a format string of BUDGET_PERCENT ("{budget:g}")."""

    key: str
    name: str
    color: str
    select: Callable      # records frame -> boolean Series of the runs this entry covers
    marker: str = "o"
    legend: str | None = None  # the score-vs-parameters plots' legend name, where it is not the label
    size_chosen: bool = False  # a Table 1 row whose adapter size is chosen on validation per task

    @property
    def label(self) -> str:
        return self.name.format(budget=BUDGET_PERCENT)


_ENTRIES = [
    # training methods, under their policy
    Method("full", "full fine-tuning", "tab:red", _policy("full"), marker="*"),
    Method("adapter", "adapters", "tab:green", _policy("adapter"), legend="adapters (size m)"),
    Method("top_k", "top-k fine-tuning", "tab:blue", _policy("top_k"), marker="s", legend="fine-tune top k layers"),
    Method("layernorm", "LayerNorm only", "tab:purple", _policy("layernorm"), marker="^"),
    Method("head", "head only", "tab:gray", _policy("head"), marker="v"),
    Method("pfeiffer", "Pfeiffer adapters", "tab:olive", _policy("pfeiffer"), marker="P"),
    Method("bitfit", "BitFit (biases)", "tab:brown", _policy("bitfit"), marker="X"),
    Method("lora", "LoRA", "tab:orange", _policy("lora"), marker="D"),
    Method("ia3", "(IA)3", "tab:pink", _policy("ia3"), marker="h"),
    Method("prefix", "prefix tuning", "#8c564b", _policy("prefix"), marker="<"),
    # the rows of the Table 1 analog (besides "full"), in the table's order after it
    Method("adapters_8_256", "adapters (8-256)", "#74c476", _table1_adapters, size_chosen=True),
    Method("adapters_budget", "adapters (within {budget:g}%)", "tab:cyan", _within_budget, size_chosen=True),
    Method("adapters_64", "adapters (64)", "tab:green",
           lambda df: (df["policy"] == Policy.ADAPTER.value) & (df["adapter_size"] == 64)),
]
METHODS: dict[str, Method] = {m.key: m for m in _ENTRIES}
TRAINING = tuple(p.value for p in Policy)  # the keys of the training methods (records' policies)
TABLE1 = ("full", "adapters_8_256", "adapters_budget", "adapters_64")  # Table 1's rows, in order
CURVE = ("full", "adapter", "top_k", "layernorm", "head")  # the methods of the size curves, in order


def label(key: str) -> str:
    """The display label of a key (an unknown key is its own label)."""
    return METHODS[key].label if key in METHODS else key


def key_of(label_or_key: str) -> str:
    """The key of a display label (or of a key); an unknown name is returned as it is."""
    if label_or_key in METHODS:
        return label_or_key
    return next((k for k, m in METHODS.items() if m.label == label_or_key), label_or_key)


def color(label_or_key: str, default: str = "black") -> str:
    key = key_of(label_or_key)
    return METHODS[key].color if key in METHODS else default


def display_labels(table, column: str = "method"):
    """A copy of `table` for a human to read: the method keys of its `column` column, and of its index when the
    index is named `column`, replaced by their display labels (label). Tables are computed and indexed by key;
    only what is shown is labelled."""
    table = table.copy()
    if column in table.columns:
        table[column] = table[column].map(label)
    if table.index.name == column:
        table.index = table.index.map(label)
    return table
