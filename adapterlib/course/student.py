"""The student version of the course: each notebook with its build-it-yourself solutions removed.

    python -m adapterlib course --exercises                 # -> outputs/course/exercises/NN_*.ipynb
    student_notebook(nb)                                    # one notebook (nbformat), solutions cleared
    exercises(nb)                                           # [(solution cell index, check cell index, id)]
    with_one_blank(nb, index)                               # solved, except the exercise at `index`; ends at its check

The solved notebooks (notebooks/NN_*.ipynb) are the source: a solution cell (tagged `solution`) holds the
answer between `### BEGIN SOLUTION` / `### END SOLUTION`, and the next cell checks it. The student version
replaces each answer with the gap `clear_solutions` writes, shows the cell (the solved notebook collapses
it), and drops every stored output, so the student runs it and each check fails until its gap is filled.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path

from ..errors import UsageError
from .exercises import clear_solutions

SOLUTION_TAG = "solution"
_CHECK = re.compile(r"^check_\w+\(", re.M)


def exercises(nb) -> list[tuple[int, int, str]]:
    """(solution cell, check cell, exercise id) of each exercise of the notebook `nb`, in order."""
    found = []
    for i, cell in enumerate(nb.cells):
        if SOLUTION_TAG not in cell.metadata.get("tags", []):
            continue
        check = i + 1
        if check >= len(nb.cells) or not _CHECK.search(nb.cells[check].source):
            raise UsageError(f"solution cell {i} is not followed by a check_...() cell")
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell{i}"
        found.append((i, check, grade_id))
    return found


def _blank(cell) -> None:
    cell.source = clear_solutions(cell.source)
    cell.metadata.get("jupyter", {}).pop("source_hidden", None)
    cell.metadata["tags"] = [t for t in cell.metadata.get("tags", []) if t != "hide-input"]


def student_notebook(nb):
    """A copy of `nb` with every solution replaced by its gap and no stored outputs."""
    nb = copy.deepcopy(nb)
    for i, _, _ in exercises(nb):
        _blank(nb.cells[i])
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            cell.metadata.pop("execution", None)
    return nb


def with_one_blank(nb, index: int):
    """A copy of `nb` solved except exercise number `index` (0-based), cut after that exercise's check cell:
    running it shows what the check says about an unsolved gap."""
    found = exercises(nb)
    if not 0 <= index < len(found):
        raise UsageError(f"the notebook has {len(found)} exercises, no exercise {index}")
    solution, check, _ = found[index]
    nb = copy.deepcopy(nb)
    _blank(nb.cells[solution])
    nb.cells = nb.cells[:check + 1]
    return nb


def write_exercises(notebooks: list[Path], out_dir: Path) -> list[Path]:
    """Write the student version of each notebook in `notebooks` that has exercises to `out_dir`."""
    import nbformat

    from ..paths import write_text_atomic

    written = []
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        if not exercises(nb):
            continue
        out_dir.mkdir(parents=True, exist_ok=True)
        target = out_dir / path.name
        if target.resolve() == Path(path).resolve():
            raise UsageError(f"the student version of {path} would overwrite it; choose another --output-dir")
        write_text_atomic(target, nbformat.writes(student_notebook(nb)) + "\n")
        written.append(target)
    return written
