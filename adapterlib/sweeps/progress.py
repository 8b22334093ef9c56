"""How far a study is (`study_progress`: finished / planned runs, their wall and CPU time, per task, as
`StudyProgress` / `TaskProgress` dataclasses) and what its runs still to do should cost, from the per-epoch
costs measured on earlier runs (`epoch_costs`, `estimate_hours`, `describe_estimate`)."""
from __future__ import annotations

import calendar
import dataclasses
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..data import get_task
from ..paths import RESULTS_DIR
from ..record import RunRecord
from ..records import accelerator, cpu_seconds, load_records, this_accelerator
from .plan import _axis, _group_key, plan_records, study_folder
from .spec import Run, SweepSpec, group_seeds


@dataclass
class TaskProgress:
    """One task of a study (`measure_progress`): its runs, and the wall / CPU time they took."""

    finished: int = 0
    failed: int = 0
    planned: int = 0
    planned_max: int = 0
    wall_h: float = 0.0
    cpu_h: float = 0.0
    reused: int = 0
    off_plan: int = 0
    gpu: dict = field(default_factory=dict)   # {gpu: {"runs": how many, "busy_h": hours training}}
    run_min: list[float] | None = None        # [shortest, longest] wall time of one finished run, minutes
    left_h: float | None = None               # core-hours its unfinished runs would take (None: no basis)
    walls: list[float] = field(default_factory=list, repr=False)   # wall s of its finished CPU runs
    cpus: list[float] = field(default_factory=list, repr=False)    # and their CPU s
    gpu_spans: dict = field(default_factory=dict, repr=False)      # {gpu: [(start, end) of each run]}

    def paid(self, record: RunRecord, wall: float) -> bool:
        """Count a run's time where it was spent: on a GPU (its span), else in the CPU totals."""
        gpu = accelerator(record)
        if gpu:
            self.gpu_spans.setdefault(gpu, []).append(_span(record, wall))
            return False
        self.wall_h += wall / 3600
        self.cpu_h += cpu_seconds(record) / 3600
        return True

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.repr}


TOTALS = ("finished", "failed", "planned", "planned_max", "wall_h", "cpu_h", "reused", "off_plan")


@dataclass
class StudyProgress:
    """How far a study is (`measure_progress`): its tasks' progress and the GPUs' use; the totals sum the tasks."""

    name: str
    by_task: dict[str, TaskProgress]
    tasks_complete: list[str]                 # tasks whose every run finished ok
    gpu: dict                                 # as TaskProgress.gpu, for the whole study

    @property
    def tasks(self) -> list[str]:
        return list(self.by_task)

    def total(self, key: str):
        """A TOTALS count summed over the tasks."""
        return sum(getattr(t, key) for t in self.by_task.values())

    finished = property(lambda self: self.total("finished"))
    failed = property(lambda self: self.total("failed"))
    planned = property(lambda self: self.total("planned"))
    planned_max = property(lambda self: self.total("planned_max"))
    wall_h = property(lambda self: self.total("wall_h"))
    cpu_h = property(lambda self: self.total("cpu_h"))
    reused = property(lambda self: self.total("reused"))
    off_plan = property(lambda self: self.total("off_plan"))

    def to_dict(self) -> dict:
        """The JSON form `study_progress` returns (and notebooks record)."""
        return {"name": self.name, **{k: self.total(k) for k in TOTALS}, "gpu": self.gpu, "tasks": self.tasks,
                "tasks_complete": self.tasks_complete, "by_task": {k: t.to_dict() for k, t in self.by_task.items()}}


def study_progress(spec: SweepSpec, output_dir=None) -> dict:
    """`measure_progress` as JSON: {"name", "finished", "failed", "planned", "planned_max", "wall_h", "cpu_h",
    "reused", "off_plan", "gpu", "tasks", "tasks_complete", "by_task": {task: TaskProgress's fields}}."""
    return measure_progress(spec, output_dir).to_dict()


