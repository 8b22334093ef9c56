"""Loaded by pytest for tests/ and notebooks/ alike (nbval runs the notebooks' kernels from here)."""
import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _pin_xdist_worker() -> None:
    """Under pytest-xdist (`-n auto`), give each worker its own share of the cores.

    Worker i of n gets cores i*k .. i*k+k-1 (k = cores // n) through the CPU affinity mask, so torch,
    the notebook kernels and the dask workers a test starts (all inherit the mask and size themselves
    from it: `adapterlib.sweeps.executor.available_cores`) never run more threads than there are cores.
    """
    worker, count = os.environ.get("PYTEST_XDIST_WORKER"), os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if not (worker and count and hasattr(os, "sched_setaffinity")):
        return
    cores = sorted(os.sched_getaffinity(0))
    index, n = int(worker.removeprefix("gw")), int(count)
    share = max(1, len(cores) // n)
    mine = cores[(index * share) % len(cores):][:share]
    os.sched_setaffinity(0, mine)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # kernels and subprocesses: one thread per core
        os.environ[name] = str(len(mine))


_pin_xdist_worker()
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


# Under `--dist loadscope` each test module (and each notebook) goes whole to one worker, so a long module handed
# out last makes a tail where one core idles. The longest go first (longest-processing-time order); the rest keep
# their collection order. Measured from `--durations` of CI runs on the 2-core machine (seconds of test time,
# rounded): a stale order costs speed only, never a result. One exception to that order: nbval's run of notebook
# 07 goes early and its papermill test (tests/test_notebook_07.py) well after it, so that the second reads the
# eight short runs the first trained from the session's course-runs folder instead of training them beside it
# (course.shared.train_once: a run asked for twice at once trains once, the second caller waits for it).
LONGEST_FIRST = ("tests/test_sweep.py", "notebooks/07_after_houlsby.ipynb", "tests/test_notebooks_04_06.py",
                 "tests/test_reliability.py", "tests/test_hostile.py", "tests/test_browser.py",
                 "tests/test_exercises.py", "tests/test_notebooks_01_03.py", "tests/test_notebook_07.py",
                 "tests/test_claims.py", "tests/test_bench_smoke.py", "tests/test_imports.py",
                 "notebooks/05_layer_ablation.ipynb", "tests/test_aggregate.py",
                 "notebooks/02_initialisation_ablation.ipynb", "notebooks/03_adapter_size_vs_parameters.ipynb")


def pytest_configure(config):
    if hasattr(config.option, "loadscopereorder"):  # xdist's own order (most tests first) would undo the above
        config.option.loadscopereorder = False


def _longest_first(items) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))  # stable: the rest keep order


@pytest.hookimpl(tryfirst=True)  # before pytest's own hook deselects by `-m`, so `-m "not slow"` sees these marks
def pytest_collection_modifyitems(config, items):
    _longest_first(items)
    for item in items:
        # nbval collects every cell of a notebook as a test and cannot decorate it: all are slow, as course_scale is
        if item.path.suffix == ".ipynb" or "course_scale" in item.keywords:
            item.add_marker(pytest.mark.slow)
    if config.getoption("--course-scale"):
        return
    skip = pytest.mark.skip(reason="runs a notebook at preset course (minutes): pass --course-scale")
    for item in items:
        if "course_scale" in item.keywords:
            item.add_marker(skip)
