"""The notebook course: scale presets (light, imported by every notebook), and, as submodules,

    adapterlib.course.runner      `python -m adapterlib course`: every notebook in order with papermill
    adapterlib.course.exercises   check_adapter / check_placement / check_value for build-it-yourself cells
    adapterlib.course.widgets     the interactive explorers (ipywidgets, with a static fallback)
    adapterlib.course.shared      train_once: each configuration trained once, later notebooks read its record
    adapterlib.course.results     results as data: floor checks, gaps, the Table 1 claim, lr-edge flags, fit checks
                                  (and, per notebook, init_results, size_results, ablation_results,
                                  multitask_results); adapterlib.course.evidence loads what they need from files
    adapterlib.course.costs       parameter and storage tables (paper Table 1's cost columns)
    adapterlib.course.after_houlsby  notebook 07: the v3 studies' Pareto points, budget widget, implementation dial
"""
from .presets import ENV_VAR, PRESETS, TRAIN_SCALES, check_parameters, pick, record_results, resolve_preset, train_scale  # noqa: F401

__all__ = ["ENV_VAR", "PRESETS", "TRAIN_SCALES", "check_parameters", "pick", "record_results", "resolve_preset",
           "train_scale"]
