"""Where adapterlib finds the project's files: one function, `project_root()`, and the folders under it.

Package data that ships in the wheel (the bundled GLUE copy) is read with importlib.resources
(`adapterlib.data.glue._bundle_root`). The project's own files, which do not ship in the wheel
(the paper's tables in data/paper, run records in data/results, sweep files in sweeps/, the course
notebooks in notebooks/), are found under `project_root()`:

1. $ADAPTERLIB_ROOT, if set (a checkout, for an installed adapterlib);
2. the checkout this package was imported from (an editable install or a source tree);
3. the current folder.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

PACKAGE_PARENT = Path(__file__).resolve().parent.parent  # the folder holding adapterlib/ (a checkout, site-packages)
ENV_VAR = "ADAPTERLIB_ROOT"


def checkout() -> Path | None:
    """The source checkout this adapterlib was imported from, or None for an installed wheel."""
    return PACKAGE_PARENT if (PACKAGE_PARENT / "pyproject.toml").is_file() else None


def project_root() -> Path:
    """The folder holding data/, sweeps/ and notebooks/ (see the module docstring for the order)."""
    if os.environ.get(ENV_VAR):
        if root_problem():  # kept as given: root_problem() names it where a command starts
            return Path(os.environ[ENV_VAR]).expanduser().absolute()
        return Path(os.environ[ENV_VAR]).expanduser().resolve()
    return checkout() or Path.cwd()


def root_problem() -> str | None:
    """Why $ADAPTERLIB_ROOT cannot be the project root (a symlink loop), or None."""
    value = os.environ.get(ENV_VAR)
    if not value:
        return None
    try:
        Path(value).expanduser().resolve()
    except (RuntimeError, OSError):  # Path.resolve raises RuntimeError for a loop before Python 3.13
        return f"${ENV_VAR} {value} is a symlink loop"
    return None


def folder_problem(folder) -> str | None:
    """Why `folder` cannot be created or written, or None: its nearest existing parent (or itself) must be
    a writable folder. Checked before long work starts, so a bad output dir is one clear line, not a
    traceback at the end."""
    for parent in (Path(folder), *Path(folder).parents):
        if parent.exists():
            if not parent.is_dir():
                return f"{parent} is a file, not a folder"
            if not os.access(parent, os.W_OK | os.X_OK):
                return f"{parent} is not writable"
            return None
    return None


@contextlib.contextmanager
def replacing(path):
    """Write a file atomically: yields a temp path next to `path` (same folder, so the same file system); when
    the block succeeds the temp file replaces `path` (os.replace), when anything in it fails (a full disk, in
    whichever library) the temp file is removed and `path` is as it was. Never half a file.

        with replacing(out / "runs.csv") as tmp:
            table.to_csv(tmp)
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.pid{os.getpid()}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o7777)  # an update keeps the file's permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path, text: str | bytes) -> Path:
    """`Path(path).write_text(text)` (or `write_bytes`), atomically (see `replacing`)."""
    with replacing(path) as tmp:
        tmp.write_bytes(text) if isinstance(text, bytes) else tmp.write_text(text)
    return Path(path)

COURSE_PRESETS = ("smoke", "course", "full")  # the notebooks' `preset` values (adapterlib.course.presets)

ROOT = project_root()
PAPER_DIR = ROOT / "data" / "paper"      # the paper's numbers as CSV
RESULTS_DIR = ROOT / "data" / "results"  # run records and tables, one folder per study
SWEEPS_DIR = ROOT / "sweeps"             # the reproduction's sweep files
NOTEBOOK_DIR = ROOT / "notebooks"        # the course, NN_*.ipynb
