"""`python -m adapterlib sweep FILE.yaml`: a declarative grid of runs, resumable, on dask.distributed.

The sweep file format (grid, variants, per_task, runs, select_then_seeds) is read and
checked by adapterlib.sweeps.spec; sweeps/README.md documents it with examples.

A run is done when `<runs>/<run_id>.json` exists (status ok or failed): records are written
atomically by the worker that trained, so a killed sweep restarted with the same command redoes
only unfinished runs. `select_then_seeds` picks the best setting of each group on validation
(aggregate.select_best) once that group's grid runs have finished, and runs the extra seeds there.
When the groups are per task, the sweep works task by task (grid, then seeds), so a sweep
stopped half-way leaves whole tasks finished rather than a grid with no seeds.
"""
from __future__ import annotations

import calendar
import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import signal
import statistics
import sys
import time
from pathlib import Path

import yaml

from ..data import get_task
from ..paths import RESULTS_DIR, folder_problem, write_text_atomic
from .executor import DaskPool, SweepError, check_addresses, execute_run, failed_record, plan_workers
from ..record import RunRecord
from ..records import (accelerator, cpu_seconds, load_records, read_record_file, remove_abandoned_temp_files,
                       this_accelerator)
from .spec import (Run, SweepSpec, SweepSpecError, expand, group_seeds, load_spec, make_run,  # noqa: F401
                   parse_overrides)


def _group_key(spec: SweepSpec, run: Run) -> tuple:
    return tuple(str(run.fields.get(k)) for k in spec.select_by)


def _axis(run: Run) -> str:
    """A run's setting apart from lr and seed: the runs of one lr grid share it."""
    return json.dumps({k: v for k, v in run.fields.items() if k not in ("lr", "seed")}, sort_keys=True, default=str)


def _past(lr: float, neighbour: float) -> float:
    """One grid step past `lr` away from `neighbour` (the same ratio), to two significant digits."""
    return float(f"{lr * lr / neighbour:.2g}")


def winners(spec: SweepSpec, frame, by) -> list[str]:
    """Run ids of each group's best setting on validation (aggregate.select_best over `by`) and, with
    select_then_seeds' budget_percent, each group's best among the settings that train at most that % of
    the base model per task, where it differs (a group with no setting within the budget adds nothing)."""
    from .aggregate import select_best
    ids = list(select_best(frame, by=by)["run_id"])
    within = frame[frame["percent_of_base"] <= spec.budget_percent] if spec.budget_percent is not None else frame[:0]
    if len(within):
        ids += [i for i in select_best(within, by=by)["run_id"] if i not in ids]
    return ids


def edge_runs(spec: SweepSpec, grid: list[Run], runs_dir: Path) -> list[Run]:
    """extend_edges: the runs that carry a grid one lr past its edge where the validation winner sits on it.

    For every group of `extend_edges.by` whose runs (grid and extensions so far) have all finished, the
    best setting on validation (`winners`, as select_then_seeds chooses: with budget_percent, the best within
    the budget too) is found; when its lr
    is the largest (smallest) of the lrs tried at that setting, the lr one step above (below) it, at the
    ratio of the last step, is added for the seeds the winner has, up to `steps` lrs past the grid's
    edge on each side. Groups with an unfinished run, no ok run, or one lr get nothing. Deterministic
    in the records, so a resumed sweep plans the same runs."""
    from .aggregate import records_frame
    if not spec.extend_steps:
        return []
    original: dict[str, set] = {}
    for run in grid:
        original.setdefault(_axis(run), set()).add(run.fields["lr"])
    runs, out = list(grid), []
    known = {r.run_id for r in runs}
    while True:
        groups: dict[tuple, list[Run]] = {}
        for run in runs:
            groups.setdefault(tuple(str(run.fields.get(k)) for k in spec.extend_by), []).append(run)
        added = []
        for members in groups.values():
            recs = [read_record(runs_dir, r) for r in members]
            ok = [rec for rec in recs if rec is not None and rec.status == "ok"]
            if any(rec is None for rec in recs) or not ok:
                continue
            by_id = {r.run_id: r for r in members}
            for best in [by_id[i] for i in winners(spec, records_frame(ok), spec.extend_by)]:
                axis = [r for r in members if _axis(r) == _axis(best)]
                lrs, lr, grid_lrs = sorted({r.fields["lr"] for r in axis}), best.fields["lr"], original[_axis(best)]
                if len(lrs) < 2 or lrs[0] < lr < lrs[-1]:
                    continue
                up = lr == lrs[-1]
                beyond = [x for x in lrs if (x > max(grid_lrs) if up else x < min(grid_lrs))]
                if len(beyond) >= spec.extend_steps:
                    continue
                new_lr = _past(lr, lrs[-2] if up else lrs[1])
                for seed in sorted({r.fields["seed"] for r in axis if r.fields["lr"] == lr}):
                    run = make_run(spec, {**best.fields, "lr": new_lr, "seed": seed}, stage="edge")
                    if run.run_id not in known:
                        known.add(run.run_id)
                        added.append(run)
        if not added:
            return out
        out += added
        runs += added