def measure_progress(spec: SweepSpec, output_dir=None) -> StudyProgress:
    """How far a study is: finished / planned runs and the summed wall time of its run records, for the
    study and for each of its tasks; `cpu_h` weighs each run's wall time by its torch threads (the CPU
    time a sweep's budget is counted in). Records copied from another study (`reuse:`) count as
    finished and in `reused`, but their time belongs to the study that ran them. Records of runs the plan no
    longer has (`off_plan`: seeds of a setting that an lr past the grid's edge beat) count in the time, not
    in finished. Planned counts the seed
    runs of groups still waiting for their grid as one per extra seed the grid does not already have (a
    group whose grid runs all fail gets none); `planned_max` also counts, with budget_percent, the seeds of a
    second winner (the best within the budget) for each waiting group whose grid tries more than one setting
    apart from lr. Per task, `run_min` is the
    [shortest, longest] wall time of one finished run in minutes and `left_h` the core-hours its
    unfinished runs would take at the mean of its finished ones (None before any has finished).
    Runs trained on a GPU (their record's machine) count as finished but not in the wall and CPU time,
    the run times or the estimate, which are the CPU's: `gpu` gives, per GPU, the runs and the hours
    in which at least one of them was training (the union of their spans), for the study and each task."""
    rows = plan_records(spec, output_dir)
    runs_dir = study_folder(spec, output_dir) / "runs"
    planned_ids = {run.run_id for _, run, _ in rows}
    # records of runs the plan no longer has (seeds of a winner that an lr past the grid's edge replaced):
    # not finished work of the plan, but paid for, so their time counts
    off_plan = [r for r in (load_records(runs_dir) if runs_dir.is_dir() else []) if r.run_id not in planned_ids]
    tasks = list(dict.fromkeys(str(r.fields.get("task")) for _, r, _ in rows))
    by_task = {t: TaskProgress() for t in tasks}
    for record in off_plan:
        t = by_task.get(str(record.config.get("task", record.task)))
        wall = record.timing.wall_s or 0.0
        if t is None or record.reused_from or wall <= 0:
            continue
        t.off_plan += 1
        t.paid(record, wall)
    _count_planned(spec, rows, by_task)
    costs = None
    spans: dict = {}
    for task, t in by_task.items():
        for gpu, found in t.gpu_spans.items():
            spans.setdefault(gpu, []).extend(found)
        t.gpu = _gpu_summary(t.gpu_spans)
        t.run_min = [min(t.walls) / 60, max(t.walls) / 60] if t.walls else None
        t.left_h = (t.planned - t.finished) * sum(t.cpus) / len(t.cpus) / 3600 if t.cpus else None
        todo = [r for s, r, _ in rows if s == "todo" and str(r.fields.get("task")) == task]
        if todo and _emulated_note(todo):  # bf16 runs on a machine without native bf16: priced for this one
            t.left_h = None
        if t.left_h is None and todo:  # nothing of this task finished yet: per-epoch costs of earlier runs
            costs = costs if costs is not None else epoch_costs(sorted(RESULTS_DIR.glob("*/runs")))
            expected, _, unknown = estimate_hours(todo, costs)
            if unknown < len(todo):
                t.left_h = expected / (len(todo) - unknown) * (t.planned - t.finished)
    # complete: every run of the task finished ok (a group waiting for its grid has a todo grid run)
    unfinished = {str(r.fields.get("task")) for s, r, _ in rows if s != "ok"}
    return StudyProgress(spec.name, by_task, [t for t in tasks if t not in unfinished], _gpu_summary(spans))


