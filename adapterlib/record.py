"""RunRecord: the one typed form of a run record, and the only way records are read.

A run record is one JSON file per run (`<runs>/<run_id>.json`, adapterlib.records writes it). Records made by
earlier versions of adapterlib lack fields added since; `RunRecord.from_json` gives each such field the value every
earlier run implicitly had (its legacy default) once, here, so no reader applies defaults of its own:

    rec = RunRecord.from_json("data/results/glue_v2/runs/<run_id>.json")   # or a dict
    rec.config["head_input"], rec.timing.wall_s, rec.machine.gpu, rec.dev_score
    rec.to_json()   # the JSON as recorded (a record read and written back is unchanged, byte for byte)

Nested parts: `timing`, `machine` and `params` are dataclasses (their fields are adapterlib.records.NESTED's);
config, selected, history, dev, majority and the provenance (versions, git, created) are mappings whose types
`records.record_problem` checks when a record is read. Keys this type does not name are kept in `extra`.
For code written against the dict records, a RunRecord also reads as a read-only mapping of its JSON
(`rec["dev_score"]`, `rec.get("timing")`).
"""
from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from .errors import AdapterlibError
from .records import record_problem

# Recipe settings every api record's config has; records older than a field ran with this value. TrainConfig's
# own LEGACY_DEFAULTS (fields added after the first studies) and `method` (the policy's) are applied too.
RECIPE_DEFAULTS = {"val_fraction": 0.1, "batch_size": 32, "max_length": 128, "mixed_precision": "no"}


class RecordError(AdapterlibError, ValueError):
    """A file or mapping that is not a valid run record (one line: where, and why)."""


@dataclass
class _Part:
    """A nested part of a record: its known fields, and any other keys it has in `extra`."""

    extra: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, d: dict | None):
        d = d or {}
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        return cls(**{k: v for k, v in d.items() if k in names}, extra={k: v for k, v in d.items() if k not in names})

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        return {**out, **self.extra}


@dataclass
class Timing(_Part):
    wall_s: float | None = None
    train_s: float | None = None
    steps: float | None = None
    epochs_run: float | None = None
    stopped_early: bool = False  # records from before early stopping ran every epoch
    planned_steps: float | None = None
    steps_per_s: float | None = None
    s_per_step: float | None = None
    tokens_per_s: float | None = None
    padded_tokens_per_s: float | None = None
    resumed_at_epochs: list | None = None


@dataclass
class Machine(_Part):
    platform: str | None = None
    processor: str | None = None
    cpu_count: int | None = None
    torch_threads: int | None = None
    gpu: str | None = None
    cpu_name: str | None = None
    cpu_bf16_native: bool | None = None  # None: a record from before this field (unknown)


@dataclass
class Params(_Part):
    trainable: float | None = None
    frozen: float | None = None
    base: float | None = None
    total: float | None = None
    percent_of_base: float | None = None
    percent_of_base_no_embedding: float | None = None


