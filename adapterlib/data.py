"""GLUE tasks: registry, TSV reading, train/validation/dev splits, cached tokenisation.

Data comes from a local directory in the classic ``download_glue_data.py`` layout
(``<glue_dir>/<TASK>/train.tsv``, ``dev.tsv``; ``glue_dir=``, env GLUE_DIR or ``--glue-dir``),
otherwise from the HuggingFace hub dataset ``nyu-mll/glue`` (needs network). Both give splits
``train``, ``validation`` (a seeded held-out slice of train.tsv, for model selection) and the
GLUE dev split(s) of ``TaskSpec.dev_files`` (reporting only), with columns ``idx``, ``text_a``,
``text_b`` (pair tasks) and ``label`` (int class id; float32 score for STS-B).
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import datasets
import numpy as np
import pandas as pd

HUB_DATASET = "nyu-mll/glue"
# Part of every tokenisation cache key: bump it whenever _tokenize_split's output changes.
TOKENIZE_CODE_VERSION = "2"
# Number of splits actually tokenised (cache misses) in this process; tests use it to see cache hits.
TOKENIZE_CALLS = 0


class UnknownTaskError(ValueError):
    """Raised by :func:`get_task` for a name that is not a GLUE task."""


class GlueDataError(RuntimeError):
    """GLUE data is missing, unreadable or malformed (the message says where and how to fix it)."""


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
    layout = ", ".join(f"<TASK>/{f}" for f in ("train.tsv", *spec.dev_files.values()))
    return GlueDataError(
        f"GLUE {spec.display} data {why}: looked for {looked_at.resolve()}. Set GLUE_DIR (or pass --glue-dir) "
        f"to a directory in the standard GLUE layout ({layout}, here <TASK> = {spec.glue_dir_name}). "
        f"Without it the loader downloads {HUB_DATASET} from the HuggingFace hub, which needs network access.")


def read_tsv(path: str | os.PathLike, spec: TaskSpec | str) -> pd.DataFrame:
    """Read one GLUE TSV into columns ``text_a``, [``text_b``], ``label`` (class id or float score).

    Quoting is disabled because GLUE text contains unbalanced '"' (default CSV quoting silently
    merges rows), every field stays a string and "NA"/"null" are kept as text, and ``utf-8-sig``
    drops the BOM that starts MRPC's header.
    """
    spec, path = get_task(spec), Path(path)
    if not path.is_file():
        raise _missing_error(spec, path)
    try:
        raw = pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE, dtype=str, keep_default_na=False,
                          encoding="utf-8-sig", header=0 if spec.header else None)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise GlueDataError(f"cannot parse {path.resolve()} as a GLUE {spec.display} TSV: {exc}") from exc
    missing = [c for c in (*spec.text_columns, spec.label_column) if c not in raw.columns]
    if missing:
        raise GlueDataError(f"{path.resolve()}: missing column(s) {missing}; found {list(raw.columns)}")
    out = pd.DataFrame({"text_a": raw[spec.text_columns[0]]})
    if spec.is_pair:
        out["text_b"] = raw[spec.text_columns[1]]
    out["label"] = _parse_labels(raw[spec.label_column], spec, path)
    return out.reset_index(drop=True)


def _parse_labels(column: pd.Series, spec: TaskSpec, path: Path) -> pd.Series:
    """Map label strings to class ids (or floats for STS-B); fail loudly on the first bad one."""
    if spec.is_regression:
        values = pd.to_numeric(column, errors="coerce").astype("float32")
    else:
        values = column.map({lab: i for i, lab in enumerate(spec.labels)})
    bad = np.flatnonzero(values.isna().to_numpy())
    if len(bad):
        row = int(bad[0])
        line = row + (2 if spec.header else 1)  # 1-based line in the file, counting the header
        expected = "a number" if spec.is_regression else f"one of {list(spec.labels)}"
        raise GlueDataError(f"{path.resolve()}: line {line} (data row {row}) has label {column.iloc[row]!r}, "
                            f"expected {expected} ({len(bad)} bad row(s) in total)")
    return values if spec.is_regression else values.astype("int64")


def _resolve_glue_dir(glue_dir: str | os.PathLike | None) -> Path | None:
    """Explicit argument, else env GLUE_DIR, else None (= use the hub)."""
    chosen = glue_dir if glue_dir not in (None, "") else os.environ.get("GLUE_DIR") or None
    return None if chosen is None else Path(chosen).expanduser()


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
        raise ValueError(f"unknown split(s) {unknown} for {spec.display}; valid: {valid}")
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
        raise GlueDataError(
            f"could not load {spec.display} from the HuggingFace hub ({HUB_DATASET}, config {spec.hf_config!r}): "
            f"{type(exc).__name__}: {exc}. The hub needs network access; offline, set GLUE_DIR (or pass "
            f"--glue-dir) to a directory in the standard layout <TASK>/train.tsv, <TASK>/dev.tsv.") from exc
    rename = dict(zip(_HUB_TEXT_COLUMNS[spec.name], ("text_a", "text_b")))
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
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    n = len(ds)
    n_val = max(1, round(n * val_fraction)) if val_fraction > 0 else 0
    # Legacy RandomState: numpy guarantees its stream across versions, so the slice never drifts.
    perm = np.random.RandomState(seed).permutation(n)
    return ds.select(np.sort(perm[n_val:])), ds.select(np.sort(perm[:n_val]))


def load_glue(task: str | TaskSpec, glue_dir: str | os.PathLike | None = None, val_fraction: float = 0.1,
              split_seed: int = 42, max_train_examples: int | None = None,
              splits: Iterable[str] | None = None) -> datasets.DatasetDict:
    """Load a GLUE task as a DatasetDict with ``train``, ``validation`` and the dev split(s).

    ``glue_dir`` defaults to env GLUE_DIR; with neither, the hub (nyu-mll/glue) is used.
    ``validation`` is ``val_fraction`` of train.tsv chosen with ``split_seed`` (omitted when 0).
    ``max_train_examples`` subsamples *train only*, after the hold-out, so validation is unaffected.
    ``splits`` picks output splits; a requested split whose file is missing raises GlueDataError.
    With ``splits=None`` every available split is returned, so a directory with only dev.tsv
    (QNLI in the bundled data) yields just the dev split.
    """
    spec = get_task(task)
    if max_train_examples is not None and max_train_examples < 1:
        raise ValueError(f"max_train_examples must be positive or None, got {max_train_examples}")
    requested = None if splits is None else list(splits)
    wanted = _source_splits(spec, requested)
    root = _resolve_glue_dir(glue_dir)
    if root is None:
        raw = _hub_splits(spec, wanted)
    else:
        raw = _local_splits(spec, root, wanted, strict=requested is not None)
    out = {}
    if "train" in raw:
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
            raise ValueError("split 'validation' was requested but val_fraction is 0")
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


def data_source(task: str | TaskSpec, glue_dir: str | os.PathLike | None = None) -> dict:
    """Where :func:`load_glue` reads ``task`` from, for run records.

    ``{"kind": "local", "path": <task dir>, "files": {file name: sha256}}`` or
    ``{"kind": "hub", "path": "nyu-mll/glue", "config": ..., "files": {}}``.
    """
    spec = get_task(task)
    root = _resolve_glue_dir(glue_dir)
    if root is None:
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
    ``tokenize_glue.last_cache_hit`` is True when the last call tokenised nothing.
    """
    global TOKENIZE_CALLS
    cache_dir = cache_dir or os.environ.get("ADAPTERLIB_CACHE") or Path.home() / ".cache" / "adapterlib"
    root = Path(cache_dir).expanduser() / "tokenized"
    root.mkdir(parents=True, exist_ok=True)
    tok_id = _tokenizer_id(tokenizer)
    out, hit = {}, True
    for split, ds in dsdict.items():
        meta = {"data": _content_hash(ds), "tokenizer": tok_id, "max_length": max_length,
                "code_version": TOKENIZE_CODE_VERSION}
        path = root / f"{split}-{_digest(meta)[:24]}"  # split name only helps humans browsing the cache
        if not path.is_dir():
            hit = False
            TOKENIZE_CALLS += 1
            _save_atomically(_tokenize_split(ds, tokenizer, max_length), path, meta)
        out[split] = datasets.load_from_disk(str(path))
    tokenize_glue.last_cache_hit = hit
    return datasets.DatasetDict(out)


tokenize_glue.last_cache_hit = False


def _save_atomically(ds: datasets.Dataset, path: Path, meta: dict) -> None:
    """Write to a temp dir and rename, so a crash or a concurrent run never leaves half a cache entry."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the renamed entry should be as readable as its neighbours
    ds.save_to_disk(str(tmp))
    (tmp / "adapterlib_meta.json").write_text(json.dumps(meta, indent=1, default=str))
    try:
        os.replace(tmp, path)
    except OSError:  # another process saved the same entry first; theirs is identical
        shutil.rmtree(tmp, ignore_errors=True)
