"""Verdicts and floors: the four rules the claim scorecard (adapterlib.course.claims) applies, and the floor check
that leaves out a task no method learned. Pure functions on numbers, records and frames.

    gap_verdict(mean, low, high)     a gap with its interval against "within CLAIM_GAP points"
    share_verdict(passed)            per-task or per-comparison checks: all, some or none pass
    spread_verdict(spread)           a spread of scores over settings against SIZE_TOLERANCE
    storage_verdict(ours, paper, full)  a storage multiple against the paper's
    at_floor(task, score, floors)    a score not distinguishable from the majority class (task_floors)
"""
from __future__ import annotations

import math

import pandas as pd

from ..data import task_label

HOLDS, PARTLY, NO, UNTESTABLE = VERDICTS = ("holds", "partly", "does not hold", "untestable here")
Z95 = 1.96            # a score within 1.96 standard errors of its floor is not distinguishable from it (95%)
CLAIM_GAP = 0.5     # the goal of issue 14: adapters within this many points of full fine-tuning on average
SIZE_TOLERANCE = 1.0  # points: the task-mean dev score may vary this much over sizes 8/64/256 ("robust to size")
STORAGE_TOLERANCE = 0.1  # the paper prints one decimal (1.3x): ours within 0.1 of it matches


# --- the four rules -----------------------------------------------------------------------------------------


def gap_verdict(mean: float, low: float, high: float, tolerance: float = CLAIM_GAP) -> str:
    """A gap (method minus baseline, points) against "within `tolerance` points": holds when the whole
    interval lies above -tolerance, does not hold when the whole interval lies below it, partly when it
    straddles it; untestable without a mean, or without an interval: one seed measures no seed noise, and on
    these tasks that noise (0.2-1.9 points s.e.m. over five seeds) is as large as the tolerance itself."""
    if mean is None or math.isnan(mean) or math.isnan(low) or math.isnan(high):
        return UNTESTABLE
    return HOLDS if low >= -tolerance else NO if high < -tolerance else PARTLY


def share_verdict(passed) -> str:
    """Checks of one claim (per task or per comparison): holds when every check passes, does not hold when
    none does, partly otherwise; untestable when nothing could be checked."""
    passed = [bool(p) for p in passed]
    if not passed:
        return UNTESTABLE
    return HOLDS if all(passed) else NO if not any(passed) else PARTLY


def spread_verdict(spread: float, tolerance: float = SIZE_TOLERANCE) -> str:
    """A spread of scores over settings (points): holds within `tolerance`, partly within twice it, does not
    hold beyond; untestable when there is no spread to measure (NaN)."""
    if spread is None or math.isnan(spread):
        return UNTESTABLE
    return HOLDS if spread <= tolerance else PARTLY if spread <= 2 * tolerance else NO


def storage_verdict(ours: float, paper: float, full: float, tolerance: float = STORAGE_TOLERANCE) -> str:
    """Storage for the paper's tasks in units of one base model: holds within `tolerance` above the paper's
    multiple (or below it), partly when above that but under half of full fine-tuning's (`full`: the sharing
    still saves most of the storage), does not hold otherwise; untestable without a number."""
    if any(v is None or math.isnan(v) for v in (ours, paper, full)):
        return UNTESTABLE
    return HOLDS if ours <= paper + tolerance else PARTLY if ours < full / 2 else NO


# --- floors -------------------------------------------------------------------------------------------------

CORRELATIONS = ("mcc", "spearman", "pearson")


def floor_margin(floor: float, n: int, metric: str) -> float:
    """Z95 standard errors of a score at its floor on `n` examples (points): for a correlation (floor 0)
    1/sqrt(n-1), its spread when nothing is learned; for accuracy or F1, a proportion's sqrt(p(1-p)/n)."""
    if metric in CORRELATIONS:
        return Z95 * 100 / math.sqrt(max(n - 1, 1))
    p = min(max(floor / 100, 1e-6), 1 - 1e-6)
    return Z95 * 100 * math.sqrt(p * (1 - p) / n)


def task_floors(records) -> pd.DataFrame:
    """Each task's dev floor from its run records: metric, the majority-class score, the dev examples
    (index: task; the first record of a task that carries both)."""
    rows = {}
    for rec in records:
        task, majority = rec.get("task"), (rec.get("majority") or {}).get("dev")
        n = ((rec.get("splits") or {}).get("sizes") or {}).get("dev")
        if task and majority and n and task not in rows:
            metric = rec.get("metric")
            rows[task] = {"metric": metric, "floor": float(majority[metric]), "n_dev": int(n)}
    return pd.DataFrame.from_dict(rows, orient="index", columns=["metric", "floor", "n_dev"])


def at_floor(task: str, score: float, floors: pd.DataFrame) -> bool:
    """Whether `score` on `task`'s dev set is not distinguishable from its floor (within `floor_margin`
    above it, or below it). A task without a known floor is never at it."""
    if task not in floors.index:
        return False
    f = floors.loc[task]
    return score - f["floor"] <= floor_margin(f["floor"], int(f["n_dev"]), f["metric"])


def floor_note(excluded: list[str], floors: pd.DataFrame) -> str:
    """The `floor` column: which tasks sat at their floor and were left out."""
    if not excluded:
        return "every task above its floor"
    named = ", ".join(f"{task_label(t)} (majority {floors.loc[t, 'floor']:.1f})" for t in excluded)
    return f"{named}: every method at chance, left out"