def extended_grid(spec: SweepSpec, grid: list[Run], runs_dir: Path) -> list[Run]:
    """The grid with the lrs extend_edges has added so far (see edge_runs)."""
    return grid + edge_runs(spec, grid, runs_dir)


def seed_plan(spec: SweepSpec, grid: list[Run], runs_dir: Path) -> tuple[list[Run], list[tuple]]:
    """select_then_seeds: (extra seed runs, groups without a successful grid run).

    Seeds go to the best grid setting of every group (and, with budget_percent, its best setting within
    the budget: see `winners`) whose grid runs have all finished (groups
    still waiting for a grid run get none yet); a finished group whose every run failed gets none
    and is listed (its select_by values) in the second item."""
    from .aggregate import records_frame
    if not spec.select_by:
        return [], []
    grid = extended_grid(spec, grid, runs_dir)   # a group waits for the lrs added past its grid's edge
    groups: dict[tuple, list[Run]] = {}
    for run in grid:
        groups.setdefault(_group_key(spec, run), []).append(run)
    finished, no_success = [], []
    for key, runs in groups.items():
        recs = [read_record(runs_dir, r) for r in runs]
        if all(rec is not None for rec in recs):
            finished += recs
            if not any(rec.status == "ok" for rec in recs):
                no_success.append(key)
    ok = [rec for rec in finished if rec.status == "ok"]
    if not ok:
        return [], no_success
    by_id = {r.run_id: r for r in grid}
    out = []
    for best_id in winners(spec, records_frame(ok), spec.select_by):
        for seed in group_seeds(spec, by_id[best_id].fields):
            run = make_run(spec, {**by_id[best_id].fields, "seed": seed}, stage="seeds")
            if run.run_id not in by_id:
                out.append(run)
    return out, no_success


def seed_runs(spec: SweepSpec, grid: list[Run], runs_dir: Path) -> list[Run]:
    """select_then_seeds: extra seeds at the best grid setting of every group whose grid runs have all
    finished (groups still waiting for a grid run get none yet, nor groups whose every run failed)."""
    return seed_plan(spec, grid, runs_dir)[0]


def describe_group(spec: SweepSpec, key: tuple) -> str:
    return ", ".join(f"{k}={v}" for k, v in zip(spec.select_by or (), key))


def task_blocks(spec: SweepSpec, grid: list[Run]) -> list[tuple[str, list[Run]]]:
    """The order of work: one block per task (in grid order) when seeds are chosen per task, else one block."""
    if "task" not in (spec.select_by or ()):
        return [("", grid)]
    blocks: dict[str, list[Run]] = {}
    for run in grid:
        blocks.setdefault(str(run.fields.get("task")), []).append(run)
    return list(blocks.items())


def read_record(runs_dir: Path, run: Run) -> RunRecord | None:
    """The run's record, or None while it is unfinished (also for a garbled or invalid file, which
    `invalid_records` reports and a sweep reruns)."""
    path = runs_dir / f"{run.run_id}.json"
    if not path.exists():
        return None
    return read_record_file(path)[0]


def invalid_records(runs_dir: Path) -> list[tuple[str, str]]:
    """(path, reason) of every garbled or invalid record file in `runs_dir` (left out everywhere)."""
    bad: list = []
    if Path(runs_dir).is_dir():
        load_records(runs_dir, bad)
    return bad


def report_invalid(bad, file=None) -> None:
    for path, reason in bad:
        print(f"warning: invalid run record excluded: {path}: {reason}", file=file or sys.stderr)


def record_status(runs_dir: Path, run: Run, record: RunRecord | None = None) -> str:
    """"ok" / "failed" for a finished run, "todo" otherwise (also for an unreadable file)."""
    record = read_record(runs_dir, run) if record is None else record
    return "todo" if record is None else record.status


