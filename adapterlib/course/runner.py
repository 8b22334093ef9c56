"""`python -m adapterlib course`: execute the notebook course in order with papermill.

    python -m adapterlib course                          # every notebook, preset course
    python -m adapterlib course --preset smoke --notebooks 01 03
    python -m adapterlib course --preset full -p task cola --glue-dir /data/glue

Each notebook runs in its own kernel (python3) with the notebooks folder as working
directory; the executed copy goes to --output-dir, with the key numbers it recorded next to
it (NN_..._results.json). One progress line per notebook, then a summary of what failed
(notebook, cell, error) and exit code 1 if anything did.
"""
from __future__ import annotations

import ast
import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

from .presets import resolve_preset
from ..errors import UsageError
from ..paths import PACKAGE_PARENT

NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"

@dataclass
class NotebookResult:
    """How one notebook run went."""

    name: str
    ok: bool
    seconds: float
    output: Path
    error: str = ""  # "cell In [5] `first line of the cell`: ValueError: ..." when it failed


def find_notebooks(folder, selection=None) -> list[Path]:
    """The course notebooks in `folder`, in order; `selection` picks by number or file name."""
    folder = Path(folder)
    found = sorted(folder.glob(NOTEBOOK_GLOB))
    if not found:
        raise FileNotFoundError(f"no notebooks matching {NOTEBOOK_GLOB} in {folder}")
    if not selection:
        return found
    chosen = []
    for item in selection:
        key = Path(item).name.removesuffix(".ipynb")
        hits = [nb for nb in found if nb.stem == key or nb.stem.split("_", 1)[0] == key.zfill(2)]
        if not hits:
            raise UsageError(f"no notebook {item!r} in {folder}; available: {', '.join(nb.stem for nb in found)}")
        chosen += [nb for nb in hits if nb not in chosen]
    return sorted(chosen)