def _count_planned(spec: SweepSpec, rows: list, by_task: dict[str, TaskProgress]) -> None:
    """Add the plan's runs (`plan_records` rows) to their tasks: planned (the seeds of groups still waiting for
    their grid too), finished, failed, reused, and the time of the runs trained by this study."""
    grid_seeds: dict = {}   # the seeds a group's grid already has get no extra run (e.g. seed 1 of RTE in glue_v2)
    axes: dict = {}         # the settings (apart from lr and seed) a group's grid tries
    for _, run, _ in rows:
        if spec.select_by and run.stage != "seeds":
            grid_seeds.setdefault(_group_key(spec, run), set()).add(run.fields.get("seed"))
            axes.setdefault(_group_key(spec, run), set()).add(_axis(run))
    waiting: set = set()
    for status, run, record in rows:
        t = by_task[str(run.fields.get("task"))]
        t.planned += 1
        t.planned_max += 1
        if spec.select_by and run.stage != "seeds" and status == "todo" and _group_key(spec, run) not in waiting:
            key = _group_key(spec, run)
            waiting.add(key)   # a group still waiting for its grid: its seed runs are planned too
            extra = len(set(group_seeds(spec, run.fields)) - grid_seeds[key])
            t.planned += extra
            # with budget_percent a group trying several settings may seed a second winner (planned_max counts it)
            t.planned_max += extra * (2 if spec.budget_percent is not None and len(axes[key]) > 1 else 1)
        if record is not None:
            wall = record.timing.wall_s or 0.0
            t.finished += 1
            t.failed += status == "failed"
            if record.reused_from:  # run (and paid for) by another study
                t.reused += 1
                continue
            if t.paid(record, wall) and wall > 0:
                t.walls.append(wall)
                t.cpus.append(cpu_seconds(record))


def _span(record: RunRecord, wall: float) -> tuple[float, float]:
    """(start, end) of a run in seconds since the epoch: it ended when its record was made."""
    created = record.created
    end = calendar.timegm(time.strptime(created, "%Y-%m-%dT%H:%M:%SZ")) if created else 0.0
    return end - wall, end


def _gpu_summary(spans_by_gpu: dict) -> dict:
    """{gpu: {"runs": how many, "busy_h": hours in which at least one was training}} from their spans."""
    return {gpu: {"runs": len(spans), "busy_h": _union_hours(spans)} for gpu, spans in spans_by_gpu.items()}


def _union_hours(spans) -> float:
    """Hours covered by at least one of the (start, end) spans."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total / 3600


def _cost_key(task, policy, max_train_examples, mixed_precision) -> tuple:
    return (get_task(task).name, policy, max_train_examples, mixed_precision or "no")


_HERE = object()


def epoch_costs(folders, device=_HERE) -> dict:
    """Measured cost of past runs, from the records under `folders`: {(task, policy, max_train_examples,
    mixed_precision): {"core_min_per_epoch": [...], "epochs_run_with_patience": [...]}}; the basis of
    `estimate_hours`. A run's cost is its wall time times its torch threads (core-minutes), so runs of
    1-thread and 2-thread sweeps compare; copies of other studies' runs (`reuse:`) count once, there.
    Only runs trained on `device` count (a GPU's name, or None for CPU runs; default: what runs started
    here would train on), since a run's time on a GPU says nothing of its time on a CPU."""
    device = this_accelerator() if device is _HERE else device
    costs: dict = {}
    for folder in folders:
        for rec in load_records(folder) if Path(folder).is_dir() else []:
            cfg, timing = rec.config, rec.timing
            if rec.status != "ok" or not timing.wall_s or not timing.epochs_run or rec.reused_from \
                    or accelerator(rec) != device:
                continue
            if cfg.get("mixed_precision") == "bf16" and rec.machine.cpu_bf16_native is False \
                    and device is None:  # emulated bf16: no measure of bf16 where it pays (estimate_hours)
                continue
            key = _cost_key(rec.task, cfg.get("policy"), cfg.get("max_train_examples"),
                            cfg.get("mixed_precision"))
            c = costs.setdefault(key, {"core_min_per_epoch": [], "epochs_run_with_patience": []})
            c["core_min_per_epoch"].append(cpu_seconds(rec) / 60 / timing.epochs_run)
            if cfg.get("patience"):
                c["epochs_run_with_patience"].append(timing.epochs_run)
    return costs


