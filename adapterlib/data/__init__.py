"""GLUE tasks: registry, TSV reading, train/validation/dev splits, cached tokenisation.

Where data comes from, in this order:

1. a local directory in the classic ``download_glue_data.py`` layout (``<glue_dir>/<TASK>/train.tsv``,
   ``dev.tsv``), given as ``glue_dir=`` / ``--glue-dir`` or env GLUE_DIR;
2. the copy bundled with the package (``adapterlib/resources/glue``: RTE, MRPC, STS-B, CoLA, SST-2,
   WNLI train+dev and QNLI dev, xz-compressed, checked against ``MANIFEST.json`` once per process);
3. the HuggingFace hub dataset ``nyu-mll/glue`` (needs network), for what the bundle lacks.

All give splits ``train``, ``validation`` (a seeded held-out slice of train.tsv, for model
selection) and the GLUE dev split(s) of ``TaskSpec.dev_files`` (reporting only), with columns
``idx``, ``text_a``, ``text_b`` (pair tasks) and ``label`` (int class id; float32 score for STS-B).
"""
from __future__ import annotations

from .cache import TOKENIZE_CODE_VERSION, TokenizationCacheError, tokenize_glue
from .glue import HUB_DATASET, data_source, load_glue, majority_floor, read_tsv
from .tasks import STSB_RANGE, TASKS, GlueDataError, TaskSpec, UnknownTaskError, get_task, task_label, task_order

__all__ = ["HUB_DATASET", "STSB_RANGE", "TASKS", "TOKENIZE_CALLS", "TOKENIZE_CODE_VERSION", "GlueDataError",
           "TaskSpec", "TokenizationCacheError", "UnknownTaskError", "data_source", "get_task", "load_glue",
           "majority_floor", "read_tsv", "task_label", "task_order", "tokenize_glue"]


def __getattr__(name: str):
    """``TOKENIZE_CALLS`` is read live from :mod:`.cache`, which counts (a re-exported int would stay 0)."""
    if name == "TOKENIZE_CALLS":
        from . import cache

        return cache.TOKENIZE_CALLS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
