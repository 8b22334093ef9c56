"""Running a study's runs: the study lock (one driver per study), the dask queue that keeps the cluster's
workers busy task by task (`run_queue`), copying finished runs of other studies (`reuse:`), and the study's
log (sweep_log.jsonl)."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

from ..paths import folder_problem
from .executor import DaskPool, SweepError, execute_run, failed_record
from .plan import describe_group, edge_runs, record_status, reuse_source, seed_plan, task_blocks
from .spec import Run, SweepSpec


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
    options = {"preserve_lock_file": True} \
        if "preserve_lock_file" in inspect.signature(filelock.FileLock).parameters else {}
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
