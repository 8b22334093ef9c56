"""GLUE tasks: registry, TSV reading, train/validation/dev splits, cached tokenisation.

Where data comes from, in this order:

1. a local directory in the classic ``download_glue_data.py`` layout (``<glue_dir>/<TASK>/train.tsv``,
   ``dev.tsv``), given as ``glue_dir=`` / ``--glue-dir`` or env GLUE_DIR;
2. the copy bundled with the package (``adapterlib/resources/glue``: RTE, MRPC, STS-B, CoLA, SST-2,
   WNLI train+dev and QNLI dev, xz-compressed, checked against ``MANIFEST.json`` once per process);
3. the HuggingFace hub dataset ``nyu-mll/glue`` (needs network), for what the bundle lacks.

All give splits ``train``, ``validation`` (a seeded held-out slice of train.tsv, for model
selection) and the GLUE dev split(s) of ``TaskSpec.dev_files`` (reporting only), with columns
``idx``, ``text_a``, ``text_b`` (pair tasks) and ``label`` (int class id; float32 score for STS-B).
"""
from __future__ import annotations

import csv
import hashlib
import importlib.resources
import io
import json
import lzma
import os
import shutil
import tempfile
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import datasets
import numpy as np
import pandas as pd

from .errors import AdapterlibError, UsageError

HUB_DATASET = "nyu-mll/glue"
# Part of every tokenisation cache key: bump it whenever _tokenize_split's output or the entry format changes
# ("3": adapterlib_meta.json records each file's size and sha256).
TOKENIZE_CODE_VERSION = "3"
# Number of splits actually tokenised (cache misses) in this process; tests use it to see cache hits.
TOKENIZE_CALLS = 0


class UnknownTaskError(AdapterlibError, ValueError):
    """Raised by :func:`get_task` for a name that is not a GLUE task."""


class GlueDataError(AdapterlibError, RuntimeError):
    """GLUE data is missing, unreadable or malformed (the message says where and how to fix it)."""


class TokenizationCacheError(GlueDataError):
    """The on-disk tokenisation cache cannot be written or repaired (the message names the path)."""


@dataclass(frozen=True)
class TaskSpec:
    """Everything needed to read, split and score one GLUE task."""

    name: str                       # canonical key in TASKS, e.g. "sst2"
    display: str                    # as in papers, e.g. "SST-2"
    glue_dir_name: str              # directory under GLUE_DIR
    hf_config: str                  # config of the hub dataset nyu-mll/glue
    text_columns: tuple             # 1 or 2 TSV column names (column indices for headerless CoLA)
    label_column: str | int
    labels: tuple[str, ...] | None  # label strings as in the TSV, index = class id; None = regression
    metric: str                     # primary metric, see adapterlib.metrics
    dev_files: dict = field(default_factory=lambda: {"dev": "dev.tsv"}, hash=False)
    header: bool = True

    @property
    def is_regression(self) -> bool:
        return self.labels is None

    @property
    def num_labels(self) -> int:
        return 1 if self.labels is None else len(self.labels)

    @property
    def is_pair(self) -> bool:
        return len(self.text_columns) == 2


_BIN = ("0", "1")
_NLI2 = ("entailment", "not_entailment")
# Label orders match the hub's ClassLabel ids (e.g. WNLI/SST-2 "1" = entailment/positive), so both sources agree.
TASKS: dict[str, TaskSpec] = {s.name: s for s in (
    TaskSpec("cola", "CoLA", "CoLA", "cola", (3,), 1, _BIN, "mcc", header=False),
    TaskSpec("sst2", "SST-2", "SST-2", "sst2", ("sentence",), "label", _BIN, "accuracy"),
    TaskSpec("mrpc", "MRPC", "MRPC", "mrpc", ("#1 String", "#2 String"), "Quality", _BIN, "f1"),
    TaskSpec("stsb", "STS-B", "STS-B", "stsb", ("sentence1", "sentence2"), "score", None, "spearman"),
    TaskSpec("qqp", "QQP", "QQP", "qqp", ("question1", "question2"), "is_duplicate", _BIN, "f1"),
    TaskSpec("mnli", "MNLI", "MNLI", "mnli", ("sentence1", "sentence2"), "gold_label",
             ("entailment", "neutral", "contradiction"), "accuracy",
             dev_files={"dev_matched": "dev_matched.tsv", "dev_mismatched": "dev_mismatched.tsv"}),
    TaskSpec("qnli", "QNLI", "QNLI", "qnli", ("question", "sentence"), "label", _NLI2, "accuracy"),
    TaskSpec("rte", "RTE", "RTE", "rte", ("sentence1", "sentence2"), "label", _NLI2, "accuracy"),
    TaskSpec("wnli", "WNLI", "WNLI", "wnli", ("sentence1", "sentence2"), "label", _BIN, "accuracy"),
)}

