"""Sweep files: read, validate and expand a YAML grid into runs (each a TrainConfig and its run id).

A sweep file (see sweeps/README.md) names a study and lists its runs:

    name: glue_cpu                  # records go to data/results/glue_cpu/runs/<run_id>.json
    base: {epochs: 3}               # TrainConfig fields shared by every run
    grid: {task: [rte, mrpc], seed: [0]}          # cartesian product ...
    variants:                                     # ... times the union of these products
      - {policy: [full], lr: [2.0e-5, 5.0e-5, 1.0e-4]}
      - {policy: [adapter], adapter_size: [8, 64, 256], lr: [3.0e-4, 1.0e-3, 3.0e-3]}
    per_task: {sst2: {max_train_examples: 8000}}  # fields for one task's runs
    runs: [{task: rte, policy: head, lr: 1.0e-3}] # explicit extra runs
    select_then_seeds: {by: [task, policy, adapter_size], seeds: [1, 2]}
    # ... budget_percent: 4 also seeds each group's best setting among those training at most 4% of the base
    # ... seeds_for: [{where: {method: houlsby}, seeds: [1, 2, 3, 4]}] other seeds for the groups it matches
    extend_edges: {by: [task, policy], steps: 1}  # a winner on its lr grid's edge gets one more lr past it
    reuse: [pilot_v2]               # a run finished ok in one of these studies (same run id) is copied, not rerun

Every error is one line naming its place in the file, raised before anything runs.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import json
import math
import re
from pathlib import Path

from ..config import ADAPTER_METHODS, TrainConfig, method_of_policy
from ..errors import AdapterlibError
from ..paths import COURSE_PRESETS
from .yamlsafe import YamlError, load_yaml

MAX_RUNS = 20_000  # runs one sweep file may plan (the repository's largest plans under 1,000)

TOP_KEYS = ("name", "description", "mode", "notebook", "base", "grid", "variants", "per_task", "runs",
            "select_then_seeds", "extend_edges", "save_checkpoint", "keep_notebooks", "reuse")
RESERVED_PARAMETERS = ("results_path",)  # papermill mode: set by the sweep for each run


class SweepSpecError(AdapterlibError, ValueError):
    """The sweep file is invalid; the message says where."""


@dataclasses.dataclass
class Run:
    run_id: str
    fields: dict                  # TrainConfig fields (api) or notebook parameters (papermill)
    stage: str = "grid"           # "grid", "edge" (extend_edges) or "seeds"


@dataclasses.dataclass
class SweepSpec:
    name: str
    mode: str = "api"                       # api: adapterlib.train; papermill: execute `notebook`
    base: dict = dataclasses.field(default_factory=dict)
    grid: dict = dataclasses.field(default_factory=dict)
    variants: list = dataclasses.field(default_factory=list)
    per_task: dict = dataclasses.field(default_factory=dict)
    runs: list = dataclasses.field(default_factory=list)
    select_by: list | None = None           # select_then_seeds.by
    seeds: list = dataclasses.field(default_factory=list)
    budget_percent: float | None = None     # select_then_seeds.budget_percent: also the best setting within it
    seeds_for: list = dataclasses.field(default_factory=list)  # select_then_seeds.seeds_for: [(where, seeds)]
    extend_by: list | None = None           # extend_edges.by: the groups whose validation winner is checked
    extend_steps: int = 0                   # extend_edges.steps: lrs added past each edge of a grid, at most
    reuse: list = dataclasses.field(default_factory=list)  # study names whose ok records count here (same run id)
    notebook: str | None = None
    save_checkpoint: bool = False
    keep_notebooks: bool = False
    description: str = ""
    overrides: dict = dataclasses.field(default_factory=dict)  # --set FIELD=VALUE, forced in every run
    text: str = ""                          # the file as read (copied next to the records)
    source: str = "sweep"                   # where it came from, for error messages




class _Fields:
    """Checks field names and values: TrainConfig fields (api) or a notebook's parameters (papermill)."""

    def __init__(self, types: dict[str, str], what: str):
        self.types, self.what = types, what

    def value(self, name: str, value, where: str):
        """Check a value against its annotation; numbers written as 3e-4 (a YAML string) become floats."""
        if name not in self.types:
            raise SweepSpecError(f"{where}: unknown {self.what} {name!r}; known: {', '.join(self.types)}")
        typ = self.types[name]
        kind = typ.split(" |")[0]
        if kind == "any" or (value is None and "None" in typ):
            return value
        ok = not isinstance(value, bool)
        if ok and kind == "float" and isinstance(value, (int, float, str)):
            with contextlib.suppress(ValueError):
                return float(value)
        elif ok and kind == "int" and isinstance(value, int):
            return value
        elif kind == "str" and isinstance(value, str):
            return value
        elif kind == "str" and isinstance(value, bool):  # `mixed_precision: no` in YAML is False
            raise SweepSpecError(f"{where}: {name} must be {typ}, got {value!r} (YAML reads no/yes/on/off as "
                                 f"booleans: quote the word, e.g. \"no\")")
        elif kind == "bool" and isinstance(value, bool):  # YAML true/false, never the string "false"
            return value
        elif kind == "list[int]" and isinstance(value, list) and all(type(v) is int for v in value):
            return value
        raise SweepSpecError(f"{where}: {name} must be {typ}, got {value!r}")

    def mapping(self, obj, where: str) -> dict:
        return {k: self.value(k, v, where) for k, v in _mapping(obj, where).items()}

    def axes(self, obj, where: str) -> dict:
        """A grid: field -> non-empty list of values."""
        axes = {}
        for name, values in _mapping(obj, where).items():
            if not isinstance(values, list) or not values:
                raise SweepSpecError(f"{where}.{name} must be a non-empty list of values, got {values!r}")
            axes[name] = [self.value(name, v, f"{where}.{name}") for v in values]
        return axes