def parse_value(text: str):
    """A -p value: a Python literal if it is one ("3", "1e-3", "[1, 2]", "None"), else the string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def notebook_parameters(path: Path) -> dict:
    """Parameters declared in the notebook's `parameters` cell: name -> papermill's description."""
    import papermill as pm

    try:
        return pm.inspect_notebook(str(path))
    except Exception as e:  # noqa: BLE001 - not JSON, not UTF-8, not a notebook: nbformat's many errors
        raise UsageError(f"{path} is not a readable Jupyter notebook ({type(e).__name__}: "
                         f"{(str(e).splitlines() or [''])[0][:120]})") from None


def check_course_arguments(notebooks: list[Path], args) -> None:
    """Refuse what the course would silently get wrong: outputs written over its input notebooks, a cell
    timeout below 1 s, a `-p preset` no notebook knows, and `-p results_path` (the runner sets it per notebook)."""
    if args.cell_timeout is not None and args.cell_timeout < 1:
        raise UsageError(f"--cell-timeout must be a positive number of seconds, got {args.cell_timeout}")
    out = Path(args.output_dir).expanduser().resolve()
    inputs = {nb.resolve() for nb in notebooks}
    clash = [nb for nb in notebooks if out / nb.name in inputs or out / f"{nb.stem}_results.json" in inputs]
    if clash:
        raise UsageError(f"--output-dir {args.output_dir} would overwrite the notebook {clash[0]} it runs; "
                         "choose another folder")
    for name, value in args.parameter:
        if name == "results_path":
            raise UsageError("-p results_path: the runner sets it for each notebook (<--output-dir>/NN_..._results.json); "
                             "choose the folder with --output-dir")
        if name == "preset":
            resolve_preset(parse_value(value))


def plan_parameters(notebooks: list[Path], args) -> dict[Path, dict]:
    """The parameters each notebook gets; a name no selected notebook declares is an error."""
    check_course_arguments(notebooks, args)
    wanted = {"preset": resolve_preset(args.preset)}
    if args.model:
        wanted["model"] = args.model
    if args.glue_dir:
        wanted["glue_dir"] = str(Path(args.glue_dir).resolve())  # kernels run in the notebook folder
    wanted.update({name: parse_value(value) for name, value in args.parameter})
    declared = {nb: notebook_parameters(nb) for nb in notebooks}
    known = list(dict.fromkeys(name for params in declared.values() for name in params))
    unknown = set(wanted) - {"preset"} - set(known)
    if unknown:
        raise UsageError(f"no selected notebook has parameter(s) {', '.join(sorted(unknown))}; "
                         f"their parameters: {', '.join(known)}")
    output_dir = Path(args.output_dir)
    plans = {}
    for nb, params in declared.items():
        plan = {name: value for name, value in wanted.items() if name in params}
        if "results_path" in params:
            plan["results_path"] = str((output_dir / f"{nb.stem}_results.json").resolve())
        plans[nb] = plan
    return plans


@contextlib.contextmanager
def importable_adapterlib():
    """Put this checkout first on the kernels' PYTHONPATH, so notebooks import this adapterlib,
    and make a relative GLUE_DIR absolute, because kernels run in the notebook folder."""
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "GLUE_DIR")}
    os.environ["PYTHONPATH"] = os.pathsep.join([str(PACKAGE_PARENT)] + ([saved["PYTHONPATH"]] if saved["PYTHONPATH"] else []))
    if saved["GLUE_DIR"]:
        os.environ["GLUE_DIR"] = str(Path(saved["GLUE_DIR"]).expanduser().resolve())
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def describe_error(exc: BaseException) -> str:
    """One line: which cell failed and how (papermill's error), or the exception itself."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        message = (str(exc.evalue).strip().splitlines() or [""])[0]
        first_line = next((line for line in str(exc.source).splitlines() if line.strip()), "")
        return f"cell In [{exc.exec_count}] `{first_line[:60]}`: {exc.ename}: {message}"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def run_one(notebook: Path, output: Path, parameters: dict, cell_timeout: int | None = None,
            progress: bool = False) -> NotebookResult:
    """Execute one notebook with papermill; never raises for a failing notebook.

    progress: a bar on stderr that advances cell by cell (papermill's), with the time spent so far, so a long
    cell is never a silent terminal.
    """
    import papermill as pm

    start = time.perf_counter()
    try:
        pm.execute_notebook(str(notebook), str(output), parameters=parameters, kernel_name="python3",
                            cwd=str(notebook.parent), execution_timeout=cell_timeout,
                            progress_bar={"desc": f"    {notebook.stem}", "leave": False} if progress else False,
                            extra_arguments=["--IPKernelApp.log_level=ERROR"])  # no start-up chatter mid-line
        return NotebookResult(notebook.stem, True, time.perf_counter() - start, output)
    except Exception as exc:  # noqa: BLE001 - a failed notebook is reported, the course goes on
        return NotebookResult(notebook.stem, False, time.perf_counter() - start, output, describe_error(exc))


COURSE_RECORD = "course_run.json"  # written next to the executed notebooks by `python -m adapterlib course`


def course_record(results: list[NotebookResult], preset: str, runs_before: int) -> dict:
    """What a course run measured: each notebook's wall time and outcome, in order, with provenance (machine,
    versions, git revision, time). `runs_before`: run records already in the course-runs folder when the run
    started (0: every run the notebooks need was trained in this course run, none reused from an earlier one)."""
    from ..records import provenance

    return {"kind": "course_run", "preset": preset, "runs_before": runs_before,
            "notebooks": {r.name: {"ok": r.ok, "seconds": round(r.seconds, 1)} for r in results},
            "total_s": round(sum(r.seconds for r in results), 1), **provenance()}


def summary(results: list[NotebookResult]) -> str:
    failed = [r for r in results if not r.ok]
    total = sum(r.seconds for r in results)
    if not failed:
        return f"all {len(results)} notebooks ran ({total:.0f} s)"
    lines = [f"{len(failed)} of {len(results)} notebooks FAILED ({total:.0f} s):"]
    lines += [f"  {r.name}: {r.error}\n    executed notebook: {r.output}" for r in failed]
    return "\n".join(lines)


def list_notebooks(notebooks: list[Path]) -> None:
    for nb in notebooks:
        print(nb.name)
        for name, p in notebook_parameters(nb).items():
            text = p["help"].strip().removeprefix("help:").strip()
            print(f"    {name:<16} = {p['default']:<12} {text}")
