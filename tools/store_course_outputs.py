"""Store a course run's executed notebooks as the committed notebooks (their outputs are what students read).

    python -m adapterlib course --output-dir outputs/course      # on a fresh clone: also writes course_run.json
    python tools/store_course_outputs.py outputs/course            # notebooks/NN_*.ipynb <- the executed copies

papermill's traces are removed: the injected-parameters cell (its values, an absolute results path, belong to that
run), papermill's metadata, and execution counts are renumbered from 1 in order. Only notebooks whose source cells
equal the committed ones (the injected cell aside) are stored; any other is refused, so no edit is lost.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]


def cleaned(executed: nbformat.NotebookNode) -> nbformat.NotebookNode:
    nb = nbformat.from_dict(executed)
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    nb.metadata.pop("papermill", None)
    count = 0
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        if cell.cell_type != "code":
            continue
        if cell.get("execution_count") is not None:
            count += 1
            cell.execution_count = count
            for out in cell.outputs:
                if "execution_count" in out:
                    out.execution_count = count
    return nb


def sources(nb) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source) for c in nb.cells]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", type=Path, help="the --output-dir of a `python -m adapterlib course` run")
    args = p.parse_args(argv)
    stored = 0
    for path in sorted(args.run_dir.glob("[0-9][0-9]_*.ipynb")):
        target = ROOT / "notebooks" / path.name
        new = cleaned(nbformat.read(path, as_version=4))
        if not target.is_file() or sources(new) != sources(nbformat.read(target, as_version=4)):
            print(f"{path.name}: its cells differ from notebooks/{path.name}; not stored", file=sys.stderr)
            return 1
        nbformat.write(new, target)
        stored += 1
    print(f"stored {stored} notebook(s) from {args.run_dir}")
    return 0 if stored else 1


if __name__ == "__main__":
    sys.exit(main())