def _mapping(obj, where: str) -> dict:
    if obj is None:
        return {}
    if not isinstance(obj, dict):
        raise SweepSpecError(f"{where} must be a mapping (field: value), got {type(obj).__name__}")
    return obj


def _field_checker(spec: SweepSpec, data: dict, where: str, root: Path) -> _Fields:
    """The mode decides what a field is: a TrainConfig field, or a parameter of the notebook."""
    if spec.mode == "api":
        return _Fields({f.name: f.type for f in dataclasses.fields(TrainConfig)}, "TrainConfig field")
    if spec.mode != "papermill":
        raise SweepSpecError(f"{where}: mode must be api or papermill, got {spec.mode!r}")
    notebook = data.get("notebook")
    path = next((p for p in (Path(str(notebook)), root / str(notebook)) if p.is_file()), None) if notebook else None
    if path is None:
        raise SweepSpecError(f"{where}: mode papermill needs `notebook:` naming an existing .ipynb, got {notebook!r}")
    import papermill as pm
    spec.notebook = str(path.resolve())
    try:
        names = [n for n in pm.inspect_notebook(spec.notebook) if n not in RESERVED_PARAMETERS]
    except Exception as e:  # noqa: BLE001 - not JSON, not UTF-8, not a notebook: nbformat's many errors
        raise SweepSpecError(f"{where}: notebook {path} is not a readable Jupyter notebook "
                             f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    return _NotebookFields({n: "any" for n in names}, f"parameter of {path.name}")


class _NotebookFields(_Fields):
    """A notebook's parameters: any value, except `preset`, which must be one of the course's scales."""

    def value(self, name: str, value, where: str):
        value = super().value(name, value, where)
        if name == "preset" and value is not None and value not in COURSE_PRESETS:
            raise SweepSpecError(f"{where}: preset must be one of {', '.join(COURSE_PRESETS)}, got {value!r}")
        return value


def parse_spec(data, overrides: dict | None = None, where: str = "sweep", root: Path = Path(".")) -> SweepSpec:
    """Validate a loaded sweep file; every error names its place in the file."""
    data = _mapping(data, where)
    unknown = [k for k in data if k not in TOP_KEYS]
    if unknown:
        raise SweepSpecError(f"{where}: unknown key(s) {unknown}; allowed: {', '.join(TOP_KEYS)}")
    name = data.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or name in (".", ".."):
        raise SweepSpecError(f"{where}: name must be a folder-safe string (letters, digits, _ . -), got {name!r}")
    for key in ("save_checkpoint", "keep_notebooks"):  # YAML true/false only: "false" (a string) is an error
        if not isinstance(data.get(key, False), bool):
            raise SweepSpecError(f"{where}: {key} must be true or false (YAML booleans), got {data[key]!r}")
    spec = SweepSpec(name=name, mode=data.get("mode", "api"), description=str(data.get("description", "")),
                     save_checkpoint=data.get("save_checkpoint", False),
                     keep_notebooks=data.get("keep_notebooks", False), source=where)
    check = _field_checker(spec, data, where, root)
    spec.base = check.mapping(data.get("base"), f"{where}: base")
    spec.overrides = check.mapping(overrides or {}, "--set")
    spec.grid = check.axes(data.get("grid"), f"{where}: grid")
    variants = data.get("variants") or []
    if not isinstance(variants, list):
        raise SweepSpecError(f"{where}: variants must be a list of grids, got {type(variants).__name__}")
    spec.variants = [check.axes(v, f"{where}: variants[{i}]") for i, v in enumerate(variants)]
    for i, v in enumerate(spec.variants):
        if set(v) & set(spec.grid):
            raise SweepSpecError(f"{where}: variants[{i}] repeats grid field(s) {sorted(set(v) & set(spec.grid))}")
    runs = data.get("runs") or []
    if not isinstance(runs, list):
        raise SweepSpecError(f"{where}: runs must be a list of run settings, got {type(runs).__name__}")
    spec.runs = [check.mapping(r, f"{where}: runs[{i}]") for i, r in enumerate(runs)]
    axes = set(spec.grid).union(*spec.variants)
    for task, extra in _mapping(data.get("per_task"), f"{where}: per_task").items():
        at = f"{where}: per_task.{task}"
        try:
            key = _task_key(task, strict=True)
        except ValueError as e:
            raise SweepSpecError(f"{at}: {e}") from None
        spec.per_task[key] = check.mapping(extra, at)
        if set(spec.per_task[key]) & axes:
            raise SweepSpecError(f"{at}: {sorted(set(spec.per_task[key]) & axes)} also a grid field; "
                                 "keep each field in one place")
    if not (spec.grid or spec.variants or spec.runs):
        raise SweepSpecError(f"{where}: empty sweep; give a `grid`, `variants` or `runs`")
    check_run_count(spec, where)
    if data.get("select_then_seeds") is not None:
        at = f"{where}: select_then_seeds"
        _parse_select(spec, _mapping(data["select_then_seeds"], at), at)
    if data.get("extend_edges") is not None:
        at = f"{where}: extend_edges"
        _parse_extend(spec, _mapping(data["extend_edges"], at), at)
    if data.get("reuse") is not None:
        spec.reuse = _parse_reuse(spec, data["reuse"], f"{where}: reuse")
    return spec


def planned_count(spec: SweepSpec) -> int:
    """Grid points times variants' points, plus explicit runs (before duplicates are dropped), without expanding."""
    def points(axes: dict) -> int:
        return math.prod(len(values) for values in axes.values())
    grid = points(spec.grid) * sum(points(v) for v in spec.variants or [{}]) if spec.grid or spec.variants else 0
    return grid + len(spec.runs)


def check_run_count(spec: SweepSpec, where: str) -> None:
    """Refuse a sweep that would plan more than MAX_RUNS runs (before a single one is built)."""
    count = planned_count(spec)
    if count > MAX_RUNS:
        raise SweepSpecError(f"{where}: the grid expands to {count} runs, over the limit of {MAX_RUNS} per sweep file; "
                             "split it into several sweep files")


def _parse_reuse(spec: SweepSpec, reuse, where: str) -> list[str]:
    """reuse: study names (folders next to this study's) whose finished ok records count for this sweep."""
    if spec.mode != "api":
        raise SweepSpecError(f"{where}: only for mode api (a run id names a TrainConfig)")
    if not isinstance(reuse, list) or not reuse or any(not isinstance(n, str) or not re.fullmatch(r"[\w.-]+", n)
                                                       or n in (".", "..", spec.name) for n in reuse):
        raise SweepSpecError(f"{where} must be a non-empty list of other studies' names (e.g. [pilot_v2]), "
                             f"got {reuse!r}")
    return list(dict.fromkeys(reuse))


def _parse_select(spec: SweepSpec, stage: dict, where: str) -> None:
    from .aggregate import COLUMNS, METHOD_FIELDS
    if spec.mode != "api":
        raise SweepSpecError(f"{where}: only for mode api (selection reads the training records)")
    unknown = [k for k in stage if k not in ("by", "seeds", "budget_percent", "seeds_for")]
    by, seeds = stage.get("by", ["task", "policy", "adapter_size"]), stage.get("seeds")
    budget = stage.get("budget_percent")
    if unknown or not isinstance(by, list) or any(b not in COLUMNS + list(METHOD_FIELDS) for b in by):
        raise SweepSpecError(f"{where}: needs `by:` (list of record columns, e.g. [task, policy, adapter_size]) "
                             f"and `seeds:`; got {stage!r}")
    if not isinstance(seeds, list) or not seeds or any(type(s) is not int for s in seeds):
        raise SweepSpecError(f"{where}.seeds must be a non-empty list of integers, got {seeds!r}")
    if budget is not None and (type(budget) not in (int, float) or not 0 < budget < 100):
        raise SweepSpecError(f"{where}.budget_percent must be a number between 0 and 100 (the % of the base model "
                             f"a setting may train per task), got {budget!r}")
    spec.select_by, spec.seeds = by, seeds
    spec.seeds_for = _parse_seeds_for(stage.get("seeds_for"), by, f"{where}.seeds_for")
    most = max([len(seeds)] + [len(s) for _, s in spec.seeds_for])
    if planned_count(spec) * (1 + most) > MAX_RUNS:  # at most every grid run's group gets every seed
        raise SweepSpecError(f"{where}.seeds: {most} seeds for up to {planned_count(spec)} settings is up to "
                             f"{planned_count(spec) * (1 + most)} runs, over the limit of {MAX_RUNS} per sweep file")
    spec.budget_percent = None if budget is None else float(budget)


def _parse_seeds_for(entries, by: list, where: str) -> list[tuple[dict, list]]:
    """select_then_seeds.seeds_for: [{where: {FIELD: value or [values]}, seeds: [...]}, ...]; the first entry whose
    `where` matches a group gives that group its seeds (an empty list: none), the others get `seeds`. Each FIELD
    must be one of `by`, so that a whole group matches or none of it."""
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise SweepSpecError(f"{where} must be a list of {{where: {{field: values}}, seeds: [...]}}, got {entries!r}")
    out = []
    for i, entry in enumerate(entries):
        at = f"{where}[{i}]"
        if not isinstance(entry, dict) or set(entry) != {"where", "seeds"} or not isinstance(entry["where"], dict) \
                or not entry["where"]:
            raise SweepSpecError(f"{at} must be {{where: {{field: values}}, seeds: [...]}}, got {entry!r}")
        outside = [k for k in entry["where"] if k not in by]
        if outside:
            raise SweepSpecError(f"{at}.where: {outside} not in select_then_seeds.by {by} (a group must match whole)")
        seeds = entry["seeds"]
        if not isinstance(seeds, list) or any(type(s) is not int for s in seeds):
            raise SweepSpecError(f"{at}.seeds must be a list of integers (empty: no seeds), got {seeds!r}")
        where_ = {k: [str(x) for x in (v if isinstance(v, list) else [v])] for k, v in entry["where"].items()}
        out.append((where_, seeds))
    return out


def group_seeds(spec: SweepSpec, fields: dict) -> list:
    """The seeds select_then_seeds gives the group of a run with these fields (seeds_for's first match, else seeds)."""
    for where, seeds in spec.seeds_for:
        if all(str(fields.get(k)) in values for k, values in where.items()):
            return seeds
    return spec.seeds


def _parse_extend(spec: SweepSpec, stage: dict, where: str) -> None:
    from .aggregate import COLUMNS, METHOD_FIELDS
    if spec.mode != "api":
        raise SweepSpecError(f"{where}: only for mode api (the winner is read from the training records)")
    unknown = [k for k in stage if k not in ("by", "steps")]
    by, steps = stage.get("by", spec.select_by), stage.get("steps", 1)
    known = COLUMNS + list(METHOD_FIELDS)
    if unknown or not isinstance(by, list) or not by or any(b not in known or b in ("lr", "seed") for b in by):
        raise SweepSpecError(f"{where}: needs `by:` (record columns other than lr and seed, e.g. [task, policy]; "
                             f"default: select_then_seeds' by) and optionally `steps:`; got {stage!r}")
    if type(steps) is not int or not 1 <= steps <= 3:
        raise SweepSpecError(f"{where}.steps must be an integer from 1 to 3 (lrs added past an edge), got {steps!r}")
    spec.extend_by, spec.extend_steps = by, steps


def load_spec(path, overrides: dict | None = None) -> SweepSpec:
    """Read and validate a sweep file (YAML)."""
    path = Path(path)
    if not path.is_file():
        raise SweepSpecError(f"sweep file {path} not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:  # a binary file, or another encoding
        raise SweepSpecError(f"sweep file {path} is not UTF-8 text (byte {e.start}): not a YAML sweep file") from None
    try:
        data = load_yaml(text, str(path))
    except YamlError as e:
        raise SweepSpecError(str(e)) from None
    spec = parse_spec(data, overrides, where=str(path), root=path.parent)
    spec.text = text
    return spec


# ---------------------------------------------------------------- the runs of a sweep

def _product(axes: dict) -> list[dict]:
    return [dict(zip(axes, values, strict=True)) for values in itertools.product(*axes.values())]


def make_run(spec: SweepSpec, fields: dict, stage: str = "grid") -> Run:
    """Build (and validate) one run; its id is adapterlib.runids.run_id of the TrainConfig."""
    if spec.mode == "papermill":
        digest = hashlib.sha1(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:8]
        prefix = "-".join(str(fields[k]) for k in ("task", "policy") if k in fields)
        return Run(f"{Path(spec.notebook).stem}-{prefix + '-' if prefix else ''}{digest}", fields, stage)
    from ..policies import POLICIES
    from ..runids import run_id
    label = ", ".join(f"{k}={v}" for k, v in fields.items() if k not in spec.base)
    try:
        fields = dict(fields)
        # one run, one id: the task under its canonical name ("RTE" is "rte"), and no adapter size
        # outside policy adapter (it changes nothing there; the default keeps earlier run ids)
        if fields.get("task") is not None:
            fields["task"] = _task_key(fields["task"], strict=True)
        method = fields.get("method") or method_of_policy(fields.get("policy", TrainConfig.policy))
        if method not in ADAPTER_METHODS:
            fields["adapter_size"] = TrainConfig.adapter_size
        cfg = TrainConfig(**fields)
        if cfg.policy not in POLICIES:
            raise SweepSpecError(f"unknown policy {cfg.policy!r}; known: {', '.join(POLICIES)}")
        if cfg.method in ADAPTER_METHODS:
            cfg.adapter_config()
        return Run(run_id(cfg), cfg.to_dict(), stage)
    except ValueError as e:
        raise SweepSpecError(f"{spec.source}: run ({label}): {e}") from None


def expand(spec: SweepSpec) -> list[Run]:
    """The grid-stage runs: base < per_task < grid point (or explicit run) < --set; duplicates dropped."""
    points = []
    if spec.grid or spec.variants:
        points = [{**a, **b} for a in _product(spec.grid) for v in (spec.variants or [{}]) for b in _product(v)]
    runs, seen = [], set()
    for point in points + spec.runs:
        task = spec.overrides.get("task", point.get("task", spec.base.get("task")))
        extra = spec.per_task.get(_task_key(task), {})
        run = make_run(spec, {**spec.base, **extra, **point, **spec.overrides})
        if run.run_id not in seen:
            seen.add(run.run_id)
            runs.append(run)
    return runs


def _task_key(task, strict: bool = False):
    """Canonical task name for per_task lookups ("SST-2" -> "sst2")."""
    from ..data import get_task
    try:
        return get_task(task).name if task is not None else None
    except ValueError:
        if strict:
            raise
        return task
