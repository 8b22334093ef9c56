"""Run records: one JSON file per run, written atomically, with full provenance."""
from __future__ import annotations

import json
import math
import os
import platform
import re
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .record import RunRecord


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"


def _writer() -> str:
    """Who writes a temp file (in its name), so a cleanup never removes a live process's half-written file."""
    return f"pid{os.getpid()}@{_host()}"


def write_json_atomic(path, obj) -> Path:
    """Write JSON to a temp file in the same directory, fsync, then rename over `path`.

    A crash at any moment leaves either the old file or the new one, never half of one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{_writer()}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=2, default=_jsonable)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _jsonable(obj):
    if hasattr(obj, "to_json"):  # a RunRecord
        return obj.to_json()
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


REVISION_ENV = "ADAPTERLIB_GIT_REVISION"


def git_revision() -> dict:
    """Commit of the adapterlib checkout (and whether it had uncommitted changes), if any.

    A copy of the code whose git history is missing or not its own (a tarball on a cluster node, a folder
    synced to a GPU machine) names the commit it was made from in $ADAPTERLIB_GIT_REVISION: the record
    then gives that commit, "dirty": None (unknown) and "source": "$ADAPTERLIB_GIT_REVISION"."""
    given = os.environ.get(REVISION_ENV, "").strip()
    if given:
        return {"commit": given, "dirty": None, "source": f"${REVISION_ENV}"}
    from .paths import checkout
    root = checkout()
    if root is None:  # an installed wheel: no checkout to ask
        return {"commit": None, "dirty": None}
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    if rev.returncode != 0:
        return {"commit": None, "dirty": None}
    return {"commit": rev.stdout.strip(), "dirty": bool(dirty.stdout.strip())}


def versions() -> dict:
    import datasets
    import transformers

    from .methods import peft_version

    from ._version import __version__  # not the package: records is imported while it loads
    return {"adapterlib": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "datasets": datasets.__version__,
            "peft": peft_version()}  # LoRA, (IA)3 and prefix runs train peft's modules


def machine() -> dict:
    """Where a run trains: platform, CPU (its name, cores, whether it computes bf16 natively), torch threads, GPU."""
    from .precision import cpu_bf16_native
    caps = torch.cpu.get_capabilities() if hasattr(torch.cpu, "get_capabilities") else {}
    info = {"platform": platform.platform(), "processor": platform.machine(),
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "cpu_name": caps.get("cpu_name") or platform.processor() or None, "cpu_bf16_native": cpu_bf16_native()}
    gpu = this_accelerator()
    return {**info, "gpu": gpu} if gpu else info


def accelerator(record: RunRecord | dict) -> str | None:
    """The GPU a run trained on (its record's machine), or None for a CPU run."""
    if not isinstance(record, dict):
        return record.machine.gpu
    return (record.get("machine") or {}).get("gpu")


def this_accelerator() -> str | None:
    """The GPU runs started here would train on (what `machine` records), or None on a CPU-only machine."""
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def cpu_seconds(record: RunRecord | dict) -> float:
    """A run's CPU time: its wall time times the torch threads it ran with (0 when it has no timing)."""
    if not isinstance(record, dict):
        return (record.timing.wall_s or 0.0) * (record.machine.torch_threads or 1)
    wall = (record.get("timing") or {}).get("wall_s") or 0.0
    return wall * ((record.get("machine") or {}).get("torch_threads") or 1)


def provenance() -> dict:
    """Where and when a record was made: library versions, git revision, machine, UTC time (every record)."""
    return {"versions": versions(), "git": git_revision(), "machine": machine(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def peak_rss() -> tuple[float | None, str]:
    """(peak resident set size of this process in MiB, how it was measured).

    Linux: VmHWM from /proc/self/status, the high-water mark of this process's own address
    space. Not ru_maxrss: Linux carries the parent's peak into a child's ru_maxrss across
    fork and exec, so a run in a sweep worker or a subprocess would report at least its
    parent's size. Elsewhere psutil: Windows' peak working set; on other systems (macOS)
    psutil has no peak, so the resident size now, at the end of the run, is recorded and named so.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024, "VmHWM (/proc/self/status)"
    except OSError:
        pass
    import psutil
    info = psutil.Process().memory_info()
    if hasattr(info, "peak_wset"):
        return info.peak_wset / 2**20, "psutil peak_wset"
    return info.rss / 2**20, "psutil rss at the end of the run (no peak available on this OS)"


def peak_memory_mb() -> dict:
    """Peak resident set size of this process (OS view, `peak_rss`) and, on GPU, peak allocated memory."""
    rss, method = peak_rss()
    out = {"peak_rss_mb": rss, "peak_rss_method": method}
    if torch.cuda.is_available():
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


RECORD_SCHEMA = 1  # the run-record layout this adapterlib reads; a record's "schema" key (absent = 1)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# The nested fields readers use, with their types where a record has them (records older than a field lack it):
# "num" a number (int or float, not bool; NaN allowed), "int" an integer, "str", "bool", "list", "map"; a
# trailing "?" also allows null. record_problem checks them, so no reader meets a string where it expects a mapping.
NESTED: dict[str, dict[str, str]] = {
    "timing": {"wall_s": "num?", "train_s": "num?", "steps": "num?", "epochs_run": "num?", "stopped_early": "bool",
               "planned_steps": "num?", "steps_per_s": "num?", "s_per_step": "num?", "tokens_per_s": "num?",
               "padded_tokens_per_s": "num?", "resumed_at_epochs": "list"},
    "machine": {"platform": "str?", "processor": "str?", "cpu_count": "int?", "torch_threads": "int?", "gpu": "str?",
                "cpu_name": "str?", "cpu_bf16_native": "bool?"},
    "params": {"trainable": "num", "frozen": "num", "base": "num", "total": "num", "percent_of_base": "num",
               "percent_of_base_no_embedding": "num"},
    "selected": {"step": "num", "epoch": "num", "train_loss": "num?"},
    "reused_from": {"study": "str", "sha256": "str"},
    "memory": {"peak_rss_mb": "num?", "peak_gpu_mb": "num?"},
    "base_model": {"name": "str?", "path": "str?", "model_type": "str?"},
}
TOP_LEVEL = {"seed": "int?", "created": "str", "history": "list", "dev": "map", "majority": "map",
             "earlier_segments": "list", "adapter_config": "map?", "path": "str", "checkpoint": "str?", "error": "str?",
             "speedups": "map", "git": "map", "versions": "map", "data_source": "map", "splits": "map"}
_KINDS = {"num": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
          "int": lambda v: isinstance(v, int) and not isinstance(v, bool), "str": lambda v: isinstance(v, str),
          "bool": lambda v: isinstance(v, bool), "list": lambda v: isinstance(v, list),
          "map": lambda v: isinstance(v, dict)}
_NAMES = {"num": "a number", "int": "an integer", "str": "a string", "bool": "true or false", "list": "a list",
          "map": "a mapping"}


def _type_problem(where: str, value, kind: str) -> str | None:
    optional, kind = kind.endswith("?"), kind.rstrip("?")
    if (value is None and optional) or _KINDS[kind](value):
        return None
    return f"{where} must be {_NAMES[kind]}{' or null' if optional else ''}, got {type(value).__name__} {value!r:.60}"


def nested_problem(rec: dict) -> str | None:
    """The first nested field of `rec` whose type is wrong (NESTED, TOP_LEVEL, history, dev, config), or None."""
    for key, kind in TOP_LEVEL.items():
        if key in rec and (problem := _type_problem(key, rec[key], kind)):
            return problem
    for key, fields in NESTED.items():
        if key in rec and not isinstance(rec[key], dict):
            return f"{key} must be a mapping, got {type(rec[key]).__name__} {rec[key]!r:.60}"
        for name, kind in fields.items():
            if name in (rec.get(key) or {}) and (problem := _type_problem(f"{key}.{name}", rec[key][name], kind)):
                return problem
    for i, entry in enumerate(rec.get("history") or []):
        if not isinstance(entry, dict):
            return f"history[{i}] must be a mapping, got {type(entry).__name__}"
        for name, value in entry.items():
            kind = "num" if name == "step" else "num?"
            if (problem := _type_problem(f"history[{i}].{name}", value, kind)):
                return problem
    for split, scores in (rec.get("dev") or {}).items():
        if not isinstance(scores, dict) or not all(_KINDS["num"](v) for v in scores.values()):
            return f"dev.{split} must map metric names to numbers, got {scores!r:.60}"
    return _config_problem(rec.get("config"))


def _config_problem(config) -> str | None:
    """A TrainConfig field of a record's config whose value has the wrong type (other keys are not checked)."""
    if not isinstance(config, dict):
        return None
    import dataclasses

    from .config import TrainConfig
    for f in dataclasses.fields(TrainConfig):
        if f.name not in config:
            continue
        kinds = [k.strip() for k in str(f.type).split("|")]
        value = config[f.name]
        ok = (value is None and "None" in kinds) or any(
            (k in ("float", "int") and _KINDS["num"](value))  # numbers are compared as floats by every reader
            or (k == "str" and isinstance(value, str)) or (k == "bool" and isinstance(value, bool))
            or (k == "list[int]" and isinstance(value, list) and all(_KINDS["int"](v) for v in value)) for k in kinds)
        if not ok:
            return f"config.{f.name} must be {f.type}, got {value!r:.60}"
    return None


def record_problem(rec, path=None) -> str | None:
    """Why `rec` is not a valid run record (schema RECORD_SCHEMA), or None if it is one.

    Every record: run_id (str, the file's name), status ok|failed, mode api|papermill (absent: api),
    its settings (config, api; parameters, papermill), task and policy (api). A failed run has its
    error; an ok api run has metric, selected (with its validation score), dev_score and params;
    an ok papermill run has results.
    """
    if not isinstance(rec, dict):
        return f"not a JSON object but a {type(rec).__name__}"
    schema = rec.get("schema", 1)
    if type(schema) is not int or not 1 <= schema <= RECORD_SCHEMA:
        return f"schema {schema!r}; this adapterlib reads run records of schema 1..{RECORD_SCHEMA}"
    run_id = rec.get("run_id")
    if not isinstance(run_id, str) or not run_id:
        return "no run_id (a non-empty string)"
    if path is not None and Path(path).stem != run_id:
        return f"its run_id {run_id!r} is not its file name"
    if rec.get("status") not in ("ok", "failed"):
        return f"status must be 'ok' or 'failed', got {rec.get('status')!r}"
    mode = rec.get("mode", "api")
    if mode not in ("api", "papermill"):
        return f"mode must be 'api' or 'papermill', got {mode!r}"
    settings = "config" if mode == "api" else "parameters"
    if not isinstance(rec.get(settings), dict):
        return f"no {settings} (a mapping of the run's settings)"
    nested = nested_problem(rec)
    if nested:
        return nested
    if mode == "api":
        for key in ("task", "policy"):
            if not isinstance(rec.get(key), str):
                return f"no {key} (a string)"
    if rec["status"] == "failed":
        return None if isinstance(rec.get("error"), str) else "a failed run without its error (a string)"
    if mode == "papermill":
        return None if isinstance(rec.get("results"), dict) else "an ok run without results (a mapping)"
    metric = rec.get("metric")
    if not isinstance(metric, str):
        return "an ok run without metric (a string)"
    selected = rec.get("selected")
    if not isinstance(selected, dict) or not _number(selected.get(f"validation_{metric}")):
        return f"an ok run without selected.validation_{metric} (a finite number)"
    if not _number(rec.get("dev_score")):
        return f"an ok run without a finite dev_score, got {rec.get('dev_score')!r}"
    if not isinstance(rec.get("params"), dict):
        return "an ok run without params (a mapping)"
    return None


def read_record_file(path) -> tuple[RunRecord | None, str | None]:
    """(record, None) for a valid run record file, (None, reason) otherwise (adapterlib.record.RunRecord)."""
    from .record import RecordError, RunRecord
    try:
        return RunRecord.from_json(path), None
    except RecordError as e:
        return None, str(e).removeprefix(f"{path}: ")


def load_records(folder, bad: list | None = None) -> list[RunRecord]:
    """Every valid run record in `folder` itself (RunRecords, each with its file as `source`), skipping temp files.

    Only the folder's own *.json files are records (a record is `<runs>/<run_id>.json`): a copy of a record in a
    subfolder (a backup, a checkpoint's folder, a set-aside run) is not read, so no run counts twice. A garbled or
    invalid record is left out and, if `bad` is a list, appended to it as (path, reason).
    """
    folder = Path(folder)
    records = []
    for path in sorted(folder.glob("*.json")):
        if path.name.startswith(".") or not path.is_file():
            continue
        rec, problem = read_record_file(path)
        if problem:
            if bad is not None:
                bad.append((str(path), problem))
            continue
        records.append(rec)
    return records


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def remove_abandoned_temp_files(folder, max_age_s: float = 3600.0) -> list[Path]:
    """Remove the half-written temp files of writers that are gone (a killed sweep); returns them.

    A temp file names its writer (pid and host, see write_json_atomic): one of a live process on
    this machine is kept, one from another machine only once it is older than `max_age_s`.
    Files from before writers were named are removed (callers hold the study's lock).
    """
    import time
    removed = []
    for tmp in Path(folder).glob(".*.tmp"):
        match = re.search(r"\.pid(\d+)@([A-Za-z0-9-]+)\.[^.]*\.tmp$", tmp.name)
        if match and match.group(2) == _host() and _alive(int(match.group(1))):
            continue
        try:
            if match and match.group(2) != _host() and time.time() - tmp.stat().st_mtime < max_age_s:
                continue
            tmp.unlink()
        except FileNotFoundError:
            continue
        removed.append(tmp)
    return removed
