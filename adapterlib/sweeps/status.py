"""The status tables of book/reproduction.md (the reproduction ledger): how far each reproduction study is,
from its sweep file and run records.

    python -m adapterlib status                      # print the tables
    python -m adapterlib status --update book/reproduction.md   # replace the block between the markers
"""
from __future__ import annotations

from pathlib import Path

from ..paths import ENV_VAR, SWEEPS_DIR

STATUS_BEGIN, STATUS_END = "<!-- sweep-status:begin -->", "<!-- sweep-status:end -->"


def repository_sweeps() -> list[Path]:
    """The reproduction sweep files shipped in sweeps/ (not the machinery check smoke.yaml)."""
    found = sorted(p for p in SWEEPS_DIR.glob("*.yaml") if p.stem != "smoke")
    if not found:
        from .executor import SweepError
        raise SweepError(f"no sweep files in {SWEEPS_DIR}: name them, run from a checkout, or set ${ENV_VAR}")
    return found


def replace_status_block(text: str, table: str) -> str:
    """`text` with the lines between the status markers replaced by `table`."""
    if STATUS_BEGIN not in text or STATUS_END not in text:
        from .executor import SweepError
        raise SweepError(f"no '{STATUS_BEGIN}' ... '{STATUS_END}' block to update")
    head, rest = text.split(STATUS_BEGIN, 1)
    return f"{head}{STATUS_BEGIN}\n{table}\n{STATUS_END}{rest.split(STATUS_END, 1)[1]}"


def status_markdown(paths) -> str:
    """Markdown tables of every study's progress, from its sweep file and run records (book/reproduction.md's
    tables): one row per study, then one row per task of each study with the cost of its runs.
    Run wall time sums each run's wall clock; CPU time weighs it by the run's torch threads (2 workers
    of 1 thread each take twice a 2-thread run's wall time for the same CPU time). Runs trained on a GPU
    are counted apart: how many, and the hours in which the GPU was training at least one of them."""
    from ..data import get_task
    from .progress import measure_progress
    from .spec import load_spec

    progress = [(Path(path).name, measure_progress(load_spec(path))) for path in paths]
    lines = ["| sweep file | runs finished / planned | failed | run wall time | CPU time | tasks complete |",
             "|---|---|---|---|---|---|"]
    for name, p in progress:
        done = ", ".join(get_task(t).display for t in p.tasks_complete) or "none"
        notes = [f"{p.reused} reused"] * bool(p.reused) + [f"{p.off_plan} no longer planned"] * bool(p.off_plan)
        reused = f" ({', '.join(notes)})" if notes else ""
        lines.append(f"| `sweeps/{name}` | {p.finished} / {p.planned}{reused} | {p.failed} | "
                     f"{p.wall_h:.2f} h | {p.cpu_h:.1f} core-h{_on_gpus(p.gpu)} | "
                     f"{done} ({len(p.tasks_complete)} of {len(p.tasks)}) |")
    lines += ["", "| sweep file | task | runs finished / planned | run wall time | one run | still to run (est.) |",
              "|---|---|---|---|---|---|"]
    for name, p in progress:
        for task, t in p.by_task.items():
            one = f"{t.run_min[0]:.1f}-{t.run_min[1]:.1f} min" if t.run_min else "-"
            todo = t.planned - t.finished
            left = "none" if not todo else (f"{todo} runs, ~{t.left_h:.1f} core-h" if t.left_h is not None
                                            else f"{todo} runs")
            lines.append(f"| `sweeps/{name}` | {get_task(task).display} | {t.finished} / {t.planned} | "
                         f"{t.wall_h:.2f} h{_on_gpus(t.gpu)} | {one} | {left} |")
    return "\n".join(lines)


def _on_gpus(gpus: dict) -> str:
    """' + 59 runs on NVIDIA H200 (0.12 h)' for each GPU that trained some of the runs; '' for none."""
    return "".join(f" + {g['runs']} runs on {name} ({g['busy_h']:.2f} h)" for name, g in sorted(gpus.items()))
