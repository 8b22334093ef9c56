"""Where sweep runs execute: a dask.distributed cluster, and the function each worker runs.

The worker writes the run's record itself (atomically), so whatever finished is on disk even
if the driver that submitted it is killed. The driver only decides what still has to run.

CPU discipline: a LocalCluster gets W single-threaded worker processes and each run sets
torch to T threads, with W x T <= the cores available (two 2-thread trainings on 2 cores run
many times slower than the same two one after the other).
"""
from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import logging
import os
import re
import socket
import tempfile
import time
import traceback
from pathlib import Path

from .. import records
from ..config import MAX_THREADS, TrainConfig
from ..errors import AdapterlibError


class SweepError(AdapterlibError, ValueError):
    """A sweep cannot start as asked (bad CPU plan, study locked, ...); printed as one line."""


def available_cores() -> int:
    """CPU cores this process may use (respects taskset / cgroup affinity where the OS reports it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def plan_workers(workers: int | None = None, threads: int | None = None, scheduler: str | None = None,
                 cores: int | None = None) -> tuple[int | None, int | None]:
    """(worker processes, torch threads per run) for a LocalCluster, never oversubscribing the cores.

    Defaults: all cores to one run at a time (one worker). With --scheduler the cluster is not
    ours: --workers does not apply and threads stay as asked (None = torch's default).
    """
    for name, value in (("--workers", workers), ("--threads-per-run", threads)):
        if value is not None and value < 1:
            raise SweepError(f"{name} must be >= 1, got {value}")
    if threads is not None and threads > MAX_THREADS:
        raise SweepError(f"--threads-per-run must be at most {MAX_THREADS}, got {threads}")
    if scheduler:
        if workers is not None:
            raise SweepError("--workers applies to the LocalCluster only; size an existing cluster where it runs")
        return None, threads
    cores = cores or available_cores()
    if threads is None:
        threads = max(1, cores // (workers or 1))
    workers = workers or max(1, cores // threads)
    if workers * threads > cores:
        raise SweepError(f"--workers {workers} x --threads-per-run {threads} = {workers * threads} threads exceeds the "
                         f"{cores} CPU cores available; concurrent runs would slow each other down many times")
    return workers, threads


SCHEDULER_SCHEMES = ("tcp", "tls", "ucx", "ws", "wss")
RESERVED_DOMAINS = (".invalid", ".example", ".test")  # RFC 6761/2606: never resolve (refused without a lookup)


def _host_problem(host: str) -> str | None:
    """Why `host` cannot be listened on / connected to, or None. Only a local name lookup, no connection."""
    host = host.strip("[]")
    if host in ("", "localhost"):
        return None
    with contextlib.suppress(ValueError):
        ipaddress.ip_address(host)
        return None
    if host.lower().rstrip(".").endswith(RESERVED_DOMAINS) or not all(
            part and len(part) < 64 for part in host.rstrip(".").split(".")):
        return f"host {host!r} does not resolve"
    try:
        socket.getaddrinfo(host, None)
    except (socket.gaierror, UnicodeError, OSError):
        return f"host {host!r} does not resolve"
    return None


def check_address(value: str, flag: str, scheme: bool) -> None:
    """Refuse a --scheduler (`tcp://host:port`) or --dashboard (`host:port`) address dask would fail on,
    or, worse, drop without a word: a missing or out-of-range port, an unknown scheme, a host that does not resolve."""
    example = "tcp://10.0.0.1:8786" if scheme else "127.0.0.1:8787"
    match = re.fullmatch(r"(?:(\w+)://)?(\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]*):(\d{1,5})", value.strip())
    if not match or (scheme and match.group(1) not in (*SCHEDULER_SCHEMES, None)) or (not scheme and match.group(1)):
        raise SweepError(f"{flag} {value!r} is not an address like {example}")
    port = int(match.group(3))
    if not (1 if scheme else 0) <= port <= 65535:
        raise SweepError(f"{flag} {value!r}: port {port} is out of range ({1 if scheme else 0}..65535)")
    problem = _host_problem(match.group(2))
    if problem or (scheme and not match.group(2)):
        raise SweepError(f"{flag} {value!r}: {problem or 'no host'}")


def check_addresses(scheduler: str | None, dashboard: str | None) -> None:
    """Both sweep addresses, before anything starts (dashboard None or 'off': no dashboard)."""
    if scheduler is not None:
        check_address(scheduler, "--scheduler", scheme=True)
    if dashboard not in (None, "off", "none", ""):
        check_address(dashboard, "--dashboard", scheme=False)


class DaskPool:
    """A dask client, started on first use: a LocalCluster of single-threaded worker processes,
    or a connection to an existing scheduler (`tcp://host:8786`, or a dask-jobqueue cluster's).

    The LocalCluster listens on 127.0.0.1 only; its dashboard at `dashboard` (default 127.0.0.1:0,
    this machine only, a free port; None: no dashboard). An existing scheduler is trusted input:
    dask unpickles what it receives from it."""

    def __init__(self, workers: int | None, scheduler: str | None = None, dashboard: str | None = "127.0.0.1:0"):
        self.workers, self.scheduler, self.dashboard = workers, scheduler, dashboard
        self.client = self.cluster = None

    def get(self):
        if self.client is None:
            import dask
            from dask.distributed import Client, LocalCluster
            if self.scheduler:
                self.client = Client(self.scheduler)
            else:
                with dask.config.set({"distributed.scheduler.allowed-failures": 1}):  # a crashing run is retried once
                    self.cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                                host="127.0.0.1", dashboard_address=self.dashboard,
                                                silence_logs=logging.ERROR)
                self.client = Client(self.cluster)
        return self.client

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def execute_run(job: dict) -> dict:
    """Run one job on a worker, write its record (ok or failed) to job["runs_dir"], return a summary.

    job: run_id, mode ("api" | "papermill"), fields (TrainConfig fields or notebook parameters),
    runs_dir, threads, save_checkpoint, notebook, keep_notebooks, lock (a file to flock per run).
    """
    import datasets
    datasets.disable_progress_bars()  # workers share the driver's terminal: keep its progress bar readable
    if job.get("threads"):
        import torch
        torch.set_num_threads(job["threads"])
        os.environ["OMP_NUM_THREADS"] = str(job["threads"])  # inherited by papermill kernels
    with _cpu_lock(job.get("lock")):
        start = time.time()
        try:
            record = _train(job) if job["mode"] == "api" else _notebook(job)
        except Exception as exc:  # any failure becomes a record; the other runs go on
            record = failed_record(job, exc, time.time() - start)
            records.write_json_atomic(Path(job["runs_dir"]) / f"{job['run_id']}.json", record)
    return summary(record)


@contextlib.contextmanager
def _cpu_lock(path: str | None):
    """Hold an exclusive flock on `path` for one run (a machine shared with other heavy jobs)."""
    if not path:
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _train(job: dict) -> dict:
    from ..train import train
    cfg = TrainConfig(**job["fields"])
    record = train(cfg, output_dir=job["runs_dir"], progress=False, save_checkpoint=job.get("save_checkpoint", False))
    if record["run_id"] != job["run_id"]:
        raise RuntimeError(f"run id mismatch: planned {job['run_id']}, trained {record['run_id']}")
    return record


def _notebook(job: dict) -> dict:
    """papermill-execute the notebook with the run's parameters; the record wraps what it recorded."""
    import papermill as pm
    start, out = time.time(), Path(job["runs_dir"])
    notebook = Path(job["notebook"])
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "results.json"
        keep = job.get("keep_notebooks")
        executed = out / "notebooks" / f"{job['run_id']}.ipynb" if keep else Path(tmp) / "out.ipynb"
        executed.parent.mkdir(parents=True, exist_ok=True)
        pm.execute_notebook(str(notebook), str(executed), parameters={**job["fields"], "results_path": str(results)},
                            cwd=str(notebook.parent), progress_bar=False, log_output=False)
        if not results.exists():
            raise RuntimeError(f"{notebook.name} never called record_results(results_path, ...)")
        values = json.loads(results.read_text())
    record = {**_identity(job), "status": "ok", "results": values, "timing": {"wall_s": time.time() - start},
              **records.provenance()}
    records.write_json_atomic(out / f"{job['run_id']}.json", record)
    return record


def _identity(job: dict) -> dict:
    fields = job["fields"]
    task = fields.get("task")
    try:
        from ..data import get_task
        task = get_task(task).name if task is not None else None
    except ValueError:
        pass
    key = "config" if job["mode"] == "api" else "parameters"
    out = {"run_id": job["run_id"], "mode": job["mode"], "task": task, "policy": fields.get("policy"),
           "seed": fields.get("seed"), key: fields}
    if job["mode"] == "papermill":
        out["notebook"] = str(job["notebook"])
    return out


def failed_record(job: dict, exc: BaseException, wall_s: float | None = None) -> dict:
    """Record of a run that raised: its config, the error line and the traceback's tail."""
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    return {**_identity(job), "status": "failed", "error": f"{type(exc).__name__}: {exc}",
            "traceback": "".join(lines)[-4000:], "timing": {"wall_s": wall_s}, **records.provenance()}


def summary(record: dict) -> dict:
    """What the driver prints and counts: id, status, error or scores, and the run's CPU time (its wall
    time times its torch threads, in seconds)."""
    return {**{k: record.get(k) for k in ("run_id", "status", "error", "dev_score", "metric")},
            "cpu_s": records.cpu_seconds(record)}
