"""Plots of notebook 07 (issue 29): score against trained parameters for every method on one plot (the Pareto plot),
and the cost panels (train step time, peak memory, inference overhead) from the committed cost benchmark.

Inputs are the tables of adapterlib.course.after_houlsby (`method_points`, `cost_table`); nothing is computed here.
"""
from __future__ import annotations

import numpy as np


def _style(method: str) -> dict:
    """Colour, marker and legend label of a method (TrainConfig.method) from the shared vocabulary (adapterlib.vocab,
    keyed by the records' policy: houlsby is "adapter")."""
    from ..config import policy_of_method
    from ..vocab import METHODS

    entry = METHODS.get(policy_of_method(method))
    if entry is None:
        return dict(color="black", marker="o", label=method)
    return dict(color=entry.color, marker=entry.marker,
                label="Houlsby adapters" if method == "houlsby" else entry.label)


def plot_pareto(points, ax=None, task: str | None = None, budget_percent: float | None = None,
                title: str | None = None):
    """Dev score against trained parameters (log scale) for every method setting of one task: one colour per
    method, its sizes joined by a line, error bars of one s.e.m. over seeds where there are several, and the Pareto
    front (no setting scores more with fewer parameters) as a dashed step line. `budget_percent` shades the
    settings over that share of the base."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 3.8))
    rows = points if task is None else points[points["task"] == task]
    if rows.empty:
        ax.text(0.5, 0.5, "no runs", ha="center", va="center", transform=ax.transAxes)
        return ax
    for method, part in rows.groupby("method", sort=False):
        part = part.sort_values("trainable")
        style = _style(method)
        yerr = part["dev_sem"].where(part["n_seeds"] > 1)
        ax.errorbar(part["trainable"], part["dev_mean"], yerr=yerr, color=style["color"], marker=style["marker"],
                    linestyle="-" if len(part) > 1 else "none", linewidth=1, markersize=6, capsize=2,
                    label=style["label"])
    front = rows[rows["pareto"]].sort_values("trainable")
    if len(front) > 1:
        ax.step(front["trainable"], front["dev_mean"], where="post", color="black", linestyle="--", linewidth=0.8,
                label="Pareto front")
    _parameter_axis(ax, rows["trainable"])
    if budget_percent is not None and rows["percent_of_base"].notna().any():
        base = float((rows["trainable"] / rows["percent_of_base"] * 100).median())
        ax.axvspan(base * budget_percent / 100, ax.get_xlim()[1], color="grey", alpha=0.15, lw=0,
                   label="over the budget")
    ax.set_xlabel("trained parameters per task (log)")
    metric = rows["metric"].dropna().iloc[0] if rows["metric"].notna().any() else "score"
    ax.set_ylabel(f"dev {metric}")
    ax.set_title(title or (f"{rows['task'].iloc[0]}: score against trained parameters" if task else None))
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    return ax


def _parameter_axis(ax, trainable) -> None:
    """Log x axis of trained parameters, at least a factor 2 past the points on each side (a few settings of
    similar size otherwise fill the axis with crowded minor labels), ticks at 1, 2 and 5 per decade as 150k, 1.5M."""
    from matplotlib.ticker import EngFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.set_xlim(float(trainable.min()) / 2, float(trainable.max()) * 2)
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))  # 150k, 1.5M
    ax.xaxis.set_minor_formatter(NullFormatter())


def plot_costs(costs, axes=None):
    """Two panels from `cost_table`: the train step time and peak memory of each method as ratios to full
    fine-tuning, and its inference time as a ratio to the frozen base, unmerged and merged (LoRA, (IA)3)."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    left, right = axes
    rows = costs.reset_index(drop=True)
    x = np.arange(len(rows))
    colors = [_style(m)["color"] for m in rows["method"]]
    left.bar(x - 0.2, rows["step_ratio"], width=0.4, color=colors, edgecolor="black", linewidth=0.5,
             label="train step time")
    left.bar(x + 0.2, rows["memory_ratio"], width=0.4, color=colors, edgecolor="black", linewidth=0.5, hatch="//",
             alpha=0.6, label="peak memory")
    left.axhline(1.0, color="dimgray", linestyle=":", linewidth=1)
    left.set_ylabel("ratio to full fine-tuning")
    left.set_title("training cost")
    right.bar(x - 0.2, rows["infer_ratio"], width=0.4, color=colors, edgecolor="black", linewidth=0.5,
              label="unmerged")
    merged = rows["infer_merged_ratio"]
    right.bar(x + 0.2, merged.fillna(0), width=0.4, color=colors, edgecolor="black", linewidth=0.5, hatch="..",
              alpha=0.6, label="merged into the weights")
    right.axhline(1.0, color="dimgray", linestyle=":", linewidth=1)
    finite = rows["infer_ratio"].dropna()
    if len(finite):
        right.set_ylim(min(0.9, finite.min() - 0.02), max(finite.max(), merged.max(skipna=True) or 0) + 0.05)
    right.set_ylabel("ratio to the frozen base")
    right.set_title("inference time")
    for ax in axes:
        ax.set_xticks(x)
        ax.set_xticklabels(rows["method"], rotation=45, ha="right", fontsize=8)
        ax.legend(fontsize=7)
    return axes