# Text columns of the hub parquet files (they differ from the TSV headers, e.g. MNLI premise/hypothesis).
_HUB_TEXT_COLUMNS = {
    "cola": ("sentence",), "sst2": ("sentence",), "mrpc": ("sentence1", "sentence2"),
    "stsb": ("sentence1", "sentence2"), "qqp": ("question1", "question2"),
    "mnli": ("premise", "hypothesis"), "qnli": ("question", "sentence"),
    "rte": ("sentence1", "sentence2"), "wnli": ("sentence1", "sentence2"),
}


def _norm(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def get_task(name: str | TaskSpec) -> TaskSpec:
    """Look up a task case-insensitively, ignoring '-', '_' and spaces ("SST-2", "sts_b", "CoLA")."""
    if isinstance(name, TaskSpec):
        return name
    key = _norm(str(name))
    for spec in TASKS.values():
        if key in (spec.name, _norm(spec.display), _norm(spec.glue_dir_name), _norm(spec.hf_config)):
            return spec
    known = ", ".join(f"{s.name} ({s.display})" for s in TASKS.values())
    raise UnknownTaskError(f"unknown GLUE task {name!r}; known tasks: {known}")


def _missing_error(spec: TaskSpec, looked_at: Path, why: str = "not found") -> GlueDataError:
    """A file or folder of an explicitly given GLUE directory (glue_dir / --glue-dir / GLUE_DIR) is missing."""
    layout = ", ".join(f"<TASK>/{f}" for f in ("train.tsv", *spec.dev_files.values()))
    bundled = sorted(_bundled_files(spec))
    fallback = (f"the copy bundled with adapterlib ({spec.glue_dir_name}: {', '.join(bundled)})" if bundled else
                f"the HuggingFace hub ({HUB_DATASET}, network needed; {spec.display} is not in the bundled copy)")
    return GlueDataError(
        f"GLUE {spec.display} data {why}: looked for {_shown(looked_at)}. Point --glue-dir / glue_dir / GLUE_DIR "
        f"at a directory in the standard GLUE layout ({layout}, here <TASK> = {spec.glue_dir_name}), or leave "
        f"them all unset to use {fallback}.")


def _shown(path: Path) -> str:
    """`path` resolved, for a message; a symlink loop (RuntimeError before Python 3.13) is said to be one."""
    try:
        return str(path.resolve())
    except (RuntimeError, OSError):
        return f"{path.absolute()} (a symlink loop)"


def read_tsv(path: str | os.PathLike, spec: TaskSpec | str) -> pd.DataFrame:
    """Read one GLUE TSV into columns ``text_a``, [``text_b``], ``label`` (class id or float score).

    Quoting is disabled because GLUE text contains unbalanced '"' (default CSV quoting silently
    merges rows), every field stays a string and "NA"/"null" are kept as text, and ``utf-8-sig``
    drops the BOM that starts MRPC's header.
    """
    spec, path = get_task(spec), Path(path)
    if not path.is_file():
        raise _missing_error(spec, path)
    return _parse_tsv(path, spec, str(path.resolve()))


def _parse_tsv(source, spec: TaskSpec, where: str) -> pd.DataFrame:
    """:func:`read_tsv` on a path or a binary file object; ``where`` names it in errors."""
    data = source.read() if hasattr(source, "read") else Path(source).read_bytes()
    _check_field_counts(data, where)
    source = io.BytesIO(data)
    try:
        raw = pd.read_csv(source, sep="\t", quoting=csv.QUOTE_NONE, dtype=str, keep_default_na=False,
                          encoding="utf-8-sig", header=0 if spec.header else None)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise GlueDataError(f"cannot parse {where} as a GLUE {spec.display} TSV: {exc}") from exc
    missing = [c for c in (*spec.text_columns, spec.label_column) if c not in raw.columns]
    if missing:
        raise GlueDataError(f"{where}: missing column(s) {missing}; found {list(raw.columns)}")
    _check_rows(raw, spec, where)
    out = pd.DataFrame({"text_a": raw[spec.text_columns[0]]})
    if spec.is_pair:
        out["text_b"] = raw[spec.text_columns[1]]
    out["label"] = _parse_labels(raw[spec.label_column], spec, where)
    return out.reset_index(drop=True)


STSB_RANGE = (0.0, 5.0)  # STS-B similarity scores (GLUE)


def _check_field_counts(data: bytes, where: str) -> None:
    """Every line has as many tab-separated fields as the first (the header, or the first row): pandas fills a
    short line's missing fields with "" (a CoLA row without its sentence would train as an empty sentence)."""
    lines = data.splitlines()
    if not lines:
        return
    expected = lines[0].count(b"\t")
    for number, line in enumerate(lines, 1):
        tabs = line.count(b"\t")
        if tabs < expected and line.strip():
            raise GlueDataError(f"{where}: line {number} has {tabs + 1} tab-separated field(s), expected "
                                f"{expected + 1} (a short line)")


def _check_rows(raw: pd.DataFrame, spec: TaskSpec, where: str) -> None:
    """A file with no data row is refused here, naming it, not later as a datasets error."""
    if raw.empty:
        raise GlueDataError(f"{where}: no data rows{' (a header only)' if spec.header else ''}")


def _parse_labels(column: pd.Series, spec: TaskSpec, where: str) -> pd.Series:
    """Map label strings to class ids (or floats for STS-B); fail loudly on the first bad one."""
    if spec.is_regression:
        values = pd.to_numeric(column, errors="coerce").astype("float32")
        values = values.where(values.between(*STSB_RANGE))  # 99, inf, -1: not a similarity score
    else:
        values = column.map({lab: i for i, lab in enumerate(spec.labels)})
    bad = np.flatnonzero(values.isna().to_numpy())
    if len(bad):
        row = int(bad[0])
        line = row + (2 if spec.header else 1)  # 1-based line in the file, counting the header
        expected = (f"a number from {STSB_RANGE[0]:g} to {STSB_RANGE[1]:g}" if spec.is_regression
                    else f"one of {list(spec.labels)}")
        raise GlueDataError(f"{where}: line {line} (data row {row}) has label {column.iloc[row]!r}, "
                            f"expected {expected} ({len(bad)} bad row(s) in total)")
    return values if spec.is_regression else values.astype("int64")


def _resolve_glue_dir(glue_dir: str | os.PathLike | None) -> Path | None:
    """Explicit argument, else env GLUE_DIR, else None (= the bundled copy, then the hub)."""
    chosen = glue_dir if glue_dir not in (None, "") else os.environ.get("GLUE_DIR") or None
    return None if chosen is None else Path(chosen).expanduser()


# ----------------------------------------------------------------------------- the bundled copy

def _bundle_root():
    """The GLUE copy shipped as package data (an importlib.resources Traversable; tests point it elsewhere)."""
    return importlib.resources.files("adapterlib") / "resources" / "glue"


_BUNDLE_MANIFESTS: dict[str, dict] = {}   # str(bundle root) -> MANIFEST.json's "files"
_BUNDLE_VERIFIED: dict[tuple, str] = {}   # (str(bundle root), "<TASK>/<file>") -> sha256, checked this process
_BUNDLE_STAT: dict[tuple, tuple] = {}     # same key -> (size, mtime) of the compressed file when it was checked


def _bundle_manifest(root=None) -> dict:
    """``{"<TASK>/<file>.tsv": entry}`` of the bundled copy; empty when there is no bundle."""
    root = _bundle_root() if root is None else root
    key = str(root)
    if key not in _BUNDLE_MANIFESTS:
        manifest_file = root / "MANIFEST.json"
        if not manifest_file.is_file():
            return {}
        try:
            files = json.loads(manifest_file.read_text(encoding="utf-8"))["files"]
            bad = [name for name, entry in files.items() if not {"compressed", "sha256"} <= set(entry)]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise GlueDataError(f"{manifest_file}: not a valid manifest of the bundled GLUE copy "
                                f"({type(exc).__name__}: {exc}); reinstall adapterlib") from exc
        if bad:
            raise GlueDataError(f"{manifest_file}: entries without 'compressed' or 'sha256': {bad}; "
                                f"reinstall adapterlib")
        _BUNDLE_MANIFESTS[key] = files
    return _BUNDLE_MANIFESTS[key]


def _bundled_files(spec: TaskSpec, root=None) -> dict[str, str]:
    """``{file name: manifest key}`` of the files bundled for ``spec`` (e.g. ``{"dev.tsv": "QNLI/dev.tsv"}``)."""
    prefix = spec.glue_dir_name + "/"
    return {k[len(prefix):]: k for k in _bundle_manifest(root) if k.startswith(prefix)}


def _read_bundled(key: str, root=None) -> bytes:
    """The uncompressed bytes of one bundled file; its sha256 is checked against the manifest once per process."""
    root = _bundle_root() if root is None else root
    entry = _bundle_manifest(root)[key]
    resource, vkey = root / entry["compressed"], (str(root), key)
    try:
        raw = lzma.decompress(resource.read_bytes())
    except (OSError, lzma.LZMAError) as exc:
        raise GlueDataError(f"bundled GLUE file {resource} cannot be read ({type(exc).__name__}: {exc}); "
                            f"reinstall adapterlib, or use --glue-dir / GLUE_DIR") from exc
    if vkey not in _BUNDLE_VERIFIED or _BUNDLE_STAT.get(vkey) != _stat_key(resource):
        digest = hashlib.sha256(raw).hexdigest()
        if digest != entry["sha256"]:
            raise GlueDataError(f"bundled GLUE file {resource} does not match its MANIFEST.json entry (content "
                                f"sha256 {digest}, expected {entry['sha256']}); reinstall adapterlib, or use "
                                f"--glue-dir / GLUE_DIR")
        _BUNDLE_VERIFIED[vkey], _BUNDLE_STAT[vkey] = digest, _stat_key(resource)
    return raw


def _stat_key(resource) -> tuple | None:
    """(size, mtime) of a bundled file when it is a real file, so a file changed in place is checked again."""
    try:
        st = os.stat(resource)
    except (TypeError, OSError):  # not a path (e.g. inside a zip: checked once per process) or missing
        return None
    return st.st_size, st.st_mtime_ns


def _bundled_sha256(key: str, root=None) -> str:
    """sha256 of a bundled file's uncompressed content, verified (decompresses it only the first time)."""
    root = _bundle_root() if root is None else root
    vkey, resource = (str(root), key), root / _bundle_manifest(root)[key]["compressed"]
    if vkey not in _BUNDLE_VERIFIED or _BUNDLE_STAT.get(vkey) != _stat_key(resource):
        _read_bundled(key, root)
    return _BUNDLE_VERIFIED[vkey]


def _bundle_has(spec: TaskSpec, wanted: list[str], strict: bool) -> bool:
    """Whether the bundle serves ``wanted``: every file if ``strict`` (splits named explicitly), else any."""
    files = {"train": "train.tsv", **spec.dev_files}
    have = [files[split] in _bundled_files(spec) for split in wanted]
    return all(have) if strict else any(have)


def _bundled_splits(spec: TaskSpec, wanted: list[str]) -> dict:
    """Like :func:`_local_splits` on the bundled copy (skips splits it does not have)."""
    root, files, have = _bundle_root(), {"train": "train.tsv", **spec.dev_files}, _bundled_files(spec)
    out = {}
    for split in wanted:
        key = have.get(files[split])
        if key is None:
            continue
        where = f"{root / _bundle_manifest(root)[key]['compressed']} (bundled)"
        df = _parse_tsv(io.BytesIO(_read_bundled(key, root)), spec, where)
        df.insert(0, "idx", np.arange(len(df), dtype="int64"))
        out[split] = datasets.Dataset.from_pandas(df, preserve_index=False)
    return out


def _task_dir(spec: TaskSpec, root: Path) -> Path:
    """``root/<TASK>``; tolerates other spellings of the directory name (e.g. ``sst2``)."""
    if not root.is_dir():
        raise _missing_error(spec, root, why="directory does not exist")
    exact = root / spec.glue_dir_name
    if exact.is_dir():
        return exact
    for child in root.iterdir():
        if child.is_dir() and _norm(child.name) in (spec.name, _norm(spec.glue_dir_name)):
            return child
    if (root / "train.tsv").exists() or (root / "dev.tsv").exists():
        raise GlueDataError(f"{root.resolve()} looks like a single task directory; point GLUE_DIR / --glue-dir "
                            f"at its parent, which holds {spec.glue_dir_name}/train.tsv, .../dev.tsv")
    raise _missing_error(spec, exact)


def _source_splits(spec: TaskSpec, splits: list[str] | None) -> list[str]:
    """Source splits ("train" and/or dev names) needed for the requested output splits."""
    valid = ["train", "validation", *spec.dev_files]
    if splits is None:
        return ["train", *spec.dev_files]
    unknown = [s for s in splits if s not in valid]
    if unknown:
        raise UsageError(f"unknown split(s) {unknown} for {spec.display}; valid: {valid}")
    return [s for s in ("train", *spec.dev_files) if s in splits or (s == "train" and "validation" in splits)]


def _local_splits(spec: TaskSpec, root: Path, wanted: list[str], strict: bool) -> dict:
    """Read the wanted TSVs; a missing file is an error if ``strict`` (explicit request), else skipped."""
    task_dir = _task_dir(spec, root)
    files = {"train": "train.tsv", **spec.dev_files}
    out = {}
    for split in wanted:
        path = task_dir / files[split]
        if not path.is_file():
            if strict:
                raise _missing_error(spec, path)
            continue
        df = read_tsv(path, spec)
        df.insert(0, "idx", np.arange(len(df), dtype="int64"))
        out[split] = datasets.Dataset.from_pandas(df, preserve_index=False)
    if not out:
        raise _missing_error(spec, task_dir / files[wanted[0]])
    return out


def _hub_splits(spec: TaskSpec, wanted: list[str]) -> dict:
    """Load nyu-mll/glue and rename its columns/splits to ours (hub "validation*" is our dev)."""
    try:
        hub = datasets.load_dataset(HUB_DATASET, spec.hf_config)
    except Exception as exc:  # any failure here (offline, proxy, auth, missing cache) has the same fix
        bundled = sorted(_bundled_files(spec))
        why = (f"the copy bundled with adapterlib has only {spec.glue_dir_name}/{', '.join(bundled)}" if bundled
               else f"{spec.display} is not in the copy bundled with adapterlib")
        raise GlueDataError(
            f"could not load {spec.display} from the HuggingFace hub ({HUB_DATASET}, config {spec.hf_config!r}), "
            f"needed because {why}: {type(exc).__name__}: {exc}. The hub needs network access; offline, pass "
            f"--glue-dir (or set GLUE_DIR) to a directory in the standard layout <TASK>/train.tsv, "
            f"<TASK>/dev.tsv.") from exc
    rename = dict(zip(_HUB_TEXT_COLUMNS[spec.name], ("text_a", "text_b"), strict=False))  # one or two text columns
    label_type = datasets.Value("float32" if spec.is_regression else "int64")
    out = {}
    for split in wanted:
        ds = hub["train" if split == "train" else "validation" + split[len("dev"):]]
        ds = ds.rename_columns(rename).cast_column("label", label_type).cast_column("idx", datasets.Value("int64"))
        out[split] = ds.select_columns(["idx", *rename.values(), "label"])
    return out


def _hold_out(ds: datasets.Dataset, val_fraction: float, seed: int):
    """Split off a fixed, seeded slice of train for validation (original row order kept in both)."""
    if not 0.0 <= val_fraction < 1.0:
        raise UsageError(f"val_fraction must be in [0, 1), got {val_fraction}")
    n = len(ds)
    n_val = max(1, round(n * val_fraction)) if val_fraction > 0 else 0
    # Legacy RandomState: numpy guarantees its stream across versions, so the slice never drifts.
    perm = np.random.RandomState(seed).permutation(n)
    return ds.select(np.sort(perm[n_val:])), ds.select(np.sort(perm[:n_val]))


def load_glue(task: str | TaskSpec, glue_dir: str | os.PathLike | None = None, val_fraction: float = 0.1,
              split_seed: int = 42, max_train_examples: int | None = None,
              splits: Iterable[str] | None = None) -> datasets.DatasetDict:
    """Load a GLUE task as a DatasetDict with ``train``, ``validation`` and the dev split(s).

    ``glue_dir`` defaults to env GLUE_DIR; with neither, the copy bundled with the package is used when it
    has the files needed (all requested splits, or any split when ``splits`` is None), else the hub
    (nyu-mll/glue).
    ``validation`` is ``val_fraction`` of train.tsv chosen with ``split_seed`` (omitted when 0).
    ``max_train_examples`` subsamples *train only*, after the hold-out, so validation is unaffected.
    ``splits`` picks output splits; a requested split whose file is missing raises GlueDataError.
    With ``splits=None`` every available split is returned, so a directory with only dev.tsv
    (QNLI in the bundled data) yields just the dev split.
    """
    spec = get_task(task)
    if max_train_examples is not None and max_train_examples < 1:
        raise UsageError(f"max_train_examples must be positive or None, got {max_train_examples}")
    requested = None if splits is None else list(splits)
    wanted = _source_splits(spec, requested)
    root = _resolve_glue_dir(glue_dir)
    if root is not None:
        raw = _local_splits(spec, root, wanted, strict=requested is not None)
    elif _bundle_has(spec, wanted, strict=requested is not None):
        raw = _bundled_splits(spec, wanted)
    else:
        raw = _hub_splits(spec, wanted)
    out = {}
    if "train" in raw:
        if len(raw["train"]) < (2 if val_fraction > 0 else 1):
            where = _task_dir(spec, root) / "train.tsv" if root is not None else f"the bundled {spec.display} train.tsv"
            raise GlueDataError(f"{where}: {len(raw['train'])} data row(s); training needs at least 2 (one is held out "
                                "for validation)")
        train, val = _hold_out(raw["train"], val_fraction, split_seed)
        if max_train_examples is not None and max_train_examples < len(train):
            # Own seeded stream: changing max_train_examples never moves the validation slice.
            pick = np.random.RandomState(split_seed + 1).permutation(len(train))[:max_train_examples]
            train = train.select(np.sort(pick))
        out["train"] = train
        if val_fraction > 0:
            out["validation"] = val
    out.update({k: v for k, v in raw.items() if k != "train"})
    if requested is not None:
        if "validation" in requested and "validation" not in out:
            raise UsageError("split 'validation' was requested but val_fraction is 0")
        out = {k: out[k] for k in requested}
    return datasets.DatasetDict(out)


_SHA_CACHE: dict[tuple, str] = {}


def _sha256(path: Path) -> str:
    """sha256 of a file, cached per (path, mtime, size) so repeated run records cost nothing."""
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    if key not in _SHA_CACHE:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        _SHA_CACHE[key] = h.hexdigest()
    return _SHA_CACHE[key]


def data_source(task: str | TaskSpec, glue_dir: str | os.PathLike | None = None,
                splits: Iterable[str] | None = None) -> dict:
    """Where :func:`load_glue` reads ``task`` from, for run records.

    ``{"kind": "local", "path": <task dir>, "files": {file name: sha256}}``,
    ``{"kind": "bundled", "path": "adapterlib/resources/glue/<TASK>", "files": {file name: sha256}}`` or
    ``{"kind": "hub", "path": "nyu-mll/glue", "config": ..., "files": {}}``. The sha256 is always that of
    the uncompressed TSV, so a bundled and a local copy of the same file give the same digest.
    ``splits`` as for :func:`load_glue`; None here means what ``train`` reads (train and the dev files).
    """
    spec = get_task(task)
    root = _resolve_glue_dir(glue_dir)
    if root is None:
        wanted = _source_splits(spec, None if splits is None else list(splits))
        if _bundle_has(spec, wanted, strict=True):
            have = _bundled_files(spec)
            files = {n: _bundled_sha256(have[n]) for n in ("train.tsv", *spec.dev_files.values()) if n in have}
            return {"kind": "bundled", "path": f"adapterlib/resources/glue/{spec.glue_dir_name}", "files": files}
        return {"kind": "hub", "path": HUB_DATASET, "config": spec.hf_config, "files": {}}
    task_dir = _task_dir(spec, root)
    names = ["train.tsv", *spec.dev_files.values()]
    files = {n: _sha256(task_dir / n) for n in names if (task_dir / n).is_file()}
    return {"kind": "local", "path": str(task_dir.resolve()), "files": files}


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def _content_hash(ds: datasets.Dataset) -> str:
    """Hash of a split's rows and column names (stable across processes, unlike random fingerprints)."""
    df = ds.to_pandas()
    h = hashlib.sha256(json.dumps(list(df.columns)).encode())
    h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return h.hexdigest()


def _tokenizer_id(tokenizer) -> dict:
    """Identity of a tokenizer: name, size and a hash of its full serialised pipeline."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        state = json.loads(backend.to_str())
        # Calling the tokenizer mutates these two fields, so they must not be part of its identity.
        state.pop("truncation", None), state.pop("padding", None)
    else:
        state = sorted(tokenizer.get_vocab().items())
    return {"name": tokenizer.name_or_path, "class": type(tokenizer).__name__,
            "vocab_size": len(tokenizer), "sha": _digest(state)}


def _tokenize_split(ds: datasets.Dataset, tokenizer, max_length: int) -> datasets.Dataset:
    """Tokenise without padding (padding is dynamic per batch) and add ``length`` and ``labels``."""
    pair = "text_b" in ds.column_names

    def encode(batch):
        enc = dict(tokenizer(batch["text_a"], batch["text_b"] if pair else None,
                             truncation=True, max_length=max_length))
        enc["length"] = [len(ids) for ids in enc["input_ids"]]
        enc["labels"] = batch["label"]
        return enc

    out = ds.map(encode, batched=True, remove_columns=ds.column_names, desc="tokenizing")
    # datasets would store ids as int32/int8, which nn.Embedding rejects once formatted as torch
    # tensors, and widen STS-B scores to float64: pin the types explicitly.
    features = out.features.copy()
    features.update({c: datasets.Sequence(datasets.Value("int64")) for c in out.column_names
                     if c not in ("length", "labels")})
    features["labels"] = ds.features["label"]
    return out.cast(features)


def tokenize_glue(dsdict: datasets.DatasetDict, tokenizer, max_length: int = 128,
                  cache_dir: str | os.PathLike | None = None) -> datasets.DatasetDict:
    """Tokenise every split, caching the result on disk.

    Output columns: ``input_ids``, ``attention_mask``, ``token_type_ids`` (if the tokenizer makes
    them), ``length`` (tokens, for length-grouped batching) and ``labels``. Each split is saved under
    ``cache_dir`` (default env ADAPTERLIB_CACHE or ~/.cache/adapterlib) keyed by its content, the
    tokenizer, ``max_length`` and TOKENIZE_CODE_VERSION; a repeat call loads it from disk instead.
    Every entry's ``adapterlib_meta.json`` records the size and sha256 of each of its files; an entry
    that does not match them (or does not load) is deleted and rebuilt, with a warning naming its path.
    ``tokenize_glue.last_cache_hit`` is True when the last call tokenised nothing.
    """
    global TOKENIZE_CALLS
    cache_dir = cache_dir or os.environ.get("ADAPTERLIB_CACHE") or Path.home() / ".cache" / "adapterlib"
    root = Path(cache_dir).expanduser() / "tokenized"
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TokenizationCacheError(f"cannot create the tokenisation cache folder {root}: {exc.strerror or exc}; "
                                     f"set ADAPTERLIB_CACHE to a writable folder") from exc
    tok_id = _tokenizer_id(tokenizer)
    out, hit = {}, True
    for split, ds in dsdict.items():
        meta = {"data": _content_hash(ds), "tokenizer": tok_id, "max_length": max_length,
                "code_version": TOKENIZE_CODE_VERSION}
        path = root / f"{split}-{_digest(meta)[:24]}"  # split name only helps humans browsing the cache
        for _attempt in range(3):  # a bad entry is rebuilt; a concurrent rebuild may need one more look
            if not path.is_dir():
                hit = False
                TOKENIZE_CALLS += 1
                _save_atomically(_tokenize_split(ds, tokenizer, max_length), path, meta)
            problem = _cache_entry_problem(path, meta)
            if problem is None:
                try:
                    out[split] = datasets.load_from_disk(str(path))
                    break
                except Exception as exc:  # noqa: BLE001 - any failure to load means the same: rebuild it
                    problem = f"does not load ({type(exc).__name__}: {exc})"
            warnings.warn(f"tokenisation cache entry {path} {problem}; deleting and rebuilding it", stacklevel=2)
            _discard_entry(path)
        else:
            raise TokenizationCacheError(f"tokenisation cache entry {path} is still bad after rebuilding it twice; "
                                         f"delete {root} or set ADAPTERLIB_CACHE to another folder")
    tokenize_glue.last_cache_hit = hit
    return datasets.DatasetDict(out)


tokenize_glue.last_cache_hit = False

_META_FILE = "adapterlib_meta.json"


def _cache_entry_problem(path: Path, meta: dict) -> str | None:
    """What is wrong with a cache entry (None if nothing): its meta file, its key, or a file's size or sha256."""
    try:
        saved = json.loads((path / _META_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"has no {_META_FILE}"
    except (OSError, ValueError) as exc:
        return f"has an unreadable {_META_FILE} ({type(exc).__name__}: {exc})"
    expected = json.loads(json.dumps(meta, default=str))
    if not isinstance(saved, dict) or {k: saved.get(k) for k in expected} != expected:
        return f"has a {_META_FILE} that does not describe this data, tokenizer and max_length"
    files = saved.get("files")
    if not isinstance(files, dict) or not files:
        return f"has a {_META_FILE} without file checksums"
    for name, want in files.items():
        file = path / name
        if not isinstance(want, dict) or Path(name).is_absolute() or ".." in Path(name).parts:
            return f"has a malformed checksum entry for {name!r} in {_META_FILE}"
        if not file.is_file():
            return f"is missing its file {name}"
        if file.stat().st_size != want.get("bytes"):
            return f"has {name} of {file.stat().st_size} bytes, {want.get('bytes')} expected (truncated or altered)"
        if _sha256(file) != want.get("sha256"):
            return f"has {name} with a sha256 other than the one recorded (altered)"
    return None


def _discard_entry(path: Path) -> None:
    """Move a bad entry out of the way (atomic rename), then delete it; a vanished entry is fine."""
    trash = path.with_name(f".bad-{path.name}-{uuid.uuid4().hex[:8]}")
    try:
        os.replace(path, trash)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise TokenizationCacheError(f"cannot remove the bad tokenisation cache entry {path}: "
                                     f"{exc.strerror or exc}; delete it by hand") from exc
    shutil.rmtree(trash, ignore_errors=True)


def _save_atomically(ds: datasets.Dataset, path: Path, meta: dict) -> None:
    """Write to a temp dir and rename, so a crash or a concurrent run never leaves half a cache entry."""
    tmp = None
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
        tmp.chmod(0o755)  # mkdtemp makes it private; the renamed entry should be as readable as its neighbours
        ds.save_to_disk(str(tmp))
        files = {str(f.relative_to(tmp)): {"bytes": f.stat().st_size, "sha256": _sha256(f)}
                 for f in sorted(tmp.rglob("*")) if f.is_file()}
        (tmp / _META_FILE).write_text(json.dumps({**meta, "files": files}, indent=1, default=str))
    except OSError as exc:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        raise TokenizationCacheError(f"cannot write the tokenisation cache entry {path}: {exc.strerror or exc}; "
                                     f"set ADAPTERLIB_CACHE to a writable folder with free space") from exc
    try:
        os.replace(tmp, path)
    except OSError:  # another process saved the same entry first; theirs is identical
        shutil.rmtree(tmp, ignore_errors=True)


def task_order(tasks) -> list[str]:
    """The distinct task names in `tasks`, in GLUE's order (the paper's Table 1 columns); unknown ones last."""
    order = list(TASKS)
    return sorted(set(tasks), key=lambda t: order.index(t) if t in order else len(order))


def task_label(task: str) -> str:
    """Column name of a task, as in the paper's Table 1 (MNLI is scored on dev matched)."""
    spec = get_task(task)
    return "MNLI-m" if spec.name == "mnli" else spec.display


def majority_floor(task, split: str = "dev", glue_dir=None, max_examples: int | None = None) -> dict:
    """Scores (percent) of always predicting the majority class on the first `max_examples` of `split`:
    the floor a trained model must beat to have learned anything (metrics.majority_baseline).
    Run records carry the same numbers for their own splits (`record["majority"]`)."""
    from .metrics import majority_baseline

    spec = get_task(task)
    labels = load_glue(spec, glue_dir, splits=[split])[split]["label"]
    return majority_baseline(spec, labels[:max_examples] if max_examples else labels)
