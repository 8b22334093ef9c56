"""Notebook 05 (layer ablation) as data: an ablation's span table against the paper's three Fig. 6 findings.
Pure functions: span tables, run records and the paper's numbers in, dataclasses and DataFrames out.

    AblationCheck / ablation_check(df, floor, paper)  one ablation (in one metric) against the paper's findings
    ablation_table(checks)                           one row per check: the numbers and each finding's verdict
    setup_table(study)                               what each stored run trained on, from its record
"""
from __future__ import annotations

from dataclasses import dataclass

from ..record import as_record
from .results import MARGIN

WITHIN, SLIGHTLY, MORE = "within", "slightly more", "more"  # one layer's cost against the paper's limit


@dataclass(frozen=True)
class AblationCheck:
    """One ablation in one metric: the score with nothing, every adapter, each half removed; the cost of removing
    one layer's adapters; the majority-class floor of the same examples; the paper's single-layer limit."""

    task: str
    metric: str
    none: float
    all: float
    lower: float             # the lower half of the layers removed (layers halves[0])
    upper: float             # the upper half removed
    halves: tuple
    max_drop: float
    worst_layer: int
    least_layer: int
    floor: float
    paper_max_drop: float    # the paper: removing one layer's adapters costs at most this many points
    n_layers: int

    @property
    def one_layer(self) -> str:
        """"within" the paper's limit, "slightly more" (within MARGIN beyond it), or "more"."""
        if round(self.max_drop, 1) <= self.paper_max_drop:
            return WITHIN
        return SLIGHTLY if self.max_drop <= self.paper_max_drop + MARGIN else MORE

    @property
    def lower_matter_less(self) -> bool:
        """The paper's pattern: removing the lower layers' adapters costs less than removing the upper ones'."""
        return self.lower > self.upper + MARGIN

    @property
    def halves_at_floor(self) -> bool:
        """Either half alone drops the model to the floor (the pattern then cannot show)."""
        return max(self.lower, self.upper) - self.floor <= MARGIN

    @property
    def all_at_floor(self) -> bool:
        """The paper: with every adapter removed, the model falls to the majority class."""
        return abs(self.all - self.floor) <= MARGIN

    @property
    def contradicts(self) -> bool:
        return self.max_drop > self.paper_max_drop + MARGIN or not self.lower_matter_less

    def row(self) -> dict:
        return {"task": self.task, "metric": self.metric, "layers": self.n_layers, "nothing removed": self.none,
                "majority class": self.floor, "max one-layer drop": self.max_drop, "worst layer": self.worst_layer,
                "least layer": self.least_layer, f"vs paper's {self.paper_max_drop:g}": self.one_layer,
                f"lower half ({self.halves[0]}) removed": self.lower,
                f"upper half ({self.halves[1]}) removed": self.upper,
                "lower layers matter less": self.lower_matter_less, "either half at floor": self.halves_at_floor,
                "all removed": self.all, "all removed at floor": self.all_at_floor, "contradicts": self.contradicts}


def ablation_check(df, floor: float, paper_max_drop: float, task: str = "", value: str = "score") -> AblationCheck:
    """An ablation's span table (`studies.ablation.span_ablation`, or a stored one) in one of its metric columns
    (`value`: "score", the task's metric, or e.g. "accuracy") against the paper's single-layer limit."""
    from ..studies.ablation import layer_drops

    drops = layer_drops(df, value)
    top = int(df["last"].max())
    half = (top + 1) // 2

    def span(first, last):
        return float(df.loc[(df["first"] == first) & (df["last"] == last), value].iloc[0])

    return AblationCheck(task, df["metric"].iloc[0] if value == "score" else value, float(df[value].iloc[0]),
                         span(0, top), span(0, half - 1), span(half, top), (f"0-{half - 1}", f"{half}-{top}"),
                         float(drops.max()), int(drops.idxmax()), int(drops.idxmin()), float(floor),
                         float(paper_max_drop), top + 1)


def ablation_table(checks):
    """One row per AblationCheck (a DataFrame indexed by task and metric)."""
    import pandas as pd

    return pd.DataFrame([c.row() for c in checks]).set_index(["task", "metric"])


def study_checks(study: dict, paper_max_drop: float, floors: dict) -> list[AblationCheck]:
    """The stored study (`studies.ablation.load_study`: {task: (span table, record)}) checked per task in its
    metric and, where that is not accuracy, in accuracy too (the paper's Fig. 6 CoLA panel is in accuracy).
    `floors`: {task: {metric: the dev set's majority-class score}} (`evidence.ablation_floors`)."""
    from ..data import get_task

    out = []
    for task, (df, _) in study.items():
        spec = get_task(task)
        out.append(ablation_check(df, floors[task][spec.metric], paper_max_drop, spec.display))
        if spec.metric != "accuracy" and "accuracy" in df:
            out.append(ablation_check(df, floors[task]["accuracy"], paper_max_drop, spec.display, "accuracy"))
    return out


def setup_table(study: dict):
    """What each stored ablation run trained on, from its record: one row per task."""
    import pandas as pd

    from ..data import get_task

    rows = []
    for task, (_, rec) in study.items():
        if rec is None:
            rows.append({"task": get_task(task).display})
            continue
        rec = as_record(rec)
        cfg = rec.config
        rows.append({"task": get_task(task).display, "adapter size": cfg["adapter_size"],
                     "train examples": rec.extra["splits"]["sizes"]["train"],
                     "subset of train.tsv": bool(cfg.get("max_train_examples")),
                     "validation hold-out": cfg["val_fraction"], "epochs run": rec.timing.epochs_run,
                     "epochs at most": cfg["epochs"], "epoch kept": rec.selected.get("epoch"),
                     "early stopping": bool(cfg.get("patience")), "lr": cfg["lr"], "seed": cfg["seed"],
                     "precision": cfg["mixed_precision"], "head input": cfg.get("head_input", "pooler"),
                     "pooler trained": bool(cfg.get("train_pooler"))})
    return pd.DataFrame(rows).set_index("task")
