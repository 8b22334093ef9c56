"""The published numbers the course compares against, read from data/paper/*.csv.

Every CSV row carries a `source` column (paper, table or figure). Nothing here is typed into
code: the notebooks read these files, so a reader can check each number against PAPER.md (data/paper/PAPER.md,
the paper's facts).

    table1.csv              Houlsby et al. 2019 Table 1 (BERT-large, GLUE test server)
    dev_comparisons.csv     BERT-base dev-set numbers (AdapterHub Table 1; Houlsby Fig. 4)
    fig6_layer_ablation.csv what the paper states about Fig. 6 left/centre (layer ablation)
"""
from __future__ import annotations

import pandas as pd

from ..data import get_task
from ..paths import PAPER_DIR
from ..vocab import key_of

DATA_DIR = PAPER_DIR  # the name the notebooks and tests import

# Table 1 column of each GLUE task (MNLI has two: matched and mismatched).
TABLE1_COLUMNS = {"cola": "CoLA", "sst2": "SST-2", "mrpc": "MRPC", "stsb": "STS-B", "qqp": "QQP",
                  "mnli": "MNLI-m", "qnli": "QNLI", "rte": "RTE"}


def paper_table(name: str) -> pd.DataFrame:
    """One of the committed reference tables, e.g. `paper_table("table1")`. Table 1's `method` column holds
    keys of adapterlib.vocab ("full", "adapters_8_256", "adapters_64"; the file names them as the paper does)."""
    path = DATA_DIR / f"{name}.csv"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in DATA_DIR.glob("*.csv"))) or "none"
        raise FileNotFoundError(f"no reference table {path} (known: {known}); run from a checkout of the repository "
                                "or set $ADAPTERLIB_ROOT to one")
    table = pd.read_csv(path)
    if name == "table1":
        table["method"] = table["method"].map(key_of)
    return table


def table1_score(task, method: str = "adapters_64") -> float:
    """Table 1 test-server score of `task` for `method` (a key: "full", "adapters_8_256", ...; or its label)."""
    table, method = paper_table("table1").set_index("method"), key_of(method)
    if method not in table.index:
        raise KeyError(f"unknown Table 1 method {method!r}; known: {', '.join(table.index)}")
    return float(table.loc[method, TABLE1_COLUMNS[get_task(task).name]])


def with_paper_scores(table: pd.DataFrame) -> pd.DataFrame:
    """`table` (columns method, task) plus "paper (test)": the Table 1 score of that method (a key) and task.

    Fits `adapterlib.aggregate.glue_selection` output. NaN for a task or method not in Table 1
    (WNLI, or methods such as "layernorm").
    """
    methods = set(paper_table("table1")["method"])
    scores = [table1_score(t, m) if m in methods and get_task(t).name in TABLE1_COLUMNS else float("nan")
              for t, m in zip(table["task"], table["method"], strict=True)]
    return table.assign(**{"paper (test)": scores})
