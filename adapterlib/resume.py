"""Resuming a training run at its last finished epoch (after a kill, a reboot, the end of a session).

At the end of every epoch `train` (with an output folder) writes one file next to where its record
will go, `.<run_id>.resume.safetensors`, replaced atomically each epoch and deleted once the record is
written. It holds everything the rest of the run depends on:

- the trained parameters and the best ones so far (the epoch validation has chosen until now);
- AdamW's moments and step counts, the lr schedule's position;
- the random states: torch's (dropout masks), the batch sampler's (the next epoch's batch order),
  Python's and NumPy's;
- the loop's counters: step, history, best validation point, epochs without improvement, the time spent.

Tensors are stored as safetensors, everything else as JSON in the file's metadata: nothing is
unpickled. A run resumed from it continues exactly where it stopped: on a CPU the finished run is the
one an uninterrupted run would have produced, bit for bit (tests/test_resume.py checks this).

A snapshot is used only by the run it was written for (same run id, hence the same config) and
only with the same trained-parameter names and shapes; otherwise it is ignored with a warning and
the run starts from scratch.
"""
from __future__ import annotations

import dataclasses
import json
import os
import random
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from .errors import AdapterlibError

# temp files name their writer, so a sweep's cleanup spares a live one
from .records import _type_problem, _writer

FORMAT = 1


@dataclass
class LoopState:
    """The training loop's counters (`train._fit`), as a snapshot's "loop" metadata holds them (JSON, same keys)."""

    step: int = 0                  # optimizer steps taken
    train_time: float = 0.0        # seconds inside the training steps
    tokens: int = 0                # real (unpadded) tokens trained on
    padded: int = 0                # tokens including padding
    loss_sum: float = 0.0          # training losses summed over the steps
    history: list[dict] = field(default_factory=list)   # one entry per validation
    best: dict | None = None       # the history entry chosen on validation so far
    since_best: int = 0            # validations without improvement (after the warm-up)
    wall_s: float = 0.0            # wall time of the segments before this one (a snapshot: up to it)
    writer: dict | None = None     # the code and libraries of this segment (git, versions)
    segments: list[dict] = field(default_factory=list)  # the earlier segments: until_epoch + their writer

    def to_json(self, segment_s: float = 0.0) -> dict:
        """The snapshot's "loop" metadata, with wall_s counting `segment_s` seconds of this segment too."""
        return {**dataclasses.asdict(self), "wall_s": self.wall_s + segment_s}

    @classmethod
    def from_json(cls, loop: dict) -> LoopState:
        """Counters read back from a snapshot (checked by `snapshot_problem`), older FORMAT 1 snapshots too:
        those listed the epochs resumed at ("resumed") and had no writer."""
        segments = loop.get("segments") or [{"until_epoch": e} for e in loop.get("resumed", [])]
        return cls(**{f.name: loop[f.name] for f in dataclasses.fields(cls) if f.name in LOOP_FIELDS},
                   writer=loop.get("writer"), segments=segments)

    def resume(self, until_epoch: int) -> None:
        """Start a new segment: the one that wrote this snapshot (and trained until `until_epoch`) becomes earlier."""
        self.segments = self.segments + [{"until_epoch": until_epoch, **(self.writer or {})}]
        self.writer = None


def snapshot_path(output_dir, run_id: str) -> Path:
    return Path(output_dir) / f".{run_id}.resume.safetensors"


