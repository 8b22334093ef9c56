"""Notebook 04, the GLUE reproduction (paper Table 1): our scores against published references and the paper's
numbers, and the same runs on two machines."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .. import vocab
from ..data import task_label
from ..vocab import METHODS, TABLE1, key_of
from .style import MIXED_SCORES, _axes

# The Table 1 rows' colours, by key (adapterlib.vocab.TABLE1)
OURS_COLORS = {k: METHODS[k].color for k in TABLE1}


def plot_scores_vs_references(ours: dict, references: dict, floor: float, ax=None, xlabel: str = "score (%)"):
    """One task's scores, one row each: our runs (filled dots) above published references (open diamonds).

    ours: {label: score}, e.g. {"ours: adapters (64), MiniLM dev": 80.1}; references: {label: score}
    (e.g. the paper's test-server numbers). `floor` (the majority-class score of the examples we scored)
    is a dashed vertical line. Every value is written next to its mark, so close values stay readable.
    """
    ax = _axes(ax, figsize=(6.4, 0.42 * (len(ours) + len(references)) + 1.2))
    labels = list(ours) + list(references)
    y = np.arange(len(labels))[::-1]
    values = list(ours.values()) + list(references.values())
    for k, (yy, label, v) in enumerate(zip(y, labels, values, strict=True)):
        if k < len(ours):
            color = METHODS["full" if "full" in label else "adapters_64"].color
            ax.plot(v, yy, marker="o", ms=9, color=color, ls="none")  # a dot: the axis need not start at 0
        else:
            ax.plot(v, yy, marker="D", ms=7, mfc="white", mec="black", mew=1.3, ls="none")
        ax.annotate(f"{v:.1f}", (v, yy), xytext=(6, 0), textcoords="offset points", va="center", fontsize=8)
    if references:
        ax.axhline(y[len(ours)] + 0.5, color="grey", lw=0.6)
    ax.axvline(floor, color="black", ls="--", lw=1, label=f"majority class of our dev examples ({floor:.1f})")
    ax.set_yticks(y, labels, fontsize=8)
    lo = min([floor, *values])
    ax.set_xlim(lo - 3, max(values) + 0.08 * (max(values) - lo) + 3)
    ax.set_xlabel(xlabel)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize=8, frameon=False)
    ax.grid(axis="y", visible=False)
    return ax


def _short_method(key: str) -> str:
    """A tick label for a Table 1 row (a key): "full\nFT", "8-256", "within\n4%", "64" (the legend names them in
    full)."""
    if key == "full":
        return "full\nFT"
    inner = vocab.label(key).removeprefix("adapters (").removesuffix(")")
    return inner.replace("within ", "within\n")


def plot_glue_vs_paper(selection: pd.DataFrame, floors: dict, fig=None, title: str | None = None):
    """Table 1 analog: per task, our dev score (mean +- s.e.m. over seeds, dots with error bars) per method, the
    paper's number (BERT-large, GLUE test server: open diamonds, a different kind of reference) and the task's
    majority-class floor on our dev set (dashed line).

    selection: adapterlib.sweeps.aggregate.glue_selection output with a "paper (test)" column
    (adapterlib.studies.paper.with_paper_scores): `method` a key (adapterlib.vocab; a label is read as its key),
    `task` a task name or its display label. Labels appear only in the legend and the ticks.
    floors: {task (as in selection): majority-class score}. One panel per task: the metrics differ.
    """
    from matplotlib.lines import Line2D

    selection = selection.assign(method=selection["method"].map(key_of))
    tasks = list(dict.fromkeys(selection["task"]))
    given = list(dict.fromkeys(selection["method"]))  # keys; ordered as Table 1's rows, any other after them
    methods = sorted(given, key=lambda m: TABLE1.index(m) if m in TABLE1 else len(TABLE1))
    if fig is None:
        fig = plt.figure(figsize=((0.45 * len(methods) + 0.6) * len(tasks) + 0.6, 3.6))
    axes = fig.subplots(1, len(tasks), squeeze=False)[0]
    x = np.arange(len(methods))
    for ax, task in zip(axes, tasks, strict=True):
        rows = selection[selection["task"] == task].set_index("method").reindex(methods)
        sem = rows["dev_sem"].fillna(0).to_numpy()
        for xx, m, v, e in zip(x, methods, rows["dev_mean"], sem, strict=True):
            ax.errorbar(xx, v, yerr=e, marker="o", ms=7, color=vocab.color(m), ecolor="black", elinewidth=1.2,
                        capsize=4, ls="none")
        if "paper (test)" in rows:
            ax.plot(x, rows["paper (test)"], marker="D", ms=6, mfc="white", mec="black", mew=1.2, ls="none")
        floor = floors.get(task)
        if floor is not None:
            ax.axhline(floor, color="black", ls="--", lw=1)
        metric = rows["metric"].dropna().iloc[0] if "metric" in rows and rows["metric"].notna().any() else ""
        ax.set_title(f"{task_label(task)} ({metric})", fontsize=9)
        ax.set_xticks(x, [_short_method(m) for m in methods], fontsize=7)
        top = np.nanmax([*(rows["dev_mean"] + sem), *rows.get("paper (test)", pd.Series(dtype=float)), floor or 0])
        bottom = np.nanmin([*(rows["dev_mean"] - sem), floor if floor is not None else np.nan])
        ax.set_ylim(bottom - 0.08 * (top - bottom) - 1, top + 0.08 * (top - bottom) + 1)
        ax.set_xlim(-0.6, len(methods) - 0.4)
        ax.grid(axis="x", visible=False)
    axes[0].set_ylabel(MIXED_SCORES)
    handles = [Line2D([], [], marker="o", color=vocab.color(m), ls="none",
                      label=f"ours: {vocab.label(m)} (MiniLM, dev, mean ± s.e.m.)") for m in methods]
    handles += [Line2D([], [], marker="D", mfc="white", mec="black", ls="none",
                       label="paper (BERT-large, test server)"),
                Line2D([], [], color="black", ls="--", label="majority class (our dev set)")]
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=7, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.14, 1, 0.95 if title else 1))
    return axes


def plot_twin_pairs(pairs: pd.DataFrame, fig=None):
    """`aggregate.twin_pairs` as two panels, dev and validation score: each run's score on the reference
    machine (x) against its twin's (y), one colour per setting (its "setting" column), the diagonal where they agree."""
    fig = fig or plt.figure(figsize=(8.4, 3.8))
    axes = fig.subplots(1, 2)
    groups = list(pairs.groupby("setting", sort=True))  # named by aggregate.twin_setting
    for ax, (column, name) in zip(axes, (("dev_score", "dev"), ("val_score", "validation")), strict=True):
        for setting, rows in groups:
            ax.scatter(rows[f"reference_{column}"], rows[column], label=setting, s=28)
        values = pd.concat([pairs[column], pairs[f"reference_{column}"]])
        lo, hi = float(values.min()) - 1, float(values.max()) + 1
        ax.plot([lo, hi], [lo, hi], color="black", lw=0.8, ls="--", label="the same score")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal")
        ax.set_xlabel(f"{name} score, {pairs['reference_machine'].iloc[0]}")
        ax.set_ylabel(f"{name} score, {pairs['machine'].iloc[0]}")
        ax.set_title(f"{name}: one point per seed")
    axes[1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8)
    fig.suptitle("The same runs (run id: settings and seed) trained on two machines", fontsize=10)
    fig.tight_layout()
    return fig