@dataclass(eq=False)
class RunRecord(Mapping):
    """One run: its settings (config, legacy defaults applied), scores, timing, machine and provenance."""

    run_id: str = ""                   # the file's name (a hash of the config: train.run_id)
    status: str = "ok"                  # ok | failed
    mode: str = "api"                   # api (adapterlib.train) | papermill (a notebook run)
    task: str | None = None
    policy: str | None = None
    method: str | None = None           # TrainConfig.method (a record from before it: its policy's)
    config: dict = field(default_factory=dict)  # api: TrainConfig fields, every legacy default applied
    parameters: dict | None = None      # papermill: the notebook's parameters
    seed: int | None = None
    metric: str | None = None
    dev_score: float | None = None      # the first GLUE dev split's score (reported, never used for selection)
    selected: dict = field(default_factory=dict)  # the epoch chosen on validation, with its validation_<metric>
    dev: dict = field(default_factory=dict)       # split -> metric -> score
    majority: dict = field(default_factory=dict)  # split -> the majority-class floor
    history: list = field(default_factory=list)   # one mapping per evaluation
    timing: Timing = field(default_factory=Timing)
    machine: Machine = field(default_factory=Machine)
    params: Params = field(default_factory=Params)
    results: dict | None = None         # papermill: every scalar the notebook recorded
    error: str | None = None            # a failed run's error
    reused_from: dict | None = None     # a copy of another study's record (sweep `reuse:`): study, sha256
    path: str | None = None             # where train() wrote it
    checkpoint: str | None = None       # the adapter checkpoint folder's name
    versions: dict = field(default_factory=dict)  # provenance: library versions, git revision, UTC creation time
    git: dict = field(default_factory=dict)
    created: str | None = None
    schema_version: int = 1             # the JSON's "schema" key (absent: 1); records.RECORD_SCHEMA is the newest
    extra: dict = field(default_factory=dict, repr=False)  # every other key of the JSON, as recorded
    # not written: the file it was read from, and whether the course reused it rather than trained it
    source: str | None = field(default=None, repr=False)
    reused: bool | None = field(default=None, repr=False)
    # the JSON as read and its typed form then: to_json writes what was read for every value left unchanged
    _raw: dict = field(default_factory=dict, repr=False)
    _loaded: dict = field(default_factory=dict, repr=False)

    _PARTS: ClassVar[dict] = {"timing": Timing, "machine": Machine, "params": Params}
    _JSON_NAMES: ClassVar[dict] = {"schema_version": "schema"}
    _UNWRITTEN: ClassVar[tuple] = ("extra", "source", "reused", "_raw", "_loaded")

    @classmethod
    def from_json(cls, path_or_dict, check: bool = True) -> RunRecord:
        """The record of a JSON file (a path) or of its parsed mapping; RecordError if it is not a valid one
        (records.record_problem). Every legacy default is applied here."""
        source, parsed = None, False
        if isinstance(path_or_dict, Mapping):
            raw = path_or_dict.to_json() if isinstance(path_or_dict, RunRecord) else dict(path_or_dict)
        else:
            parsed = True  # parsed here: nobody else holds it, so it needs no copy of its own
            source = str(path_or_dict)
            try:
                raw = json.loads(Path(path_or_dict).read_text())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
                why = str(e).splitlines()[0] if str(e) else type(e).__name__
                raise RecordError(f"{source}: unreadable: {why}") from e
        problem = record_problem(raw, source) if check else None
        if problem:
            raise RecordError(f"{source or 'run record'}: {problem}")
        raw = raw if parsed else copy.deepcopy(raw)
        values = _with_legacy_defaults(copy.deepcopy(raw))
        names = {f.name for f in dataclasses.fields(cls)} - set(cls._UNWRITTEN)
        kwargs = {}
        for name in names:
            key = cls._JSON_NAMES.get(name, name)
            if key in values:
                kwargs[name] = cls._PARTS[name].from_dict(values[key]) if name in cls._PARTS else values[key]
        keys = {cls._JSON_NAMES.get(n, n) for n in names}
        rec = cls(**kwargs, extra={k: v for k, v in values.items() if k not in keys}, source=source)
        rec._raw, rec._loaded = raw, rec._typed_json()
        return rec

    def _typed_json(self) -> dict:
        out = {}
        for f in dataclasses.fields(self):
            if f.name in self._UNWRITTEN:
                continue
            value = getattr(self, f.name)
            out[self._JSON_NAMES.get(f.name, f.name)] = value.to_dict() if isinstance(value, _Part) else value
        return copy.deepcopy({**out, **self.extra})

    def to_json(self) -> dict:
        """The record as JSON: what was read for every value unchanged since (legacy defaults not written out),
        the new value for every value set since; in the order it was read, new keys after."""
        return _merge(self._raw, self._loaded, self._typed_json())

    def recorded(self, key: str, default=None):
        """A top-level value as the JSON has it (without the legacy defaults from_json applied)."""
        return self.to_json().get(key, default)

    def write(self, path) -> Path:
        """Write the record's JSON atomically (records.write_json_atomic)."""
        from .records import write_json_atomic
        return write_json_atomic(path, self.to_json())

    # read-only mapping over the JSON, for code (and notebooks) written against the dict records
    def __getitem__(self, key: str) -> Any:
        view = self.to_json()
        if key == "reused" and self.reused is not None:
            return self.reused
        if key == "path" and self.path is not None:
            return self.path
        return view[key]

    def __iter__(self):
        return iter(self.to_json())

    def __len__(self) -> int:
        return len(self.to_json())

    def __eq__(self, other) -> bool:
        if isinstance(other, RunRecord):
            return self.to_json() == other.to_json()
        return NotImplemented

    __hash__ = None  # mutable