def _optimizer_tensors(optimizer) -> tuple[dict, dict]:
    """AdamW's state as flat tensors {"opt.<param index>.<key>"} and the rest (param_groups, non-tensors) as JSON."""
    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, entry in sd["state"].items():
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"opt.{index}.{key}"] = value.detach().contiguous().clone()
            else:
                scalars[f"{index}.{key}"] = value
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def _load_optimizer(optimizer, tensors: dict, meta: dict) -> None:
    state: dict = {}
    for name, value in tensors.items():
        if name.startswith("opt."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    for name, value in meta["scalars"].items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in meta["param_groups"]]
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def save(path: Path, run_id: str, model, optimizer, scheduler, sampler_generator, loop: LoopState,
         best_state: dict | None, segment_s: float = 0.0) -> None:
    """Write the snapshot of a run at the end of an epoch (atomically: the old one or the new one); `segment_s`:
    the wall time of this segment so far (added to `loop.wall_s`)."""
    tensors = {f"model.{n}": p.detach().contiguous().clone() for n, p in model.named_parameters() if p.requires_grad}
    tensors.update({f"best.{n}": t.contiguous() for n, t in (best_state or {}).items()})
    opt_tensors, opt_meta = _optimizer_tensors(optimizer)
    tensors.update(opt_tensors)
    tensors["rng.torch"] = torch.get_rng_state()
    tensors["rng.sampler"] = sampler_generator.get_state()
    np_state = np.random.get_state()
    tensors["rng.numpy"] = torch.from_numpy(np_state[1].astype(np.int64))
    py_state = random.getstate()
    meta = {"format": FORMAT, "run_id": run_id, "time": time.time(), "loop": loop.to_json(segment_s),
            "optimizer": opt_meta, "scheduler": scheduler.state_dict(),
            "numpy": [np_state[0], int(np_state[2]), int(np_state[3]), float(np_state[4])],
            "python": [py_state[0], list(py_state[1]), py_state[2]]}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{path.name}.{_writer()}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={"adapterlib_resume": json.dumps(meta)})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: Path, run_id: str, model, optimizer, scheduler,
         sampler_generator) -> tuple[LoopState, dict | None] | None:
    """Restore a run from its snapshot: (loop counters, best state so far), or None (no usable snapshot)."""
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads(f.metadata()["adapterlib_resume"])
        tensors = load_file(str(path))
    except (OSError, ValueError, KeyError, TypeError, SafetensorError) as e:  # truncated or foreign: start afresh
        warnings.warn(f"ignoring the resume snapshot {path} ({type(e).__name__}: {e}); the run starts from scratch",
                      stacklevel=2)
        return None
    trained = {n: p for n, p in model.named_parameters() if p.requires_grad}
    saved = {n[len("model."):]: t for n, t in tensors.items() if n.startswith("model.")}
    if (not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("run_id") != run_id
            or saved.keys() != trained.keys() or any(saved[n].shape != p.shape for n, p in trained.items())):
        warnings.warn(f"ignoring the resume snapshot {path}: it was written for another run or model; "
                      "the run starts from scratch", stacklevel=2)
        return None
    problem = snapshot_problem(meta, tensors, optimizer, sampler_generator)
    if problem:  # checked before anything is restored, so a bad snapshot leaves the fresh run untouched
        warnings.warn(f"ignoring the resume snapshot {path}: {problem}; the run starts from scratch", stacklevel=2)
        return None
    try:
        with torch.no_grad():
            for n, p in trained.items():
                p.copy_(saved[n])
        _load_optimizer(optimizer, tensors, meta["optimizer"])
        scheduler.load_state_dict(meta["scheduler"])
        torch.set_rng_state(tensors["rng.torch"])
        sampler_generator.set_state(tensors["rng.sampler"])
        name, pos, has_gauss, cached = meta["numpy"]
        np.random.set_state((name, tensors["rng.numpy"].numpy().astype(np.uint32), pos, has_gauss, cached))
        version, internal, gauss = meta["python"]
        random.setstate((version, tuple(internal), gauss))
    except Exception as e:  # checked above; anything left is half-restored: stop rather than train on it
        raise SnapshotError(f"the resume snapshot {path} could not be restored ({type(e).__name__}: {e}); "
                            "delete it to start the run afresh") from e
    best = {n[len("best."):]: t for n, t in tensors.items() if n.startswith("best.")} or None
    return LoopState.from_json(meta["loop"]), best


class SnapshotError(AdapterlibError, RuntimeError):
    """A resume snapshot passed its checks but could not be restored."""


