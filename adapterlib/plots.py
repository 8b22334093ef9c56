"""Plots shared by the notebook course.

    use_course_style()            small, labelled figures (dpi 80) for committed notebooks
    draw_adapter_architecture()   the paper's Figure 2: where the adapters sit, what is trained
    plot_storage_vs_tasks()       parameters stored for N tasks: fine-tuning vs adapters
    score_vs_params()             paper Figs. 3/4: score vs trainable parameters (log x)
    plot_vs_init_std()            paper Fig. 6 right: a quantity vs adapter init std (log x)
    mark_paper_inits()            vertical lines at the paper's and the official code's init std

Every function draws on an `ax` it is given (or a new one) and returns the axes, so a
notebook can combine panels and still label them itself.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Circle, FancyBboxPatch

TRAINED = "#9ed99e"   # green, as in the paper: trained per task
FROZEN = "#d9d9d9"    # grey: pre-trained, frozen, shared by all tasks

# One look per training method, used by every score-vs-parameters plot.
METHOD_STYLE = {
    "adapter": dict(color="tab:green", marker="o", label="adapters (size m)"),
    "top_k": dict(color="tab:blue", marker="s", label="fine-tune top k layers"),
    "layernorm": dict(color="tab:purple", marker="^", label="LayerNorm only"),
    "head": dict(color="tab:gray", marker="v", label="head only"),
    "full": dict(color="tab:red", marker="*", label="full fine-tuning"),
}


def use_course_style() -> None:
    """Matplotlib defaults for the course: small PNGs (tens of KB), grids, readable fonts."""
    plt.rcParams.update({
        "figure.dpi": 80, "savefig.dpi": 80, "figure.figsize": (6.4, 3.8),
        "axes.grid": True, "grid.alpha": 0.3, "font.size": 10, "legend.fontsize": 8,
        "axes.spines.top": False, "axes.spines.right": False,
    })


def _axes(ax, figsize=None):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


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
    ax.plot(*zip(*path), color="black", lw=0.8)
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
    for i, ((text, color, note), y) in enumerate(zip(stack, ys)):
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
    for i, ((text, color), y) in enumerate(zip(parts, yr)):
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


# --- parameter budgets ----------------------------------------------------------------------

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


def score_vs_params(rows, ax=None, x="trainable", y="score", ylabel="score", annotate=True, full_line=True):
    """Score against trainable parameters per task on a log x-axis (paper Figs. 3/4).

    rows: a DataFrame (or list of dicts) with columns `method` (adapter | top_k | layernorm |
    head | full), `x`, `y`, and optionally `label` (e.g. "m=64", "k=3") to annotate points.
    Methods with several points (adapter sizes, top k) are joined by a line, sorted by x.
    full_line: draw full fine-tuning's score as a dashed horizontal line, the level to reach.
    """
    import pandas as pd

    df = pd.DataFrame(rows)
    ax = _axes(ax)
    for method, group in df.groupby("method", sort=False):
        group = group.sort_values(x)
        style = METHOD_STYLE.get(method, dict(marker="o", label=method))
        ax.plot(group[x], group[y], linestyle="-" if len(group) > 1 else "none", markersize=7, **style)
        if method == "full" and full_line:
            ax.axhline(group[y].max(), color=style["color"], linestyle="--", linewidth=0.8)
        if annotate and "label" in group:
            for _, row in group.iterrows():
                if isinstance(row["label"], str) and row["label"]:
                    ax.annotate(row["label"], (row[x], row[y]), textcoords="offset points", xytext=(4, 4),
                                fontsize=7, color=style.get("color", "black"))
    ax.set_xscale("log")
    ax.set_xlabel("trainable parameters per task (log scale)")
    ax.set_ylabel(ylabel)
    ax.legend()
    return ax


# --- initialisation ablation ----------------------------------------------------------------

def plot_vs_init_std(stds, values, ax=None, ylabel="", label=None, logy=False, **kw):
    """A quantity against the adapter init std on a log x-axis (paper Fig. 6 right)."""
    ax = _axes(ax)
    ax.plot(stds, values, marker="o", label=label, **kw)
    ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("adapter init std (log scale)")
    ax.set_ylabel(ylabel)
    return ax


def mark_paper_inits(ax, legend: bool = True):
    """Vertical lines at the named init schemes: paper std 1e-2, official code 1e-3."""
    from .config import INIT_SCHEMES

    styles = {"houlsby": ("paper (1e-2)", ":"), "adapter-bert": ("official code (1e-3)", "--")}
    for name, scheme in INIT_SCHEMES.items():
        text, ls = styles.get(name, (name, "-."))
        ax.axvline(scheme["std"], color="gray", linestyle=ls, linewidth=1, label=f"init: {text}")
    if legend:
        ax.legend()
    return ax
