"""Findings text for the notebooks, generated from the numbers (never typed), so it matches any preset,
task or seed a notebook is run with.

Every score the course shows is read against its floor: always predicting the majority class of the
same examples (`record["majority"]`, or `adapterlib.data.majority_floor`). A result "learned" when it
beats that floor by more than `MARGIN` points; when it does not, the text says so, and why where the
reason is known.

    verdict(rec)                 -> FloorCheck(name, score, floor, metric, learned) for one run record
    floor_table(records)         -> one row per run: score, floor, margin, learned
    floor_sentence(check)        -> "adapters (m=64): dev acc 88.1, 37.2 points above the majority class (50.9)."
"""
from __future__ import annotations

from dataclasses import dataclass

MARGIN = 1.0  # points above the majority-class score that count as "learned" (below: noise on a few hundred examples)


@dataclass(frozen=True)
class FloorCheck:
    """A score and the majority-class floor of the same examples."""

    name: str
    score: float
    floor: float
    metric: str
    split: str = "dev"

    @property
    def above(self) -> float:
        return self.score - self.floor

    @property
    def learned(self) -> bool:
        return self.above > MARGIN


def record_name(rec: dict) -> str:
    """A short label for a run record: "adapters (m=64, lr 0.001)", "full fine-tuning (lr 0.0001)", ..."""
    cfg = rec["config"]
    if rec["policy"] == "adapter":
        return f"adapters (m={cfg['adapter_size']}, lr {cfg['lr']:g})"
    names = {"full": "full fine-tuning", "top_k": f"top-{cfg.get('top_k')} layers", "layernorm": "LayerNorm only",
             "head": "head only"}
    return f"{names.get(rec['policy'], rec['policy'])} (lr {cfg['lr']:g})"


def record_floor(rec: dict, split: str | None = None, glue_dir=None) -> float:
    """The majority-class score of the examples `rec` was scored on (its record; else recomputed)."""
    from ..data import get_task

    spec = get_task(rec["task"])
    split = split or next(iter(spec.dev_files))
    if split in rec.get("majority", {}):
        return float(rec["majority"][split][spec.metric])
    from ..data import majority_floor  # records written before floors were recorded

    cfg = rec["config"]
    return float(majority_floor(spec, split, glue_dir or cfg.get("glue_dir"), cfg.get("max_eval_examples"))[spec.metric])


def verdict(rec: dict, name: str | None = None, split: str | None = None) -> FloorCheck:
    """The dev score of run record `rec` against its majority-class floor."""
    from ..data import get_task

    spec = get_task(rec["task"])
    split = split or next(iter(spec.dev_files))
    return FloorCheck(name or record_name(rec), float(rec["dev"][split][spec.metric]), record_floor(rec, split),
                      spec.metric, split)


def floor_sentence(check: FloorCheck, why_not: str | None = None) -> str:
    """One sentence: by how much the score beats its floor, or that it does not (with `why_not`, if known)."""
    head = f"{check.name}: {check.split} {check.metric} {check.score:.1f}"
    if check.learned:
        return f"{head}, {check.above:.1f} points above the majority class ({check.floor:.1f})."
    where = "at" if abs(check.above) <= MARGIN else "below"
    text = f"{head}, {where} the majority class ({check.floor:.1f}): this run has not learned the task"
    return text + (f"; {why_not}" if why_not else "") + "."


def floor_table(records, names=None):
    """One row per run record: score, floor, points above it, learned (a pandas DataFrame)."""
    import pandas as pd

    names = names or [None] * len(records)
    rows = []
    for rec, name in zip(records, names):
        c = verdict(rec, name)
        rows.append({"run": c.name, f"{c.split} {c.metric}": round(c.score, 2), "majority class": round(c.floor, 2),
                     "points above": round(c.above, 2), "learned": c.learned})
    return pd.DataFrame(rows)


# --- notebook 02 (initialisation) ---------------------------------------------------------------


# --- notebook 03 (size vs parameters) -----------------------------------------------------------


# --- notebook 04 (GLUE reproduction) ------------------------------------------------------------


# --- notebook 05 (layer ablation) ---------------------------------------------------------------


# --- notebook 06 (many tasks) -------------------------------------------------------------------
