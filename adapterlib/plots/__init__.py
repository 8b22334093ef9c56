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
    plot_scores_vs_references()   one task's scores (dots) against published references (open diamonds)
    plot_glue_vs_paper()          paper Table 1 analog: our dev scores per method and task against the paper's
    plot_twin_pairs()             the same runs on two machines: each run's score against its twin's
    plot_pareto()                 notebook 07: every method's score vs trained parameters, and the Pareto front
    plot_costs()                  notebook 07: train step time, peak memory and inference time, as ratios

Every function draws on an `ax` it is given (or a new one) and returns the axes, so a
notebook can combine panels and still label them itself.

The modules: style (rcParams, one look per method, metric axis labels, label placement), anatomy (Figure 2,
storage), curves (score vs parameters, vs init std), layers (layer ablation), glue (notebook 04), methods
(notebook 07). Import from here: `from adapterlib.plots import score_vs_params`.
"""
from __future__ import annotations

from .anatomy import FROZEN, TRAINED, draw_adapter_architecture, plot_storage, plot_storage_vs_tasks
from .curves import (
    EXACT_ZERO,
    mark_exact_zeros,
    mark_paper_inits,
    plot_init_curve,
    plot_size_curve,
    plot_vs_init_std,
    score_vs_params,
)
from .glue import OURS_COLORS, plot_glue_vs_paper, plot_scores_vs_references, plot_twin_pairs
from .layers import plot_layer_drops, plot_span_heatmap
from .methods import plot_costs, plot_pareto
from .style import FULL_LINE_LABEL, METHOD_STYLE, METRIC_NAMES, MIXED_SCORES, metric_label, use_course_style

__all__ = [
    "EXACT_ZERO", "FROZEN", "FULL_LINE_LABEL", "METHOD_STYLE", "METRIC_NAMES", "MIXED_SCORES", "OURS_COLORS",
    "TRAINED", "draw_adapter_architecture", "mark_exact_zeros", "mark_paper_inits", "metric_label", "plot_costs",
    "plot_glue_vs_paper", "plot_init_curve", "plot_layer_drops", "plot_pareto", "plot_scores_vs_references",
    "plot_size_curve", "plot_span_heatmap", "plot_storage", "plot_storage_vs_tasks", "plot_twin_pairs",
    "plot_vs_init_std", "score_vs_params", "use_course_style",
]
