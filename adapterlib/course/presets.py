"""Helpers shared by the notebook course: scale presets and recorded results.

Every notebook has a cell tagged `parameters` with `preset = None`. The next cell calls
`resolve_preset(preset)`: an explicit value (papermill `-p preset full`) wins, else the
environment variable ADAPTERLIB_PRESET (how nbval, which cannot inject parameters, picks a
scale), else "course".

    smoke   CI: each notebook in ~90 s on 2 CPU cores; numbers are not meaningful
    course  default: meaningful results on a laptop CPU in a few minutes per notebook
    full    paper-scale settings, for a GPU run through papermill
"""
from __future__ import annotations

import ast
import os

from ..errors import UsageError
from ..paths import COURSE_PRESETS
from pathlib import Path

PRESETS = COURSE_PRESETS
ENV_VAR = "ADAPTERLIB_PRESET"


def resolve_preset(preset: str | None = None) -> str:
    """The scale to run at: explicit argument, else $ADAPTERLIB_PRESET, else "course"."""
    preset = preset or os.environ.get(ENV_VAR) or "course"
    if preset not in PRESETS:
        raise UsageError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return preset


class UnknownParameterError(UsageError):
    """A papermill `-p NAME VALUE` whose NAME the notebook's parameters cell does not declare (a typo)."""

    def _render_traceback_(self):  # IPython shows this instead of a traceback: one line in the notebook
        return [f"{type(self).__name__}: {self}"]


INJECTED_HEADER = "# Parameters\n"  # how papermill's injected-parameters cell begins (its Python translator)


def _assigned_names(source: str) -> list[str]:
    """The names a parameters cell assigns, in order (simple `name = value` lines)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    return [target.id for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
            for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
            if isinstance(target, ast.Name)]


def check_parameters(namespace: dict) -> None:
    """Stop a papermill run that passed a parameter the notebook does not declare (`-p presett smoke`).

    Call it in the cell after the `parameters` cell with `globals()`. papermill executes an
    `injected-parameters` cell (it begins "# Parameters") right after the parameters cell, and IPython
    keeps every executed cell's source in `In`: the names the injected cell assigns must all be names
    the parameters cell (the cell executed just before it) assigns. Outside papermill, nothing to check.
    """
    history = list(namespace.get("In") or [])
    injected = [i for i, source in enumerate(history) if i > 0 and source.startswith(INJECTED_HEADER)]
    if not injected:
        return
    known = _assigned_names(history[injected[-1] - 1])
    unknown = [name for name in _assigned_names(history[injected[-1]]) if name not in known]
    if unknown:
        raise UnknownParameterError(f"unknown parameter(s) {', '.join(unknown)}; this notebook's parameters: "
                                    f"{', '.join(known)}")


def pick(preset: str, *, smoke, course, full):
    """One setting per scale: `steps = pick(preset, smoke=5, course=300, full=None)`."""
    return {"smoke": smoke, "course": course, "full": full}[resolve_preset(preset)]


# The training scale shared by the notebooks that train on one task (02, 03, 04): the same settings give the
# same run ids, so a configuration trained in one notebook is read from its run record in the next
# (adapterlib.course.shared.train_once). SST-2's dev set has 872 sentences: course scale scores all of them.
TRAIN_SCALES = {
    "smoke": dict(max_train_examples=64, max_steps=3, max_eval_examples=64, epochs=1, eval_every=1),
    # validation every 24 of the 94 steps (and at the last): a learning curve of 4 points; the best is kept
    "course": dict(max_train_examples=3000, max_eval_examples=872, epochs=1, eval_every=24),
    "full": dict(epochs=3),
}


def train_scale(preset: str | None = None) -> dict:
    """TrainConfig settings of the course's single-task trainings at this preset (a fresh dict)."""
    return dict(TRAIN_SCALES[resolve_preset(preset)])


def record_results(path: str | os.PathLike | None, **values) -> dict:
    """Write a notebook's key numbers to JSON at `path` (None: do nothing); returns them.

    papermill runs pass `-p results_path out.json`, and the tests assert on what was recorded.
    """
    if path:
        from ..records import write_json_atomic
        write_json_atomic(Path(path), values)
    return values