def estimate_hours(runs: list[Run], costs: dict, bf16_native: bool | None = None) -> tuple[float, float, int]:
    """(expected core-hours, core-hours at most, runs without a basis) for `runs`, from measured costs.

    A run costs the median core-minutes per epoch of finished runs of its task, policy, training-set
    size and precision (a precision never measured falls back to full precision's cost, an upper
    bound), times its epochs: `epochs` without early stopping; with `patience`, the median epochs
    such runs actually ran (the plan's `epochs` is then the "at most" figure). Estimates are for the machine
    that will run them, this one: where it has no native bf16 (`bf16_native`, default: ask torch), a bf16 run
    costs its fp32 cost times the slowdown of emulated bf16 measured on such a CPU (adapterlib.precision)."""
    from ..precision import BF16_SLOWDOWN_FACTOR
    from ..precision import bf16_native as native
    emulated = not (native() if bf16_native is None else bf16_native)
    expected = at_most = 0.0
    unknown = 0
    pooled = [e for c in costs.values() for e in c["epochs_run_with_patience"]]
    for run in runs:
        f = run.fields
        if "epochs" not in f:  # a papermill run (notebook parameters): no measured cost applies
            unknown += 1
            continue
        key = _cost_key(f.get("task"), f.get("policy"), f.get("max_train_examples"), f.get("mixed_precision"))
        slow = emulated and key[3] == "bf16"
        c = costs.get((*key[:3], "no")) if slow else costs.get(key) or costs.get((*key[:3], "no"))
        if not c:
            unknown += 1
            continue
        per_epoch = statistics.median_high(c["core_min_per_epoch"]) * (BF16_SLOWDOWN_FACTOR if slow else 1)
        ran = c["epochs_run_with_patience"] or pooled
        epochs = statistics.median_high(ran) if f.get("patience") and ran else f["epochs"]
        expected += per_epoch * min(epochs, f["epochs"]) / 60
        at_most += per_epoch * f["epochs"] / 60
    return expected, at_most, unknown


def describe_estimate(spec: SweepSpec, todo: list[Run], folder: Path, cores: int | None = None,
                      later: int = 0) -> str:
    """One line: what the runs still to do should cost, from the measured records of every study, in
    core-hours and in hours of a machine with `cores` cores kept busy (default: this machine's); `later`
    seed runs whose settings their grid has not chosen yet are named, not estimated."""
    folders = {folder / "runs", *RESULTS_DIR.glob("*/runs")}
    expected, at_most, unknown = estimate_hours(todo, epoch_costs(sorted(folders)))
    known = len(todo) - unknown
    cores = cores or os.cpu_count() or 1
    line = (f"estimated cost of {spec.name}: {len(todo)} runs to run; {known} of them about {expected:.1f} core-h "
            f"({at_most:.1f} at most), {expected / cores:.1f} h on {cores} busy cores, at the per-epoch cost "
            "measured on this study's and earlier runs")
    line += f"; {unknown} runs have no measured basis yet" if unknown else ""
    line += _emulated_note(todo)
    return line + (f"; then up to {later} seed runs, once their grids have chosen their settings" if later else "")


def _emulated_note(todo: list[Run]) -> str:
    """'; N bf16 runs at ...' where runs to do train in bf16 on a machine without native bf16 ('' otherwise)."""
    from ..precision import BF16_SLOWDOWN_FACTOR, bf16_native
    n = sum((r.fields.get("mixed_precision") or "no") == "bf16" for r in todo)
    if not n or bf16_native():
        return ""
    return (f"; its {n} bf16 runs at {BF16_SLOWDOWN_FACTOR:g}x their fp32 cost (this machine has no native bf16: "
            "sweep refuses them without --allow-slow-bf16; --set mixed_precision=no runs them in fp32)")