# the loop counters a snapshot must hold, with their types (records.NESTED's kinds); LoopState's other fields,
# `writer` and `segments`, are optional (older snapshots lack them)
LOOP_FIELDS = {"step": "int", "train_time": "num", "tokens": "int", "padded": "int", "loss_sum": "num",
               "history": "list", "best": "map?", "since_best": "int", "wall_s": "num"}


def snapshot_problem(meta: dict, tensors: dict, optimizer, sampler_generator) -> str | None:
    """Why a snapshot's metadata and random states cannot be restored (a key missing, a wrong type, a random
    state of the wrong size or kind), or None. Each state is tried on a fresh generator, never the live one."""
    loop = meta.get("loop")
    if not isinstance(loop, dict):
        return "its loop counters are missing"
    for key, kind in LOOP_FIELDS.items():
        if key not in loop:
            return f"its loop counters have no {key!r}"
        if (problem := _type_problem(f"loop.{key}", loop[key], kind)):
            return problem
    for key, kind in (("segments", "list?"), ("resumed", "list?"), ("writer", "map?")):  # newer / older optional
        if key in loop and (problem := _type_problem(f"loop.{key}", loop[key], kind)):
            return problem
    if any(not isinstance(h, dict) for h in loop["history"]):
        return "loop.history must be a list of mappings"
    opt, groups = meta.get("optimizer"), optimizer.state_dict()["param_groups"]
    if not isinstance(opt, dict) or not isinstance(opt.get("scalars"), dict) \
            or not isinstance(opt.get("param_groups"), list) or len(opt["param_groups"]) != len(groups) \
            or any(not isinstance(g, dict) or len(g.get("params") or []) != len(h["params"])
                   for g, h in zip(opt["param_groups"], groups, strict=True)):
        return "its optimizer state does not match this run's parameter groups"
    if not isinstance(meta.get("scheduler"), dict):
        return "its lr schedule state is missing"
    missing = [k for k in ("rng.torch", "rng.sampler", "rng.numpy") if k not in tensors]
    if missing:
        return f"its random states {missing} are missing"
    state = meta.get("numpy")  # numpy stores an out-of-range position without a word: checked here
    if not (isinstance(state, list) and len(state) == 4 and state[0] == "MT19937" and type(state[1]) is int
            and 0 <= state[1] <= 624 and state[2] in (0, 1) and tensors["rng.numpy"].numel() == 624):
        return f"its numpy random state is not an MT19937 state (position 0..624), got {str(state)[:60]}"
    try:
        torch.Generator().set_state(tensors["rng.torch"])
        torch.Generator(device=sampler_generator.device).set_state(tensors["rng.sampler"])
        name, pos, has_gauss, cached = meta["numpy"]
        np.random.RandomState().set_state((name, tensors["rng.numpy"].numpy().astype(np.uint32), pos, has_gauss,
                                           cached))
        version, internal, gauss = meta["python"]
        random.Random().setstate((version, tuple(internal), gauss))
    except Exception as e:  # noqa: BLE001 - any way a state fails to restore means the same: unusable
        return f"a random state does not restore ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
    return None


def pending(runs_dir) -> list[dict]:
    """The snapshots in a study's runs folder (runs stopped part-way, or training now): run id, the epochs
    finished and the wall time spent so far, read from each file's metadata alone."""
    out = []
    for path in sorted(Path(runs_dir).glob(".*.resume.safetensors")):
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = json.loads(f.metadata()["adapterlib_resume"])
            history = meta["loop"]["history"]
            entry = {"run_id": meta["run_id"], "epochs": history[-1]["epoch"] if history else 0,
                     "wall_s": meta["loop"]["wall_s"], "time": meta["time"]}
        except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError, SafetensorError):
            continue  # half-written or foreign: the run starts afresh anyway, so nothing to list
        if not any(_type_problem(k, entry[k], kind) for k, kind in
                   (("run_id", "str"), ("epochs", "num"), ("wall_s", "num"), ("time", "num"))):
            out.append(entry)   # a snapshot whose counters have the wrong types is not listed either
    return out


def remove(path: Path) -> None:
    Path(path).unlink(missing_ok=True)
