"""The course's look, shared by every plot: rcParams, one style per training method, axis labels per metric, and
the helpers that place point labels and legends where they cover no data."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .. import vocab
from ..data import task_label
from ..vocab import METHODS

# One look per training method (adapterlib.vocab.METHODS), used by every score-vs-parameters plot.
METHOD_STYLE = {k: dict(color=METHODS[k].color, marker=METHODS[k].marker, label=METHODS[k].legend or METHODS[k].label)
                for k in vocab.CURVE[1:] + vocab.CURVE[:1]}  # adapter, top_k, layernorm, head, full
FULL_LINE_LABEL = "full fine-tuning (level to reach)"  # the dashed reference line

# Axis names of the GLUE metrics (adapterlib.metrics), used by metric_label
METRIC_NAMES = {"mcc": "MCC", "accuracy": "accuracy", "f1": "F1", "spearman": "Spearman", "pearson": "Pearson"}
MIXED_SCORES = "dev score (x100)"  # an axis shared by tasks of different metrics


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


# --- axis labels: one convention per GLUE metric --------------------------------------------

def metric_label(metric: str) -> str:
    """The course's one axis-label convention for a GLUE metric, scored x100 (adapterlib.metrics): a share
    in percent, "accuracy (%)", "F1 (%)"; a correlation x100, "MCC (x100)", "Spearman (x100)"."""
    name = METRIC_NAMES.get(metric, metric)
    return f"{name} (%)" if metric in ("accuracy", "f1") else f"{name} (x100)"


def _metric_label(table: pd.DataFrame, task: str) -> str:
    metric = table.loc[table["task"] == task, "metric"].iloc[0]
    return f"{task_label(task)} dev {metric_label(metric)}"


# --- point labels, reference lines and legends that cover no data ---------------------------

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
