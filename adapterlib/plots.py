"""Plots shared by the notebook course.

    use_course_style()            small, labelled figures (dpi 80) for committed notebooks
    draw_adapter_architecture()   the paper's Figure 2: where the adapters sit, what is trained
    plot_storage_vs_tasks()       parameters stored for N tasks: fine-tuning vs adapters
    score_vs_params()             paper Figs. 3/4: score vs trainable parameters (log x)
    plot_vs_init_std()            paper Fig. 6 right: a quantity vs adapter init std (log x)
    mark_paper_inits()            vertical lines at the paper's and the official code's init std
    plot_size_curve()             a study's size table: dev score vs trained parameters, per task
    plot_init_curve()             dev score vs init std, one panel per task, majority-class line
    plot_span_heatmap()           a layer ablation: score with adapters removed from layers first..last
    plot_storage()                bytes on disk for n tasks: one base + adapter checkpoints vs n models
    plot_layer_drops()            a layer ablation's diagonal: points lost per layer, against the paper's limit

Every function draws on an `ax` it is given (or a new one) and returns the axes, so a
notebook can combine panels and still label them itself.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Circle, FancyBboxPatch

from . import vocab
from .config import INIT_SCHEMES
from .data import task_label, task_order
from .vocab import METHODS, TABLE1, key_of

TRAINED = "#9ed99e"   # green, as in the paper: trained per task
FROZEN = "#d9d9d9"    # grey: pre-trained, frozen, shared by all tasks

# One look per training method (adapterlib.vocab.METHODS), used by every score-vs-parameters plot.
METHOD_STYLE = {k: dict(color=METHODS[k].color, marker=METHODS[k].marker, label=METHODS[k].legend or METHODS[k].label)
                for k in vocab.CURVE[1:] + vocab.CURVE[:1]}  # adapter, top_k, layernorm, head, full


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


# Candidate label positions around a point (offset in points, alignment), tried in order until one is free.
_LABEL_SPOTS = ((0, 6, "center", "bottom"), (0, -6, "center", "top"), (6, 0, "left", "center"),
                (-6, 0, "right", "center"), (6, 7, "left", "bottom"), (-6, -7, "right", "top"),
                (6, -7, "left", "top"), (-6, 7, "right", "bottom"), (0, 15, "center", "bottom"),
                (0, -15, "center", "top"), (10, 14, "left", "bottom"), (-10, -14, "right", "top"),
                (10, -14, "left", "top"), (-10, 14, "right", "bottom"), (0, 24, "center", "bottom"),
                (0, -24, "center", "top"))


def _obstacles(ax, marker_px: float) -> np.ndarray:
    """Display-space boxes (x0, y0, x1, y1) a label must not cover: every marker and every drawn line."""
    boxes = []
    for line in ax.get_lines():
        xy = line.get_transform().transform(np.asarray(line.get_xydata(), dtype=float))
        xy = xy[np.isfinite(xy).all(axis=1)]
        if not len(xy):
            continue
        if line.get_marker() not in (None, "None", "", " "):
            boxes += [(x - marker_px, y - marker_px, x + marker_px, y + marker_px) for x, y in xy]
        if line.get_linestyle() not in ("None", "", " ") and len(xy) > 1:
            for (x0, y0), (x1, y1) in zip(xy[:-1], xy[1:], strict=True):  # a point every 2 px along each segment
                n = int(max(abs(x1 - x0), abs(y1 - y0)) // 2) + 2
                boxes += [(x - 1, y - 1, x + 1, y + 1)
                          for x, y in zip(np.linspace(x0, x1, n), np.linspace(y0, y1, n), strict=True)]
    return np.array(boxes, dtype=float).reshape(-1, 4)


def _label_points(ax, items, marker_pt: float = 4.0) -> None:
    """Annotate points so that no label covers another label, a marker or a line, inside the axes.

    items: (x, y, text, color, below) tuples; `below` tries the spots under the point first. Greedy: each
    label takes the first free spot of _LABEL_SPOTS (else the one covering least). Call it after the axes'
    limits are final: positions are checked in display space.
    """
    if not items:
        return
    fig = ax.figure
    try:
        renderer = fig.canvas.get_renderer()
    except AttributeError:  # a backend without a renderer: fixed offsets
        renderer = None
    ax.autoscale_view()
    taken = _obstacles(ax, marker_pt * fig.dpi / 72) if renderer is not None else None
    n_lines = len(taken) if taken is not None else 0  # markers and lines; boxes after these are texts (weigh more)
    if renderer is not None and ax.texts:  # notes already on the axes
        boxes = [t.get_window_extent(renderer) for t in ax.texts]
        taken = np.vstack([taken, [[b.x0, b.y0, b.x1, b.y1] for b in boxes]])
    inside = ax.get_window_extent(renderer) if renderer is not None else None
    for x, y, text, color, below in items:
        spots = _LABEL_SPOTS if not below else (_LABEL_SPOTS[1], _LABEL_SPOTS[0]) + _LABEL_SPOTS[2:]
        best = None  # (covered count, spot, box)
        for spot in spots:
            dx, dy, ha, va = spot
            ann = ax.annotate(text, (x, y), textcoords="offset points", xytext=(dx, dy), ha=ha, va=va,
                              fontsize=7, color=color)
            if renderer is None:
                break
            box = ann.get_window_extent(renderer)
            ann.remove()
            fits = inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1
            hit = (taken[:, 0] < box.x1) & (taken[:, 2] > box.x0) & (taken[:, 1] < box.y1) & (taken[:, 3] > box.y0)
            covered = int(hit[:n_lines].sum()) + 1000 * int(hit[n_lines:].sum()) + (0 if fits else 10 ** 6)
            if best is None or covered < best[0]:
                best = (covered, spot, box)
            if covered == 0:
                break
        if renderer is None:
            continue
        dx, dy, ha, va = best[1]
        ax.annotate(text, (x, y), textcoords="offset points", xytext=(dx, dy), ha=ha, va=va, fontsize=7, color=color)
        taken = np.vstack([taken, [best[2].x0, best[2].y0, best[2].x1, best[2].y1]])


def _floor_line(ax, floor: float, scores, label: str) -> None:
    """The majority-class score as a dotted line; when it lies far below the scores, a legend entry saying so
    instead (a note inside the axes would cover the lowest points), so the differences between methods stay
    readable."""
    scores = np.asarray(scores, dtype=float)
    low, high = np.nanmin(scores), np.nanmax(scores)
    if floor >= low - 1.5 * max(high - low, 2.0):
        ax.axhline(floor, color="dimgray", linestyle=":", linewidth=1.2, label=label)
        return
    ax.plot([], [], color="dimgray", linestyle=":", linewidth=1.2, label=f"{label}: below this axis")


def _legend_outside(ax, **kw):
    """The legend right of the axes, never over the data."""
    return ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, **kw)


FULL_LINE_LABEL = "full fine-tuning (level to reach)"  # the dashed reference line


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

METRIC_NAMES = {"mcc": "MCC", "accuracy": "accuracy", "f1": "F1", "spearman": "Spearman", "pearson": "Pearson"}
MIXED_SCORES = "dev score (x100)"  # an axis shared by tasks of different metrics


def metric_label(metric: str) -> str:
    """The course's one axis-label convention for a GLUE metric, scored x100 (adapterlib.metrics): a share
    in percent, "accuracy (%)", "F1 (%)"; a correlation x100, "MCC (x100)", "Spearman (x100)"."""
    name = METRIC_NAMES.get(metric, metric)
    return f"{name} (%)" if metric in ("accuracy", "f1") else f"{name} (x100)"


def _metric_label(table: pd.DataFrame, task: str) -> str:
    metric = table.loc[table["task"] == task, "metric"].iloc[0]
    return f"{task_label(task)} dev {metric_label(metric)}"


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
                from .data import get_task, majority_floor

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


# --- notebook 04: GLUE reproduction (paper Table 1) ---------------------------------------------

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

