"""Loaded by pytest for tests/ and notebooks/ alike (nbval runs the notebooks' kernels from here)."""
import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Notebook kernels (nbval, papermill) run in notebooks/, so a relative GLUE_DIR must be made absolute here.
if os.environ.get("GLUE_DIR"):
    os.environ["GLUE_DIR"] = str(Path(os.environ["GLUE_DIR"]).expanduser().resolve())

# The course's shared run records (adapterlib.course.shared.train_once): one fresh folder per test session, so
# notebooks run by nbval and papermill reuse each other's runs within the session, never a stale one from before.
os.environ.setdefault("ADAPTERLIB_COURSE_RUNS", tempfile.mkdtemp(prefix="adapterlib-course-runs-"))


def pytest_addoption(parser):
    parser.addoption("--course-scale", action="store_true",
                     help="also run the tests marked course_scale: notebooks at preset course (minutes each)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--course-scale"):
        return
    skip = pytest.mark.skip(reason="runs a notebook at preset course (minutes): pass --course-scale")
    for item in items:
        if "course_scale" in item.keywords:
            item.add_marker(skip)
