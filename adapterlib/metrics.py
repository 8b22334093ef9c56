"""GLUE metrics, reported in percent (x100) like the tables of Houlsby et al. 2019.

CoLA: Matthews correlation ("mcc") + accuracy; MRPC/QQP: F1 of the positive class + accuracy;
STS-B: Spearman + Pearson correlation; every other task: accuracy. Degenerate inputs
(constant predictions or labels) score 0.0 instead of NaN, so model selection never sees NaN.
"""
from __future__ import annotations

import warnings
from collections import Counter

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from .data import TaskSpec, get_task
from .errors import UsageError


def primary_metric(task: str | TaskSpec) -> str:
    """Name of the task's headline metric ("mcc", "f1", "spearman" or "accuracy")."""
    return get_task(task).metric


def _as_arrays(spec: TaskSpec, predictions, labels) -> tuple[np.ndarray, np.ndarray]:
    """Validate inputs; 2-D classification logits are argmax-ed, (n, 1) regression outputs flattened."""
    preds, labels = np.asarray(predictions), np.asarray(labels).reshape(-1)
    if preds.ndim == 2 and not spec.is_regression and preds.shape[1] == spec.num_labels:
        preds = preds.argmax(axis=1)
    elif preds.ndim == 2 and spec.is_regression and preds.shape[1] == 1:
        preds = preds[:, 0]
    if preds.ndim != 1:
        raise UsageError(f"{spec.display}: predictions must be 1-D (or logits), got shape {preds.shape}")
    if len(preds) != len(labels) or len(preds) == 0:
        raise UsageError(f"{spec.display}: got {len(preds)} predictions for {len(labels)} labels")
    if spec.is_regression:
        return preds.astype(float), labels.astype(float)
    return preds.astype(int), labels.astype(int)


def _correlation(fn, a: np.ndarray, b: np.ndarray) -> float:
    """Pearson/Spearman, with 0.0 where it is undefined (a constant input)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on constant input; we return 0.0 then
        value = float(fn(a, b)[0])
    return 0.0 if np.isnan(value) else value


def compute_metrics(task: str | TaskSpec, predictions, labels) -> dict[str, float]:
    """Score predictions (class ids, or floats for STS-B) against gold labels, in percent.

    Returns plain Python floats, e.g. ``{"mcc": 54.1, "accuracy": 82.3}`` for CoLA.
    """
    spec = get_task(task)
    preds, gold = _as_arrays(spec, predictions, labels)
    if spec.is_regression:
        scores = {"spearman": _correlation(spearmanr, preds, gold),
                  "pearson": _correlation(pearsonr, preds, gold)}
    else:
        scores = {"accuracy": accuracy_score(gold, preds)}
        if spec.metric == "mcc":
            mcc = matthews_corrcoef(gold, preds)
            scores = {"mcc": 0.0 if np.isnan(mcc) else mcc, **scores}
        elif spec.metric == "f1":
            scores = {"f1": f1_score(gold, preds, pos_label=1, average="binary", zero_division=0.0), **scores}
    return {name: 100.0 * float(value) for name, value in scores.items()}


def majority_baseline(task: str | TaskSpec, labels) -> dict:
    """Scores of always predicting the most frequent class of ``labels`` (ties: lowest id).

    Adds ``"majority_class"``; for F1 tasks also ``"all_positive_f1"`` (always predicting 1).
    For STS-B the baseline predicts the mean score, whose correlations are 0 by definition.
    """
    spec = get_task(task)
    gold = np.asarray(labels).reshape(-1)
    if spec.is_regression:
        return {"spearman": 0.0, "pearson": 0.0, "mean_score": float(gold.astype(float).mean())}
    counts = Counter(gold.astype(int).tolist())
    majority = min(counts, key=lambda c: (-counts[c], c))
    result: dict = compute_metrics(spec, np.full(len(gold), majority), gold)
    result["majority_class"] = int(majority)
    if spec.metric == "f1":
        result["all_positive_f1"] = compute_metrics(spec, np.ones(len(gold), dtype=int), gold)["f1"]
    return result
