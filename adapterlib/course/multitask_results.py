"""Notebook 06 (many tasks on one frozen model) as data: every task trained on the shared model against the
majority-class floor of its dev examples, with what its record says about a task that did not learn.
Pure functions: run records in, DataFrames out.

    prior_loss(rec)         the loss of always predicting a binary task's class frequencies (from its record)
    task_floor_table(recs)  one row per task: dev score, floor, learned, steps, examples, lr, loss vs prior
"""
from __future__ import annotations

import math

from ..record import as_record
from .results import frequency_loss, verdict

NO_SIGNAL, FITS_A_LITTLE = "no signal yet", "fits the training data a little"
LOSS_TOLERANCE = 0.03  # nats: a mean training loss this close to the prior has found no signal


def prior_loss(rec: dict, split: str = "validation") -> float | None:
    """frequency_loss of a binary task's `split`, from the majority-class accuracy its record carries (no data
    read): the training loss of a classifier that has found no signal."""
    p = rec.get("majority", {}).get(split, {}).get("accuracy")
    if p is None:
        return None
    p = p / 100
    return frequency_loss([p, 1 - p]) if 0 < p < 1 else None


def signal(loss: float, prior: float | None) -> str:
    """NO_SIGNAL when the mean training loss is not clearly below the prior, FITS_A_LITTLE otherwise."""
    if prior is None or math.isnan(loss):
        return ""
    return NO_SIGNAL if loss >= prior - LOSS_TOLERANCE else FITS_A_LITTLE


def task_floor_table(records: dict):
    """One row per task ({task: record}): dev score, majority class, learned, and what the record says about
    training: steps, examples, lr, the mean training loss and the class-frequency loss (`prior`)."""
    import pandas as pd

    from ..data import get_task

    rows = []
    for task, rec in records.items():
        check, r = verdict(rec, name=get_task(task).display), as_record(rec)
        loss = float(r.history[-1]["train_loss"]) if r.history else math.nan
        prior = prior_loss(rec)
        rows.append({"task": check.name, "metric": check.metric, "dev": check.score, "majority class": check.floor,
                     "points above": check.above, "learned": check.learned, "steps": r.timing.steps,
                     "train examples": r.config.get("max_train_examples") or "all", "lr": r.config["lr"],
                     "train loss": loss, "class-frequency loss": prior,
                     "signal": "" if check.learned else signal(loss, prior)})
    return pd.DataFrame(rows).set_index("task")