_ABSENT = object()


def _merge(raw, loaded, now):
    """`now`, except where a value is unchanged since it was read: there the value as read (left out where the
    JSON had no such key, so a legacy default from_json applied is never written)."""
    if now == loaded:
        return raw if raw is _ABSENT else copy.deepcopy(raw)
    if isinstance(now, dict) and isinstance(loaded, dict) and isinstance(raw, dict):
        out = {}
        for key in [*raw, *(k for k in now if k not in raw)]:
            if key in now:
                value = _merge(raw.get(key, _ABSENT), loaded.get(key, _ABSENT), now[key])
                if value is not _ABSENT:
                    out[key] = value
        return out
    return copy.deepcopy(now)


def _with_legacy_defaults(d: dict) -> dict:
    """The record `d` with every field older records lack given the value those runs had (the one place)."""
    from .config import TrainConfig, method_of_policy
    from .data import TASKS, get_task

    d.setdefault("mode", "api")
    d.setdefault("schema", 1)  # every record before the key existed has the first layout
    if not isinstance(d.get("config"), dict):  # a papermill run's settings are its parameters
        d["config"] = {}
    settings = d.get("config") if d["mode"] == "api" else d.get("parameters")
    settings = settings if isinstance(settings, dict) else {}
    results = d.get("results") if isinstance(d.get("results"), dict) else {}
    for key in ("task", "policy"):
        if d.get(key) is None and settings.get(key) is not None:
            d[key] = settings[key]
    if d.get("seed") is None and settings.get("seed") is not None:
        d["seed"] = settings["seed"]
    if d.get("metric") is None:
        known = isinstance(d.get("task"), str) and d["task"] in TASKS
        d["metric"] = results.get("metric") or (get_task(d["task"]).metric if known else None)
    if d.get("dev_score") is None and "dev_score" in results:  # papermill: the notebook's scores
        d["dev_score"] = results["dev_score"]
    if "trainable" in results and (d.get("params") or {}).get("trainable") is None:
        d["params"] = {**(d.get("params") or {}), "trainable": results["trainable"]}
    if d["mode"] == "api" and isinstance(d.get("config"), dict):
        cfg = d["config"]
        for key, value in {**TrainConfig.LEGACY_DEFAULTS, **RECIPE_DEFAULTS}.items():
            if cfg.get(key) is None and value is not None:
                cfg[key] = value
            cfg.setdefault(key, value)
        if cfg.get("method") is None and cfg.get("policy"):
            cfg["method"] = method_of_policy(cfg["policy"])
    if d.get("method") is None and d.get("policy"):
        d["method"] = (d.get("config") or {}).get("method") or method_of_policy(d["policy"])
    return d


def as_record(rec) -> RunRecord:
    """`rec` as a RunRecord: a RunRecord as it is; a mapping (a record's JSON, checked only for what the typed
    form needs) or a path through RunRecord.from_json."""
    if isinstance(rec, RunRecord):
        return rec
    return RunRecord.from_json(rec, check=not isinstance(rec, Mapping))
