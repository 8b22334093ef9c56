"""The cost side of the paper, as tables: what one task trains and what N tasks store (paper Table 1).

    adapter_report("bert-large", 64)              # ParamReport of BERT-large with size-64 adapters
    param_table("bert-large", size=64)            # parameters by group, % of the base
    storage_table("bert-large", size=64, n_tasks=9)  # Table 1's "per task" and "total" columns
    cost_table(("bert-large", "minilm"), sizes=(8, 64, 256))  # both, several sizes, with the paper's numbers
    cost_table(("bert-large", "minilm"), head_input={"minilm": "mean"})  # MiniLM as the v2 studies train it

`head_input="mean"` counts the model as `TrainConfig(head_input="mean")` builds it: the pooler is replaced by
parameter-free mean pooling, so its weights leave the base and full fine-tuning trains that much less
(adapterlib.heads).

Counts come from weightless `meta` models (adapterlib.model_from_preset): BERT-large costs no download
and no memory; each (model, size) pair is built once and cached. The storage arithmetic is
adapterlib.params.stored_params, the one place it is written.
"""
from __future__ import annotations

from functools import lru_cache

import pandas as pd

from ..config import AdapterConfig
from ..heads import set_head_input
from ..inject import add_adapters
from ..models import model_from_preset
from ..params import ParamReport, param_report
from ..policies import set_trainable
from ..vocab import key_of

MODELS = {"MiniLM-L6 (bundled)": "minilm", "BERT-base": "bert-base", "BERT-large": "bert-large"}
SIZES = tuple(2 ** k for k in range(10))  # the paper's Fig. 3/4 sweep: 1 .. 512


@lru_cache(maxsize=None)
def adapter_report(model: str, size: int, head_input: str = "pooler") -> ParamReport:
    """ParamReport of `model` (a MODEL_PRESETS key) with size-`size` adapters, policy "adapter", the
    classifier reading `head_input` ("pooler": BERT's pooler over [CLS]; "mean": the token mean, no pooler)."""
    net = set_head_input(model_from_preset(model, device="meta"), head_input)
    add_adapters(net, AdapterConfig(size=size))
    set_trainable(net, "adapter")
    return param_report(net)


def param_table(model: str = "bert-base", size: int = 64) -> pd.DataFrame:
    """Parameters by group with adapters of `size` (policy "adapter"), as in adapter-bert.

    Rows: adapters, layernorm, head (trained per task), their sum, frozen (shared), total.
    """
    r = adapter_report(model, size)
    rows = [("adapters", r.adapter), ("layernorm", r.layernorm), ("head", r.head),
            ("trainable per task", r.trainable), ("frozen (shared)", r.frozen), ("total", r.total)]
    table = pd.DataFrame(rows, columns=["group", "parameters"]).set_index("group")
    table["% of base"] = (100.0 * table["parameters"] / r.base).round(3)
    table.loc["head", "% of base"] = float("nan")  # new parameters, not part of the base
    table.loc["trainable per task", "% of base"] = round(r.percent_of_base_head_aside, 3)
    table.loc["total", "% of base"] = round(r.percent_total_head_aside, 3)
    return table


def storage_table(model: str = "bert-base", size: int = 64, n_tasks: int = 9,
                  head_input: str = "pooler") -> pd.DataFrame:
    """Per-task cost and storage for `n_tasks` tasks: full fine-tuning vs adapters (paper Table 1).

    "% of non-embedding base" is the paper's convention for adapters (2.1% for BERT-large, m=64).
    Storage counts the frozen parameters once plus every task's trained set, in base models. "% of base"
    leaves out the task's new classifier head ("of which new head"): full fine-tuning trains 100% of the base.
    """
    r = adapter_report(model, size, head_input)
    full_per_task = r.base + r.head  # every base parameter plus the new head
    rows = [
        ("full fine-tuning", full_per_task, r.head, 100.0, None, r.total_multiple(n_tasks, shared_base=False)),
        (f"adapters (m={size})", r.trainable, r.head, r.percent_of_base_head_aside, r.percent_of_base_no_embedding,
         r.total_multiple(n_tasks)),
    ]
    cols = ["method", "trained per task", "of which new head", "% of base", "% of non-embedding base",
            f"stored for {n_tasks} tasks (x base)"]
    table = pd.DataFrame(rows, columns=cols).set_index("method")
    return table.astype({"% of non-embedding base": float}).round(3)


def cost_table(models=("bert-large", "minilm"), sizes=(8, 64, 256), n_tasks: int = 9, paper: bool = True,
               head_input: str | dict = "pooler") -> pd.DataFrame:
    """Table 1's cost columns for several models: full fine-tuning and adapters of each size, one row each.

    Columns: model, head input, method ("full fine-tuning", "adapters (64)", ...), and storage_table's
    columns. `head_input` is one input for every model or a {model: input} mapping (default "pooler"). With
    `paper`, the paper's own "% per task" and "N tasks" numbers (data/paper/table1.csv) are added to the
    BERT-large rows that read the pooler, as the paper's did, and whose method the paper reports (NaN
    elsewhere: "adapters (8-256)" mixes sizes).
    """
    rows = []
    for model in models:
        head = head_input.get(model, "pooler") if isinstance(head_input, dict) else head_input
        for i, size in enumerate(sizes):
            table = storage_table(model, size, n_tasks, head)
            if i == 0:
                rows.append({"model": model, "head input": head, "method": "full fine-tuning",
                             **table.iloc[0].to_dict()})
            rows.append({"model": model, "head input": head, "method": f"adapters ({size})", **table.iloc[1].to_dict()})
    out = pd.DataFrame(rows)
    out["trained per task"] = out["trained per task"].astype(int)
    if paper:
        from ..studies.paper import paper_table

        reported = paper_table("table1").set_index("method")  # by key (adapterlib.vocab)
        keys = out["method"].map(key_of)  # "full fine-tuning" -> "full", "adapters (64)" -> "adapters_64"
        is_paper_model = (out["model"] == "bert-large") & (out["head input"] == "pooler")
        out["paper: % per task"] = keys.map(reported["params_per_task_percent"]).where(is_paper_model)
        out[f"paper: {n_tasks} tasks (x base)"] = (keys.map(reported["total_params_multiple"])
                                                   .where(is_paper_model & (n_tasks == 9)))
    return out
