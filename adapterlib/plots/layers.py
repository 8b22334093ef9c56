"""A layer ablation (paper Fig. 6 left; notebook 05): the score with adapters removed from a span of layers, and
the points lost per single layer."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .style import _axes, metric_label


def plot_span_heatmap(df: pd.DataFrame, ax=None, value: str = "score", cmap: str = "viridis"):
    """Heat map of an ablation: first removed layer (rows) x last removed layer (columns)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5.2, 4.4))
    spans = df[df["n_removed"] > 0]
    n = int(spans["last"].max()) + 1  # rows: first removed layer, columns: last; NaN below the diagonal
    grid = spans.pivot(index="first", columns="last", values=value).reindex(index=range(n), columns=range(n)).to_numpy()
    image = ax.imshow(grid, cmap=cmap, origin="upper")
    ax.grid(False)  # the course style's grid would cross the cells
    finite = grid[np.isfinite(grid)]
    middle = (finite.min() + finite.max()) / 2 if finite.size else 0.0
    for first in range(n):
        for last in range(first, n):
            v = grid[first, last]
            ax.text(last, first, f"{v:.1f}", ha="center", va="center", fontsize=8,
                    color="white" if v < middle else "black")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xlabel("last layer with adapters removed")
    ax.set_ylabel("first layer with adapters removed")
    metric, split, task = df["metric"].iloc[0], df.attrs.get("split", ""), df.attrs.get("task", "")
    label = metric_label(metric) if value == "score" else f"{value} ({metric}, points)" if value == "drop" else value
    ax.figure.colorbar(image, ax=ax, label=label, shrink=0.85)
    ax.set_title(f"{task} {split}: adapters removed from layers first..last\n"
                 f"nothing removed: {df[value].iloc[0]:.1f}", fontsize=10)
    return ax


def plot_layer_drops(ablations, ax=None, value: str = "score", paper_max: float | None = None,
                     paper_label: str = "paper: one layer costs at most"):
    """Paper Fig. 6 diagonal as bars: points lost when one layer's adapters are removed, per layer.

    ablations: one `span_ablation` table, or {label: table} for grouped bars (e.g. one per task).
    value: "score" (each table's own metric) or a metric column all tables have ("accuracy").
    paper_max: draws the paper's largest single-layer drop as a dashed line (`paper_label`).
    A drop below 0 means the model scored higher without that layer's adapters.
    """
    ax = _axes(ax, figsize=(6.4, 3.4))
    ax.set_axisbelow(True)  # grid behind the bars
    tables = ablations if isinstance(ablations, dict) else {ablations.attrs.get("task", ""): ablations}
    width = 0.8 / len(tables)
    top = 0.0
    for k, (label, table) in enumerate(tables.items()):
        single = table[table["n_removed"] == 1].set_index("first")[value]  # studies.ablation.layer_drops
        drops = (float(table[value].iloc[0]) - single).set_axis(single.index.astype(int))
        metric = table["metric"].iloc[0] if value == "score" else value
        x = drops.index.to_numpy() + (k - (len(tables) - 1) / 2) * width
        bars = ax.bar(x, drops.to_numpy(), width * 0.95, label=f"{label} ({metric})".strip(), color=f"C{k}")
        ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=1)
        top = max(top, float(drops.max()))
    if paper_max is not None:
        ax.axhline(paper_max, color="black", ls="--", lw=1, label=f"{paper_label} {paper_max:g}")
        top = max(top, paper_max)
    ax.axhline(0, color="grey", lw=0.8)
    n_layers = max(int(t["last"].max()) + 1 for t in tables.values())
    ax.set_xticks(range(n_layers))
    ax.set_xlabel("layer whose adapters are removed (0 = bottom)")
    ax.set_ylabel("drop (points)")
    entries = len(tables) + (paper_max is not None)
    # headroom: the legend sits above the tallest bar (of every panel that shares this y-axis)
    ax.set_ylim(top=max(top * (1.3 + 0.1 * entries) + 0.5, ax.get_ylim()[1]))
    ax.legend(loc="upper left", fontsize=8)
    return ax
