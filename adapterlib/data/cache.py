"""The on-disk tokenisation cache: :func:`tokenize_glue` tokenises each split once per content, tokenizer and
``max_length``, and checks every entry's files against the sizes and sha256 it recorded."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import uuid
import warnings
from pathlib import Path

import datasets
import pandas as pd

from .glue import _sha256
from .tasks import GlueDataError

# Part of every tokenisation cache key: bump it whenever _tokenize_split's output or the entry format changes
# ("3": adapterlib_meta.json records each file's size and sha256).
TOKENIZE_CODE_VERSION = "3"
# Number of splits actually tokenised (cache misses) in this process; tests use it to see cache hits.
TOKENIZE_CALLS = 0


class TokenizationCacheError(GlueDataError):
    """The on-disk tokenisation cache cannot be written or repaired (the message names the path)."""


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
