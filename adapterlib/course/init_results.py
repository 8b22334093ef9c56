"""Notebook 02 (initialisation) as data: each trained init std against its floor and the paper's robust range,
the drift of fresh adapters, and the stored study per task. Pure functions: records, dicts and frames in,
dataclasses and DataFrames out.

    std_text(std)                          0 -> "0", 1e-07 -> "1e-7", 0.1 -> "0.1"
    init_why_not(std)                      the known cause (a key phrase) of a run at `std` not learning
    init_floor_table(records, stds, drift) one row per trained std: score, floor, learned, drift, why not
    init_summary(table, drift)             InitSummary: the robust range's scores, the drift at the named stds
    init_study_table(curve, floors)        the stored study per task: the robust range, the stds above it
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .results import MARGIN, floor_table

ROBUST_MAX = 1e-2  # the paper's robust range of init stds ends here (section 3.6, Fig. 6 right)
ZERO_GRADIENTS = "zero gradients"   # std 0: GELU(0) = 0 and W_up = 0, so the projections never move
DESTROYING = "destroying the pre-trained function"  # a large std moves [CLS] before training starts
UNLUCKY = "none known (one seed: an unlucky run is as likely as an effect)"


def std_text(std: float) -> str:
    """0 -> "0", 1e-07 -> "1e-7", 0.1 -> "0.1", 1.0 -> "1", 3.16e-05 -> "3.2e-5"."""
    if std == 0:
        return "0"
    k = math.log10(std)
    if abs(k - round(k)) < 1e-9:
        return {0: "1", -1: "0.1"}.get(round(k), f"1e{round(k)}")
    mantissa, exponent = f"{std:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def init_why_not(std: float) -> str:
    """Why a run at init std `std` may not learn, as a key phrase (the notebook's Markdown explains each)."""
    return ZERO_GRADIENTS if std == 0 else DESTROYING if std > ROBUST_MAX else UNLUCKY


def init_floor_table(records, stds, drift: dict | None = None):
    """One row per training run (init std `stds[i]`): score, majority class, learned, the [CLS] drift of fresh
    adapters at that std (`drift`: {std: relative change}), points below the best std of the robust range, and
    why not (empty when it learned)."""
    table = floor_table(records, names=[f"std {std_text(s)}" for s in stds])
    score = table.columns[1]
    table.insert(1, "std", list(stds))
    table["[CLS] drift at init"] = [(drift or {}).get(s, math.nan) for s in stds]
    robust = table[(table["std"] > 0) & (table["std"] <= ROBUST_MAX)]
    best = robust[score].max() if len(robust) else math.nan
    table["below best robust std"] = (best - table[score]).round(2)
    table["why not"] = ["" if ok else init_why_not(s) for ok, s in zip(table["learned"], stds, strict=True)]
    return table


@dataclass(frozen=True)
class InitSummary:
    """The live sweep in numbers: the robust range's scores and the drift of fresh adapters."""

    robust_low: float            # the lowest and highest score of the stds in (0, ROBUST_MAX]
    robust_high: float
    robust_all_learned: bool
    drift_official: float        # [CLS] relative change at the official code's 1e-3 (NaN: not measured)
    drift_paper: float           # ... at the paper's 1e-2
    drift_zero: float            # ... at std 0 (exactly 0 when the identity holds)

    @property
    def robust_spread(self) -> float:
        return self.robust_high - self.robust_low

    @property
    def growth(self) -> float:
        """How many times the drift grows from 1e-3 to 1e-2 (the square of the std's ratio predicts 100)."""
        return self.drift_paper / self.drift_official if self.drift_official > 0 else math.nan


def init_summary(table, drift: dict) -> InitSummary:
    """`table`: an init_floor_table; `drift`: {std: [CLS] relative change at init}."""
    score = table.columns[2]
    robust = table[(table["std"] > 0) & (table["std"] <= ROBUST_MAX)]
    low, high = (robust[score].min(), robust[score].max()) if len(robust) else (math.nan, math.nan)
    return InitSummary(float(low), float(high), bool(len(robust)) and bool(robust["learned"].all()),
                       float(drift.get(1e-3, math.nan)), float(drift.get(1e-2, math.nan)),
                       float(drift.get(0.0, math.nan)))


def _stds(values) -> str:
    return ", ".join(std_text(s) for s in values)


def init_study_table(curve, floors: dict | None = None):
    """The stored study (`aggregate.init_curve`) per task: metric, lrs, seeds, the range of the mean dev score over
    the robust stds, each std above it with its mean (and s.e.m.), the stds whose mean sits at the floor, and the
    stds whose mean beats the floor while at least one seed does not (`dev_min`)."""
    import pandas as pd

    rows = []
    for task in dict.fromkeys(curve["task"]):
        t = curve[curve["task"] == task].sort_values("init_std")
        inside, above = t[t["init_std"] <= ROBUST_MAX], t[t["init_std"] > ROBUST_MAX]
        floor = (floors or {}).get(task, math.nan)
        at = t[t["dev_mean"] - floor <= MARGIN]["init_std"] if not math.isnan(floor) else []
        hidden = []
        if "dev_min" in t and not math.isnan(floor) and int(t["n_seeds"].min()) > 1:
            hidden = t[(t["dev_mean"] - floor > MARGIN) & (t["dev_min"] - floor <= MARGIN)]["init_std"]
        lrs = ", ".join(f"{x:g}" for x in sorted(set(t["lr"]))) if "lr" in t else ""
        rows.append({"task": task, "metric": t["metric"].iloc[0], "lr": lrs,
                     "seeds": int(t["n_seeds"].min()), "majority class": floor,
                     "robust stds": f"{_stds([inside['init_std'].min()])} … {_stds([inside['init_std'].max()])}",
                     "robust low": inside["dev_mean"].min(), "robust high": inside["dev_mean"].max(),
                     **{f"std {std_text(s)}": v for s, v in zip(above["init_std"], above["dev_mean"], strict=True)},
                     **{f"std {std_text(s)} s.e.m.": e for s, e in zip(above["init_std"], above["dev_sem"],
                                                                        strict=True)},
                     "at the floor": _stds(at), "a seed at the floor": _stds(hidden)})
    return pd.DataFrame(rows).set_index("task")
