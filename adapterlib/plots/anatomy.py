"""What an adapter is and what it saves: the paper's Figure 2 (notebook 01) and the storage figures (notebooks 01
and 06)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Circle, FancyBboxPatch

from .style import _axes

TRAINED = "#9ed99e"   # green, as in the paper: trained per task
FROZEN = "#d9d9d9"    # grey: pre-trained, frozen, shared by all tasks


# --- paper Figure 2 -------------------------------------------------------------------------

def _box(ax, x, y, text, color, w=3.0, h=0.62, note=None):
    """A rounded box centred at (x, y); `note` is small grey text to its right."""
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02,rounding_size=0.12",
                                facecolor=color, edgecolor="black", linewidth=0.8))
    ax.text(x, y, text, ha="center", va="center", fontsize=8.5)
    if note:
        ax.text(x + w / 2 + 0.15, y, note, ha="left", va="center", fontsize=7, color="dimgray", family="monospace")


def _plus(ax, x, y, r=0.2):
    ax.add_patch(Circle((x, y), r, facecolor="white", edgecolor="black", linewidth=0.8))
    ax.text(x, y, "+", ha="center", va="center", fontsize=10)


def _arrow(ax, start, end, **kw):
    ax.annotate("", xy=end, xytext=start, arrowprops=dict(arrowstyle="-|>", lw=0.8, color="black", **kw))


def _skip(ax, y0, y1, x, side):
    """A residual connection from height y0 around the boxes to the '+' at height y1."""
    path = [(x, y0), (x + side, y0), (x + side, y1)]
    ax.plot(*zip(*path, strict=True), color="black", lw=0.8)
    _arrow(ax, (x + side, y1), (x + np.sign(side) * 0.2, y1))


def draw_adapter_architecture(fig=None):
    """The paper's Figure 2, left: a Transformer layer with its two adapters; right: one adapter.

    Green boxes are trained per task (adapters, LayerNorms; the classifier head, not drawn,
    too); grey boxes are frozen. Grey notes give the matching HuggingFace BERT module path.
    Returns the figure.
    """
    fig = fig or plt.figure(figsize=(8.4, 5.0))
    left, right = fig.add_axes((0.0, 0.0, 0.6, 0.93)), fig.add_axes((0.6, 0.08, 0.4, 0.78))
    for ax in (left, right):
        ax.set_axis_off()
        ax.set_aspect("equal")

    # Left: bottom to top, the data path through one layer (x = 2: main column).
    x, step = 2.0, 0.82
    stack = [("Multi-headed attention", FROZEN, "attention.self"),
             ("Feed-forward layer", FROZEN, "attention.output.dense"),
             ("Adapter", TRAINED, "attention.output.dropout.adapter"),
             ("+", None, None),
             ("Layer norm", TRAINED, "attention.output.LayerNorm"),
             ("Feed-forward layer (2x)", FROZEN, "intermediate.dense, output.dense"),
             ("Adapter", TRAINED, "output.dropout.adapter"),
             ("+", None, None),
             ("Layer norm", TRAINED, "output.LayerNorm")]
    ys = [0.9 + i * step for i in range(len(stack))]
    _arrow(left, (x, 0.0), (x, ys[0] - 0.31))
    left.text(x, -0.2, "layer input x", ha="center", va="top", fontsize=8)
    for i, ((text, color, note), y) in enumerate(zip(stack, ys, strict=True)):
        if color is None:
            _plus(left, x, y)
        else:
            _box(left, x, y, text, color, note=note)
        if i + 1 < len(ys):
            top = y + (0.2 if color is None else 0.31)
            bottom = ys[i + 1] - (0.2 if stack[i + 1][1] is None else 0.31)
            _arrow(left, (x, top), (x, bottom))
    _arrow(left, (x, ys[-1] + 0.31), (x, ys[-1] + 0.8))
    _skip(left, 0.45, ys[3], x, side=-1.9)                 # x -> first +
    _skip(left, (ys[4] + ys[5]) / 2, ys[7], x, side=-1.9)  # after first LayerNorm -> second +
    left.text(x, ys[-1] + 1.0, "Transformer layer (x L)", ha="center", fontsize=10, weight="bold")
    left.set_xlim(-0.2, 7.6)
    left.set_ylim(-0.6, ys[-1] + 1.3)

    # Right: the adapter, bottom to top, with its internal skip connection.
    xr, parts = 1.6, [("Feed-forward down-project\n(d -> m)", TRAINED), ("Nonlinearity (GELU)", TRAINED),
                      ("Feed-forward up-project\n(m -> d)", TRAINED), ("+", None)]
    yr = [0.9 + i * 0.95 for i in range(len(parts))]
    _arrow(right, (xr, 0.0), (xr, yr[0] - 0.36))
    right.text(xr, -0.15, "h  (B, T, d)", ha="center", va="top", fontsize=8)
    for i, ((text, color), y) in enumerate(zip(parts, yr, strict=True)):
        if color is None:
            _plus(right, xr, y)
        else:
            _box(right, xr, y, text, color, w=2.6, h=0.72)
        if i + 1 < len(yr):
            _arrow(right, (xr, y + 0.36), (xr, yr[i + 1] - (0.2 if parts[i + 1][1] is None else 0.36)))
    _skip(right, 0.4, yr[-1], xr, side=1.65)
    _arrow(right, (xr, yr[-1] + 0.2), (xr, yr[-1] + 0.7))
    right.text(xr, yr[-1] + 0.85, "Adapter layer", ha="center", fontsize=10, weight="bold")
    right.text(xr, -0.75, "h + W_up f(W_down h + b_down) + b_up\n2md + d + m parameters", ha="center",
               va="top", fontsize=8)
    right.set_xlim(-0.3, 3.6)
    right.set_ylim(-1.4, yr[-1] + 1.1)

    handles = [FancyBboxPatch((0, 0), 1, 1, facecolor=c, edgecolor="black") for c in (TRAINED, FROZEN)]
    fig.legend(handles, ["trained per task (+ classifier head)", "frozen, shared by all tasks"],
               loc="upper right", fontsize=8, frameon=False)
    return fig


# --- storage: one frozen base + a small checkpoint per task ---------------------------------

def plot_storage_vs_tasks(reports: dict, n_max: int = 30, ax=None):
    """Parameters stored for 1..n_max tasks, one line per ParamReport (label -> report).

    Storage = frozen parameters once + each task's trainable set (ParamReport.total_multiple).
    """
    ax = _axes(ax)
    n = np.arange(1, n_max + 1)
    for label, report in reports.items():
        ax.plot(n, [report.total_multiple(int(k)) for k in n], label=label)
    ax.set_xlabel("number of tasks N")
    ax.set_ylabel("parameters stored (x one pre-trained model)")
    ax.legend()
    return ax


def plot_storage(df: pd.DataFrame, ax=None):
    """Bar plot of `storage_cost`: MB on disk for n tasks, adapters (stacked base + checkpoints) vs full."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.6))
    ax.set_axisbelow(True)  # grid behind the bars
    ns = sorted(df["n_tasks"].unique())
    width = 0.38
    ad = df[df["setup"].str.startswith("adapters")].set_index("n_tasks").loc[ns]
    ft = df[df["setup"].str.startswith("full")].set_index("n_tasks").loc[ns]
    x = np.arange(len(ns))
    ax.bar(x - width / 2, ad["shared_bytes"] / 1e6, width, color="#9aa5b1", label="shared frozen base (stored once)")
    ax.bar(x - width / 2, ad["per_task_bytes"] / 1e6, width, bottom=ad["shared_bytes"] / 1e6, color="#d9822b",
           label="task checkpoints (adapters + LayerNorms + head)")
    ax.bar(x + width / 2, ft["per_task_bytes"] / 1e6, width, color="#2b6cb0",
           label="full fine-tuning: one model per task")
    for xi, (a, f) in enumerate(zip(ad["total_bytes"], ft["total_bytes"], strict=True)):
        ax.text(xi - width / 2, a / 1e6, f"{a / 1e6:.0f}", ha="center", va="bottom", fontsize=8)
        ax.text(xi + width / 2, f / 1e6, f"{f / 1e6:.0f}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, [str(n) for n in ns])
    ax.set_xlabel("number of tasks served")
    ax.set_ylabel("storage on disk (MB)")
    ax.legend(fontsize=8, loc="upper left")
    return ax