@contextlib.contextmanager
def study_lock(folder: Path):
    """One driver per study at a time: an OS lock (flock, through `filelock`) on <study>/.sweep.lock,
    held for the driver's lifetime. The kernel releases it when the process ends, even on kill -9;
    the file itself stays (its existence means nothing), so no driver can remove another's lock."""
    import inspect

    import filelock
    check_folder(folder, "study folder")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ".sweep.lock"
    # native locks only: never filelock's soft fallback (a lock file whose existence is the lock)
    options = {"preserve_lock_file": True} if "preserve_lock_file" in inspect.signature(filelock.FileLock).parameters else {}
    lock = filelock.FileLock(str(path), timeout=0, thread_local=False, **options)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise SweepError(f"another sweep is running on {folder} (it holds the lock on {path}); "
                         "wait for it or stop it") from None
    try:
        yield
    finally:
        lock.release()


def check_folder(folder: Path, what: str) -> None:
    """A folder that is to be created or written: a clear error if it (or a parent) is a file."""
    problem = folder_problem(folder)
    if problem:
        raise SweepError(f"{what} {folder}: {problem}")


def check_lock_path(lock: str | None) -> None:
    """--lock FILE: its folder must exist and be writable, and FILE (if it exists) a writable file."""
    if not lock:
        return
    path = Path(lock).expanduser()
    if path.exists():
        if not path.is_file():
            raise SweepError(f"--lock {lock}: not a file")
        if not os.access(path, os.W_OK):
            raise SweepError(f"--lock {lock}: file is not writable")
    elif not path.parent.is_dir():
        raise SweepError(f"--lock {lock}: folder {path.parent} does not exist")
    elif not os.access(path.parent, os.W_OK | os.X_OK):
        raise SweepError(f"--lock {lock}: folder {path.parent} is not writable")


def _job(spec: SweepSpec, run: Run, runs_dir: Path, threads: int | None, lock: str | None = None) -> dict:
    return {"run_id": run.run_id, "mode": spec.mode, "fields": run.fields, "runs_dir": str(runs_dir),
            "threads": threads, "save_checkpoint": spec.save_checkpoint, "notebook": spec.notebook,
            "keep_notebooks": spec.keep_notebooks, "lock": lock}


def _result(future, spec: SweepSpec, run: Run, runs_dir: Path, threads: int | None, lock: str | None) -> dict:
    try:
        return future.result()
    except Exception as exc:  # the worker process died (KilledWorker) or could not run the task
        from ..records import write_json_atomic
        result = failed_record(_job(spec, run, runs_dir, threads, lock), exc)
        write_json_atomic(runs_dir / f"{run.run_id}.json", result)
        return result


