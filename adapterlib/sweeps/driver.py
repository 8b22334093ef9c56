"""`python -m adapterlib sweep FILE.yaml`: a declarative grid of runs, resumable, on dask.distributed.

The sweep file format (grid, variants, per_task, runs, select_then_seeds) is read and
checked by adapterlib.sweeps.spec; sweeps/README.md documents it with examples.

A run is done when `<runs>/<run_id>.json` exists (status ok or failed): records are written
atomically by the worker that trained, so a killed sweep restarted with the same command redoes
only unfinished runs. `select_then_seeds` picks the best setting of each group on validation
(aggregate.select_best) once that group's grid runs have finished, and runs the extra seeds there.
When the groups are per task, the sweep works task by task (grid, then seeds), so a sweep
stopped half-way leaves whole tasks finished rather than a grid with no seeds.

This module runs a sweep (`run_sweep`); the work is done in adapterlib.sweeps.plan (what to run),
adapterlib.sweeps.queue (the study lock, the dask queue, reuse) and adapterlib.sweeps.progress (how far a
study is, cost estimates), whose names stay importable from here.
"""
from __future__ import annotations

import dataclasses
import os
import sys
import time
from pathlib import Path

import yaml

from ..paths import RESULTS_DIR, write_text_atomic  # noqa: F401 (RESULTS_DIR: re-exported)
from ..records import remove_abandoned_temp_files
from .executor import DaskPool, SweepError, check_addresses, plan_workers
from .overrides import parse_overrides  # noqa: F401

# the names of the modules driver.py was split into (plan, queue, progress) stay importable from here
from .plan import (  # noqa: F401
    describe_group,
    describe_plan,
    edge_runs,
    extended_grid,
    invalid_records,
    no_success_groups,
    plan,
    plan_records,
    read_record,
    record_status,
    report_invalid,
    reuse_source,
    seed_plan,
    seed_runs,
    study_folder,
    task_blocks,
    winners,
)
from .progress import (  # noqa: F401
    StudyProgress,
    TaskProgress,
    describe_estimate,
    epoch_costs,
    estimate_hours,
    measure_progress,
    study_progress,
)
from .queue import _job, _log, check_folder, check_lock_path, reuse_records, run_queue, sigterm_interrupts, study_lock  # noqa: F401
from .spec import Run, SweepSpec, SweepSpecError, expand, group_seeds, load_spec, make_run  # noqa: F401


def run_sweep(spec: SweepSpec, output_dir=None, scheduler: str | None = None, workers: int | None = None,
              threads_per_run: int | None = None, retry_failed: bool = False, progress: bool = True,
              command: str | None = None, lock: str | None = None, dashboard: str | None = "127.0.0.1:0",
              allow_slow_bf16: bool = False) -> dict:
    """Run every unfinished run of `spec` (then its select_then_seeds stage); returns counts.

    Records go to <study>/runs (study = output_dir or data/results/<name>); the exact sweep file
    is copied to <study>/sweep.yaml and each invocation is logged to <study>/sweep_log.jsonl.
    lock: a file each run holds an flock on while it trains (a machine shared with other jobs).
    dashboard: the LocalCluster's dashboard address (default: this machine only; None: no dashboard).
    allow_slow_bf16: train bf16 runs where the hardware has no native bf16 (refused otherwise, see
    adapterlib.precision); a LocalCluster is checked before anything is written, an existing cluster's
    workers once connected.
    """
    check_addresses(scheduler, dashboard)
    workers, threads = plan_workers(workers, threads_per_run, scheduler)
    check_lock_path(lock)
    folder = study_folder(spec, output_dir)
    runs_dir = folder / "runs"
    check_folder(folder, "study folder")
    check_folder(runs_dir, "records folder")
    grid = expand(spec)
    if not scheduler:  # the runs train on this machine
        check_run_precision(spec, output_dir, allow_slow_bf16)
    start = time.time()
    with study_lock(folder), sigterm_interrupts():
        runs_dir.mkdir(parents=True, exist_ok=True)
        # half-written records of a killed sweep; only under the lock, never a live writer's (records.py)
        remove_abandoned_temp_files(runs_dir)
        for path, reason in invalid_records(runs_dir):
            report_invalid([(path, reason)])
            if Path(path).parent == runs_dir:  # its run is redone: keep the bad file aside, never overwrite it
                Path(path).rename(f"{path}.invalid-{time.strftime('%Y%m%dT%H%M%S')}")
        write_text_atomic(folder / "sweep.yaml", spec.text or yaml.safe_dump(dataclasses.asdict(spec)))
        _log(folder, event="start", command=command or " ".join(sys.argv), workers=workers, threads_per_run=threads,
             scheduler=scheduler, runs=len(grid), cores=os.cpu_count())
        reused = reuse_records(spec, grid, folder)
        if reused:
            print(f"reused {len(reused)} finished runs of {', '.join(sorted({s for _, s in reused}))} "
                  "(same run id: same settings and seed); see sweep_log.jsonl", flush=True)
        rows = plan(spec, output_dir)
        todo = [r for status, r in rows if status == "todo" or (retry_failed and status == "failed")]
        later = measure_progress(spec, output_dir).planned_max - len(rows)
        print(describe_estimate(spec, todo, folder, later=later), flush=True)
        counts = {"ok": 0, "failed": 0, "skipped": 0, "reused": len(reused), "cpu_s": 0.0}
        interrupted = True
        try:
            with DaskPool(workers, scheduler, dashboard) as pool:  # counts grow as runs finish: the end line
                if scheduler:  # the runs train on the cluster's workers: ask them
                    check_run_precision(spec, output_dir, allow_slow_bf16, pool)
                run_queue(pool, spec, grid, folder, threads, retry_failed, progress, lock, counts)  # says them
            interrupted = False
        finally:
            _log(folder, event="end", wall_s=round(time.time() - start, 1), interrupted=interrupted,
                 **{**counts, "cpu_s": round(counts["cpu_s"], 1)})
    return {**counts, "wall_s": time.time() - start, "folder": str(folder)}


def precisions_to_train(spec: SweepSpec, output_dir=None) -> dict[str, int]:
    """{mixed precision other than "no": runs still to train in it} (runs `reuse:` would copy not counted)."""
    if spec.mode != "api":
        return {}
    folder, counts = study_folder(spec, output_dir), {}
    for status, run in plan(spec, output_dir):
        kind = run.fields.get("mixed_precision") or "no"
        if status == "todo" and kind != "no" and not reuse_source(spec, run, folder):
            counts[kind] = counts.get(kind, 0) + 1
    return counts


def check_run_precision(spec: SweepSpec, output_dir=None, allow_slow_bf16: bool = False, pool=None) -> None:
    """Refuse (SweepError, one line) a sweep whose runs to train use a precision that cannot run, or would be many
    times slower, where they train (adapterlib.precision): this machine, or with `pool` the cluster's workers."""
    from ..precision import precision_problem
    for kind, n in sorted(precisions_to_train(spec, output_dir).items()):
        if pool is None:
            problem = precision_problem(kind, allow_slow_bf16, "sweep")
        else:
            answers = pool.get().run(precision_problem, kind, allow_slow_bf16, "sweep")
            problem = next((f"{worker}: {p}" for worker, p in sorted(answers.items()) if p), None)
        if problem:
            raise SweepError(f"{spec.name}: {n} run(s) to train: {problem}")
