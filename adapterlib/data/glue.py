"""GLUE sources: a local GLUE folder, the bundled copy (checked against its manifest) or the hub; splits.

See :mod:`adapterlib.data` for the order in which the sources are tried. :func:`load_glue` returns the splits,
:func:`data_source` names the source and the sha256 of its files for run records.
"""
from __future__ import annotations

import hashlib
import importlib.resources
import io
import json
import lzma
import os
from pathlib import Path
from typing import Iterable

import datasets
import numpy as np
import pandas as pd

from ..errors import UsageError
from .tasks import GlueDataError, TaskSpec, _norm, _parse_tsv, get_task

HUB_DATASET = "nyu-mll/glue"

# Text columns of the hub parquet files (they differ from the TSV headers, e.g. MNLI premise/hypothesis).
_HUB_TEXT_COLUMNS = {
    "cola": ("sentence",), "sst2": ("sentence",), "mrpc": ("sentence1", "sentence2"),
    "stsb": ("sentence1", "sentence2"), "qqp": ("question1", "question2"),
    "mnli": ("premise", "hypothesis"), "qnli": ("question", "sentence"),
    "rte": ("sentence1", "sentence2"), "wnli": ("sentence1", "sentence2"),
}


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
    rename = dict(zip(_HUB_TEXT_COLUMNS[spec.name], ("text_a", "text_b"), strict=False))  # 1 or 2 columns
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


def majority_floor(task, split: str = "dev", glue_dir=None, max_examples: int | None = None) -> dict:
    """Scores (percent) of always predicting the majority class on the first `max_examples` of `split`:
    the floor a trained model must beat to have learned anything (metrics.majority_baseline).
    Run records carry the same numbers for their own splits (`record["majority"]`)."""
    from ..metrics import majority_baseline

    spec = get_task(task)
    labels = load_glue(spec, glue_dir, splits=[split])[split]["label"]
    return majority_baseline(spec, labels[:max_examples] if max_examples else labels)
