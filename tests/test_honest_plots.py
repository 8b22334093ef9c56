"""Plots that do not mislead: an exact 0 on a log axis is marked as such (never drawn as a small clip value),
our scores are dots (not bars that start at the floor), and panels that are compared share a scale."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Rectangle

from adapterlib.plots import EXACT_ZERO, plot_layer_drops, plot_scores_vs_references, plot_vs_init_std


def test_exact_zeros_are_marked_not_drawn_as_small_numbers():
    fig, ax = plt.subplots()
    plot_vs_init_std([1e-7, 1e-5, 1e-2, 1.0], [0.0, 3e-6, 1e-2, 0.3], ax=ax, logy=True, label="drift")
    curve, zeros = ax.lines[:2]
    assert list(curve.get_xdata()) == [1e-5, 1e-2, 1.0] and min(curve.get_ydata()) == 3e-6
    assert list(zeros.get_xdata()) == [1e-7] and zeros.get_label() == EXACT_ZERO
    assert zeros.get_transform() == ax.get_xaxis_transform()  # on the panel's edge, not at a data value
    plt.close(fig)


def test_a_linear_axis_draws_zero_as_zero():
    fig, ax = plt.subplots()
    plot_vs_init_std([1e-7, 1e-2], [0.0, 5.0], ax=ax)
    assert len(ax.lines) == 1 and list(ax.lines[0].get_ydata()) == [0.0, 5.0]
    plt.close(fig)


def test_scores_against_references_are_dots_not_bars_from_the_floor():
    ax = plot_scores_vs_references({"ours: adapters (64)": 80.1, "ours: full fine-tuning": 81.0},
                                   {"paper: adapters (64)": 94.2}, floor=50.9)
    assert [p for p in ax.patches if isinstance(p, Rectangle)] == []
    ours = [line for line in ax.lines if line.get_marker() == "o"]
    assert sorted(float(line.get_xdata()[0]) for line in ours) == [80.1, 81.0]
    plt.close(ax.figure)


def _ablation(drops, metric):
    rows = [dict(first=-1, last=-1, n_removed=0, score=80.0, accuracy=80.0, metric=metric)]
    rows += [dict(first=i, last=i, n_removed=1, score=80.0 - d, accuracy=80.0 - d, metric=metric)
             for i, d in enumerate(drops)]
    return pd.DataFrame(rows)


def test_compared_panels_share_one_scale():
    fig, axes = plt.subplots(1, 2, sharey=True)
    plot_layer_drops({"CoLA": _ablation([30.0, 1.0], "mcc")}, ax=axes[0])
    plot_layer_drops({"SST-2": _ablation([1.0, 2.0], "accuracy")}, ax=axes[1])
    tops = [ax.get_ylim()[1] for ax in axes]
    assert tops[0] == tops[1] and tops[0] > 30.0  # the tall bar of the first panel is not cut by the second
    assert np.isclose(max(b.get_height() for b in axes[0].patches), 30.0)
    plt.close(fig)