def run_queue(pool: DaskPool, spec: SweepSpec, grid: list[Run], folder: Path, threads: int | None,
              retry_failed: bool = False, progress: bool = True, lock: str | None = None,
              counts: dict | None = None) -> dict:
    """Train every unfinished run of `grid`, then (select_then_seeds) the seeds of each group once its
    grid runs have finished; returns counts (ok, failed, skipped, reused, and cpu_s: the CPU time of the
    runs trained now, wall time x torch threads). Given `counts`, adds to it as runs finish, so a caller
    interrupted part-way still knows what finished.

    Order of work: task by task (the order of `task_blocks`), each task's grid before its seeds, and a
    task's seeds before the next task's grid. The driver keeps only as many runs in flight as the cluster
    has worker threads and submits the next by that order whenever one finishes, so a worker never idles
    while the tail of one stage finishes (it starts the next task's grid), and a sweep stopped part-way
    leaves whole tasks finished, up to the runs that were in flight."""
    from dask.distributed import wait
    from tqdm.auto import tqdm
    runs_dir = folder / "runs"
    counts = {"ok": 0, "failed": 0, "skipped": 0, "reused": 0, "cpu_s": 0.0} if counts is None else counts
    blocks = task_blocks(spec, grid)
    rank = {task: i for i, (task, _) in enumerate(blocks)}
    queue: list[tuple[int, int, int, Run]] = []   # (task rank, 0 grid / 1 seeds, position, run)
    seen: set[str] = set()
    told: set = set()

    def enqueue(runs: list[Run], stage: int) -> int:
        runs = [r for r in runs if r.run_id not in seen]
        seen.update(r.run_id for r in runs)
        counts["reused"] += len(reuse_records(spec, runs, folder))
        todo = _todo(runs, runs_dir, retry_failed)
        counts["skipped"] += len(runs) - len(todo)
        for run in todo:
            task = str(run.fields.get("task")) if len(blocks) > 1 else ""
            queue.append((rank.get(task, len(blocks)), stage, len(queue), run))
        queue.sort(key=lambda item: item[:3])
        return len(todo)

    def plan_seeds() -> int:
        extra = enqueue(edge_runs(spec, grid, runs_dir), 0)  # an lr past the grid's edge comes before the seeds
        runs, no_success = seed_plan(spec, grid, runs_dir)
        for key in [k for k in no_success if k not in told]:
            told.add(key)
            print(f"select_then_seeds: no successful grid run for {describe_group(spec, key)}; "
                  "its seeds are skipped", file=sys.stderr)
        return extra + enqueue(runs, 1)

    total = enqueue(grid, 0) + plan_seeds()
    running: dict = {}
    with tqdm(total=total, desc=f"{spec.name} runs", disable=not progress, file=sys.stderr) as bar:
        while queue or running:
            appeared = 0
            if queue:
                client = pool.get()
                capacity = pool.workers or max(1, sum(client.nthreads().values()))
                while queue and len(running) < capacity:
                    run = queue.pop(0)[3]
                    if not _todo([run], runs_dir, retry_failed):  # its record appeared since the plan: another
                        appeared += 1                             # machine or driver trained it; keep theirs
                        continue
                    future = client.submit(execute_run, _job(spec, run, runs_dir, threads, lock),
                                           key=f"run-{run.run_id}", pure=False)
                    running[future] = run
            if appeared:
                counts["skipped"] += appeared
                bar.update(appeared)
            if not running:
                if not queue and (spec.select_by or spec.extend_steps) and appeared:
                    bar.total += plan_seeds()  # the skipped runs may have completed a group
                continue
            done = wait(list(running), return_when="FIRST_COMPLETED").done
            for future in done:
                run = running.pop(future)
                result = _result(future, spec, run, runs_dir, threads, lock)
                counts[result["status"]] += 1
                counts["cpu_s"] += result.get("cpu_s") or 0.0
                if result["status"] == "failed":
                    bar.write(f"failed: {run.run_id}: {str(result['error']).splitlines()[0][:300]}", file=sys.stderr)
                bar.set_postfix(ok=counts["ok"], failed=counts["failed"])
                bar.update()
            if (spec.select_by or spec.extend_steps) and done:
                added = plan_seeds()  # groups whose grid just finished get their edge lrs or their seeds now
                if added:
                    bar.total += added
                    bar.refresh()
    return counts


def reuse_source(spec: SweepSpec, run: Run, folder: Path) -> tuple[str, Path, RunRecord] | None:
    """(study, record file, record) of the first `reuse:` study holding an ok record of `run` (same run
    id) and, when this sweep keeps checkpoints, the run's checkpoint folder too; None if there is none."""
    for study in spec.reuse:
        source = folder.parent / study / "runs" / f"{run.run_id}.json"
        record = read_record_file(source)[0] if source.is_file() else None
        if record is None or record.status != "ok":
            continue
        if spec.save_checkpoint and not (source.parent / run.run_id).is_dir():
            continue
        return study, source, record
    return None


def reuse_records(spec: SweepSpec, runs: list[Run], folder: Path) -> list[tuple[str, str]]:
    """`reuse:` copy each unfinished run's ok record from the first listed study that has one.

    A run id is a hash of the whole TrainConfig (seed included), so a record with the same id in another
    study is the same run. The copy is that record plus `reused_from` (the study that ran it and the
    sha256 of its record file there); with `save_checkpoint` the run's checkpoint folder is copied too.
    `status` leaves a copy's wall time out of this study's CPU time (the study that ran it paid it).
    Returns (run_id, study that ran it) for every copy. Call it under the study lock."""
    from ..records import write_json_atomic
    runs_dir, copied = folder / "runs", []
    for run in runs:
        if (runs_dir / f"{run.run_id}.json").exists():
            continue
        found = reuse_source(spec, run, folder)
        if found:
            study, source, record = found
            if spec.save_checkpoint:  # the checkpoint first: a record without its checkpoint would count as done
                target = runs_dir / run.run_id
                shutil.rmtree(target, ignore_errors=True)
                shutil.copytree(source.parent / run.run_id, target)
            # a copy of a copy keeps the first provenance: the study that ran it, and that record's sha256
            origin = record.reused_from or {"study": study, "sha256": hashlib.sha256(source.read_bytes()).hexdigest()}
            write_json_atomic(runs_dir / source.name, {**record.to_json(), "reused_from": origin})
            copied.append((run.run_id, origin["study"]))
    if copied:
        _log(folder, event="reused", runs={rid: study for rid, study in copied})
    return copied


