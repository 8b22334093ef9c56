"""Score curves: score against trainable parameters (paper Figs. 3/4; notebook 03) and against the adapter init
std (paper Fig. 6 right; notebook 02), from points or from a study's tables (adapterlib.sweeps.aggregate)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .. import vocab
from ..config import INIT_SCHEMES
from ..data import get_task, majority_floor, task_label, task_order
from .style import (
    FULL_LINE_LABEL,
    METHOD_STYLE,
    MIXED_SCORES,
    _axes,
    _floor_line,
    _label_points,
    _legend_outside,
    _metric_label,
)


def score_vs_params(rows, ax=None, x="trainable", y="score", ylabel="score", annotate=True, full_line=True,
                    floor=None, yerr=None):
    """Score against trainable parameters per task on a log x-axis (paper Figs. 3/4).

    rows: a DataFrame (or list of dicts) with columns `method` (adapter | top_k | layernorm |
    head | full), `x`, `y`, and optionally `label` (e.g. "m=64", "k=3") to annotate points.
    Methods with several points (adapter sizes, top k) are joined by a line, sorted by x.
    full_line: draw full fine-tuning's score as a dashed horizontal line, the level to reach.
    floor: the majority-class score of the same examples, drawn as a grey dotted line (None: none).
    yerr: a column of error bars (e.g. the standard error over seeds), if there are several seeds.
    The legend sits right of the axes; point labels are placed where they cover no other label or point.
    """

    df = pd.DataFrame(rows)
    ax = _axes(ax)
    labels = []
    for method, group in df.groupby("method", sort=False):
        group = group.sort_values(x)
        style = METHOD_STYLE.get(method, dict(marker="o", label=method))
        ls = "-" if len(group) > 1 else "none"
        if yerr is not None and yerr in group:
            ax.errorbar(group[x], group[y], yerr=group[yerr].fillna(0), linestyle=ls, markersize=7, capsize=2, **style)
        else:
            ax.plot(group[x], group[y], linestyle=ls, markersize=7, **style)
        if method == "full" and full_line:
            ax.axhline(group[y].max(), color=style["color"], linestyle="--", linewidth=0.8,
                       label=FULL_LINE_LABEL)
        if annotate and "label" in group:
            labels += [(row[x], row[y], row["label"], style.get("color", "black"), method == "top_k")
                       for _, row in group.iterrows() if isinstance(row["label"], str) and row["label"]]
    if floor is not None:
        _floor_line(ax, floor, df[y], f"majority class ({floor:.1f})")
    ax.set_xscale("log")
    ax.set_xlabel("trainable parameters per task (log scale)")
    ax.set_ylabel(ylabel)
    _legend_outside(ax)
    _label_points(ax, labels)
    return ax


# --- initialisation ablation ----------------------------------------------------------------

EXACT_ZERO = "exactly 0 (off the log axis)"


def plot_vs_init_std(stds, values, ax=None, ylabel="", label=None, logy=False, **kw):
    """A quantity against the adapter init std on a log x-axis (paper Fig. 6 right).

    On a log y-axis (`logy`) a value of exactly 0 has no place: it is marked as what it is, an open triangle on
    the panel's bottom edge (legend: "exactly 0"), and the line joins only the values above 0.
    """
    ax = _axes(ax)
    stds, values = np.asarray(stds, dtype=float), np.asarray(values, dtype=float)
    zero = values == 0 if logy else np.zeros(len(values), dtype=bool)
    (line,) = ax.plot(stds[~zero], values[~zero], marker="o", label=label, **kw)
    if zero.any():
        mark_exact_zeros(ax, stds[zero], color=line.get_color())
    ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("adapter init std (log scale)")
    ax.set_ylabel(ylabel)
    return ax


def mark_exact_zeros(ax, xs, color=None, label: str = EXACT_ZERO, **kw):
    """Open triangles on the bottom edge of `ax` at `xs`: values of exactly 0 on a log y-axis."""
    ax.plot(xs, np.zeros(len(xs)), marker="v", ms=8, mfc="white", mec=color, mew=1.5, ls="none",
            transform=ax.get_xaxis_transform(), clip_on=False, label=label, **kw)


def mark_paper_inits(ax, legend: bool = True):
    """Vertical lines at the named init schemes: paper std 1e-2, official code 1e-3."""

    styles = {"houlsby": ("paper (1e-2)", ":"), "adapter-bert": ("official code (1e-3)", "--")}
    for name, scheme in INIT_SCHEMES.items():
        text, ls = styles.get(name, (name, "-."))
        ax.axvline(scheme["std"], color="gray", linestyle=ls, linewidth=1, label=f"init: {text}")
    if legend:
        ax.legend()
    return ax


# --- study tables (adapterlib.sweeps.aggregate, adapterlib.studies) ------------------------------

def plot_size_curve(table: pd.DataFrame, ax=None, floors="auto"):
    """Dev score vs trained parameters per task (log x): adapter sizes, top-k layers, LayerNorm, full.

    One panel per task when `ax` is None; returns the list of axes. Error bars: the standard error
    over seeds where there are several. floors: {task: majority-class dev score} drawn as a dotted line;
    "auto" computes it from the task's whole dev split (adapterlib.data.majority_floor), None draws none.
    The legend sits right of the last panel; point labels avoid each other and the markers.
    """
    tasks = task_order(table["task"])
    if ax is None:
        _, axes = plt.subplots(1, len(tasks), figsize=(4.6 * len(tasks) + 1.6, 3.8), squeeze=False)
        axes = list(axes[0])
    else:
        axes = [ax] * len(tasks)
    notes = {"adapter": ("m={:g}", "adapter_size"), "top_k": ("k={:g}", "top_k")}  # each point's size
    style = {k: (vocab.label(k), *notes.get(k, (None, None))) for k in vocab.CURVE[1:] + vocab.CURVE[:1]}
    if floors == "auto":
        floors = {}
        for task in tasks:
            try:
                spec = get_task(task)
                floors[task] = majority_floor(spec, next(iter(spec.dev_files)))[spec.metric]
            except Exception:  # no data at hand: no floor line
                pass
    floors = floors or {}
    for task, a in zip(tasks, axes, strict=True):
        rows = table[table["task"] == task]
        labels = []
        for policy, (method, note, column) in style.items():  # rows by key (policy); the label is for display
            part = rows[rows["policy" if "policy" in rows else "method"] == policy]
            part = part.sort_values("trainable")
            if part.empty:
                continue
            look = dict(METHOD_STYLE[policy])
            look["label"] = method if len(tasks) == 1 or ax is None else f"{task_label(task)} {method}"
            a.errorbar(part["trainable"], part["dev_mean"], yerr=part["dev_sem"].fillna(0),
                       linestyle="-" if len(part) > 1 else "none", capsize=2,
                       markersize=9 if policy == "full" else 5, **look)
            if policy == "full":
                a.axhline(part["dev_mean"].iloc[0], ls="--", lw=0.8, color=look["color"],
                          label=FULL_LINE_LABEL if len(tasks) == 1 or ax is None else
                          f"{task_label(task)} {FULL_LINE_LABEL}")
            if column:
                labels += [(x, y, note.format(v), look["color"], policy == "top_k")
                           for x, y, v in zip(part["trainable"], part["dev_mean"], part[column], strict=True)]
        if task in floors:
            _floor_line(a, floors[task], rows["dev_mean"], f"majority class ({floors[task]:.1f})"
                        if len(tasks) == 1 else f"{task_label(task)} majority class ({floors[task]:.1f})")
        a.set_xscale("log")
        a.set_xlabel("trained parameters per task (log scale)")
        a.set_ylabel(_metric_label(table, task) if len(tasks) == 1 or ax is None else MIXED_SCORES)
        a.set_title(f"{task_label(task)}: score vs trained parameters")
        a.grid(alpha=0.3)
        _label_points(a, labels, marker_pt=3.0)
    merged = {}  # one legend, right of the last panel, with every panel's entries
    for a in dict.fromkeys(axes):
        for handle, label in zip(*a.get_legend_handles_labels(), strict=True):
            merged.setdefault(label, handle)
    axes[-1].legend(merged.values(), merged.keys(), loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                    fontsize=8)
    return axes


def plot_init_curve(table: pd.DataFrame, ax=None, floors: dict | None = None, zero: dict | None = None,
                    label: str = "adapters (dev score)"):
    """Dev score vs adapter init std (log x), one panel per task: each task keeps its own metric's axis.

    `table`: rows with task, init_std, dev_mean, dev_sem (error bars where there are seeds; NaN: none),
    metric (e.g. `aggregate.init_curve(study)`). `floors` {task: majority-class score} draws each
    task's majority-class line; `zero` {task: score} draws a run at std exactly 0 (not on a log axis)
    as a horizontal line. The named inits (paper 1e-2, official code 1e-3) are marked once per panel,
    and one legend sits right of the last panel. `ax`: None (new figure), or one axes per task.
    Returns the list of axes.
    """
    tasks = task_order(table["task"])
    if ax is None:
        fig, axes = plt.subplots(1, len(tasks), figsize=(4.6 * len(tasks) + 1.8, 3.6), squeeze=False)
        axes = list(axes[0])
    else:
        axes = list(ax) if isinstance(ax, (list, tuple, np.ndarray)) else [ax]
        if len(axes) != len(tasks):
            raise ValueError(f"plot_init_curve needs one axes per task ({len(tasks)}), got {len(axes)}")
    for task, a in zip(tasks, axes, strict=True):
        rows = table[table["task"] == task].sort_values("init_std")
        sem = rows["dev_sem"] if "dev_sem" in rows else pd.Series(np.nan, index=rows.index)
        a.errorbar(rows["init_std"], rows["dev_mean"], yerr=sem.fillna(0), fmt="o-", capsize=3, color="tab:blue",
                   label=label + (" ± s.e.m. over seeds" if sem.notna().any() else ""))
        if zero and task in zero:
            a.axhline(zero[task], color="tab:green", ls="-.", lw=1.2, label="std 0 (exact identity)")
        if floors and task in floors:
            a.axhline(floors[task], color="black", ls=":", lw=1.2, label="majority class")
        mark_paper_inits(a, legend=False)
        a.set_xscale("log")
        a.set_xlabel("adapter init std (log scale)")
        a.set_ylabel(_metric_label(rows, task))
        a.set_title(task_label(task))
    order = lambda hl: (hl[1].startswith("init:"), hl[1] == "majority class", hl[1].startswith("std 0"))  # noqa: E731
    # scores first, then the reference lines
    handles = sorted(zip(*axes[-1].get_legend_handles_labels(), strict=True), key=order)
    axes[-1].legend(*zip(*handles, strict=True), loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8)
    return axes