def _todo(runs: list[Run], runs_dir: Path, retry_failed: bool) -> list[Run]:
    redo = ("todo", "failed") if retry_failed else ("todo",)
    return [r for r in runs if record_status(runs_dir, r) in redo]


def _log(folder: Path, **event) -> None:
    with open(folder / "sweep_log.jsonl", "a") as f:
        f.write(json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **event}) + "\n")


@contextlib.contextmanager
def sigterm_interrupts():
    """SIGTERM (`kill`, a cluster's job limit, the end of a session) raises KeyboardInterrupt in the driver,
    as Ctrl-C does, so the study's log gets its "end" line and finished records stay as they are."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave the handler alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def study_folder(spec: SweepSpec, output_dir=None) -> Path:
    from .aggregate import RESULTS_DIR
    return Path(output_dir) if output_dir else RESULTS_DIR / spec.name


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
        later = study_progress(spec, output_dir)["planned_max"] - len(rows)
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


def plan_records(spec: SweepSpec, output_dir=None) -> list[tuple[str, Run, dict | None]]:
    """(status, run, record or None) for every run the sweep knows now: the grid, then the seeds of
    finished groups; each record is read once."""
    runs_dir = study_folder(spec, output_dir) / "runs"
    grid = expand(spec)
    runs = extended_grid(spec, grid, runs_dir) + seed_runs(spec, grid, runs_dir)
    return [(record_status(runs_dir, r, rec), r, rec) for r in runs for rec in [read_record(runs_dir, r)]]


def no_success_groups(spec: SweepSpec, output_dir=None) -> list[str]:
    """select_then_seeds groups whose grid runs all finished and all failed (they get no seeds)."""
    grid = expand(spec)
    return [describe_group(spec, k) for k in seed_plan(spec, grid, study_folder(spec, output_dir) / "runs")[1]]


def plan(spec: SweepSpec, output_dir=None) -> list[tuple[str, Run]]:
    """(status, run) for every run the sweep knows now: the grid, then the seeds of finished groups."""
    return [(status, run) for status, run, _ in plan_records(spec, output_dir)]


def describe_plan(spec: SweepSpec, output_dir=None) -> str:
    rows = plan(spec, output_dir)
    folder = study_folder(spec, output_dir)
    lines = [f"sweep {spec.name} ({spec.mode}): records in {folder / 'runs'}"]
    reuse = {run.run_id: found[0] for status, run in rows if status == "todo"
             for found in [reuse_source(spec, run, folder)] if found}
    lines += [f"  {status:<6} {run.stage:<5} {run.run_id}" + (f"  (to be copied from {reuse[run.run_id]})"
                                                              if run.run_id in reuse else "") for status, run in rows]
    if spec.extend_steps:
        lines.append(f"extend_edges (where the validation winner per {', '.join(spec.extend_by)} sits on the edge of "
                     f"its lr grid, up to {spec.extend_steps} lr(s) past it): "
                     f"{sum(run.stage == 'edge' for _, run in rows)} runs so far")
    if spec.select_by:
        n_seed = sum(run.stage == "seeds" for _, run in rows)
        waiting = any(s == "todo" for s, r in rows if r.stage != "seeds")
        budget = (f"; also the best within {spec.budget_percent:g}% of the base per task"
                  if spec.budget_percent is not None else "")
        budget += "".join(f"; seeds {seeds} where {where}" for where, seeds in spec.seeds_for)
        lines.append(f"select_then_seeds (best per {', '.join(spec.select_by)} on validation{budget}, seeds {spec.seeds}): "
                     + f"{n_seed} runs" + (" so far; each group's seeds are planned once its grid runs finish"
                                           if waiting else ""))
        lines += [f"  no successful grid run for {g}: its seeds are skipped" for g in no_success_groups(spec, output_dir)]
    bad = invalid_records(folder / "runs")
    lines += [f"  invalid record (excluded; its run is rerun): {path}: {reason}" for path, reason in bad]
    counts = {s: sum(st == s for st, _ in rows) for s in ("ok", "failed", "todo")}
    lines.append(f"{len(rows)} runs: {counts['ok']} done, {counts['failed']} failed, {counts['todo']} to run"
                 + (f" ({len(reuse)} of them to be copied from {', '.join(spec.reuse)})" if reuse else ""))
    return "\n".join(lines)


def study_progress(spec: SweepSpec, output_dir=None) -> dict:
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
    grid_seeds: dict = {}   # the seeds a group's grid already has get no extra run (e.g. seed 1 of RTE in glue_v2)
    axes: dict = {}         # the settings (apart from lr and seed) a group's grid tries
    for _, run, _ in rows:
        if spec.select_by and run.stage != "seeds":
            grid_seeds.setdefault(_group_key(spec, run), set()).add(run.fields.get("seed"))
            axes.setdefault(_group_key(spec, run), set()).add(_axis(run))
    tasks = list(dict.fromkeys(str(r.fields.get("task")) for _, r, _ in rows))
    by_task = {t: {"finished": 0, "failed": 0, "planned": 0, "planned_max": 0, "wall_h": 0.0, "cpu_h": 0.0,
                   "reused": 0, "off_plan": 0, "walls": [], "cpus": [], "gpu_spans": {}}
               for t in tasks}

    def paid(t: dict, record: RunRecord, wall: float) -> bool:
        """Count a run's time where it was spent: on a GPU (its span), else in the CPU totals."""
        gpu = accelerator(record)
        if gpu:
            t["gpu_spans"].setdefault(gpu, []).append(_span(record, wall))
            return False
        t["wall_h"] += wall / 3600
        t["cpu_h"] += cpu_seconds(record) / 3600
        return True

    for record in off_plan:
        t = by_task.get(str(record.config.get("task", record.task)))
        wall = record.timing.wall_s or 0.0
        if t is None or record.reused_from or wall <= 0:
            continue
        t["off_plan"] += 1
        paid(t, record, wall)
    waiting: set = set()
    for status, run, record in rows:
        t = by_task[str(run.fields.get("task"))]
        t["planned"] += 1
        t["planned_max"] += 1
        if spec.select_by and run.stage != "seeds" and status == "todo" and _group_key(spec, run) not in waiting:
            key = _group_key(spec, run)
            waiting.add(key)   # a group still waiting for its grid: its seed runs are planned too
            extra = len(set(group_seeds(spec, run.fields)) - grid_seeds[key])
            t["planned"] += extra
            # with budget_percent a group trying several settings may seed a second winner (planned_max counts it)
            t["planned_max"] += extra * (2 if spec.budget_percent is not None and len(axes[key]) > 1 else 1)
        if record is not None:
            wall = record.timing.wall_s or 0.0
            t["finished"] += 1
            t["failed"] += status == "failed"
            if record.reused_from:  # run (and paid for) by another study
                t["reused"] += 1
                continue
            if paid(t, record, wall) and wall > 0:
                t["walls"].append(wall)
                t["cpus"].append(cpu_seconds(record))
    costs = None
    spans: dict = {}
    for task, t in by_task.items():
        walls, cpus = t.pop("walls"), t.pop("cpus")
        own = t.pop("gpu_spans")
        for gpu, found in own.items():
            spans.setdefault(gpu, []).extend(found)
        t["gpu"] = _gpu_summary(own)
        t["run_min"] = [min(walls) / 60, max(walls) / 60] if walls else None
        t["left_h"] = (t["planned"] - t["finished"]) * sum(cpus) / len(cpus) / 3600 if cpus else None
        todo = [r for s, r, _ in rows if s == "todo" and str(r.fields.get("task")) == task]
        if todo and _emulated_note(todo):  # bf16 runs on a machine without native bf16: priced for this one
            t["left_h"] = None
        if t["left_h"] is None and todo:  # nothing of this task finished yet: per-epoch costs of earlier runs
            costs = costs if costs is not None else epoch_costs(sorted(RESULTS_DIR.glob("*/runs")))
            expected, _, unknown = estimate_hours(todo, costs)
            if unknown < len(todo):
                t["left_h"] = expected / (len(todo) - unknown) * (t["planned"] - t["finished"])
    # complete: every run of the task finished ok (a group waiting for its grid has a todo grid run)
    unfinished = {str(r.fields.get("task")) for s, r, _ in rows if s != "ok"}
    total = {k: sum(t[k] for t in by_task.values()) for k in ("finished", "failed", "planned", "planned_max", "wall_h",
                                                               "cpu_h", "reused", "off_plan")}
    return {"name": spec.name, **total, "gpu": _gpu_summary(spans), "tasks": tasks,
            "tasks_complete": [t for t in tasks if t not in unfinished], "by_task": by_task}


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
