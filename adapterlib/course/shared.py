"""Train each course configuration once; every notebook that needs it reads its run record.

Notebooks 02-05 train some of the same configurations (adapters of size 64 on an SST-2 subset, full
fine-tuning at its usual learning rate). `train_once(cfg)` looks for the run record of `cfg`'s run id
in the course's run folder and returns it when it is there (status ok, and the adapter checkpoint
too when one is asked for); otherwise it trains and writes the record there. A run id is a hash of
the whole configuration, so any change of setting (preset, task, learning rate, seed) trains anew.

    rec = train_once(TrainConfig(task="sst2", policy="adapter", adapter_size=64, max_train_examples=3000))
    rec["reused"]   # True when an earlier notebook (or an earlier run of this one) trained it

The folder is outputs/course-runs/ in the project (ignored by git), or $ADAPTERLIB_COURSE_RUNS.
Delete it to train everything again. Two notebooks (or kernels) that ask for the same run at the same time
do not both train it: the second waits on the run's lock file (<run_id>.lock) and then reads the record.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..config import TrainConfig
from ..paths import project_root

RUNS_ENV = "ADAPTERLIB_COURSE_RUNS"


def course_runs_dir() -> Path:
    """Where the course's run records go: $ADAPTERLIB_COURSE_RUNS, else <project>/outputs/course-runs."""

    if os.environ.get(RUNS_ENV):
        return Path(os.environ[RUNS_ENV]).expanduser()
    return project_root() / "outputs" / "course-runs"


def stored_run(cfg, folder=None, checkpoint: bool = False):
    """The finished run record of `cfg` in `folder` (default: the course's), or None."""
    from ..records import read_record_file
    from ..runids import run_id

    folder = Path(folder) if folder is not None else course_runs_dir()
    path = folder / f"{run_id(cfg)}.json"
    if not path.is_file():
        return None
    record, problem = read_record_file(path)
    if problem or record.status != "ok" or not _same_config(record.config, cfg):
        return None  # unreadable, failed or another configuration: train again (the file is replaced)
    if checkpoint and not (folder / record.run_id).is_dir():
        return None
    record.path = str(path)
    return record


def _same_config(recorded, cfg) -> bool:
    """Whether a record's config is `cfg`'s (RunRecord.config: a field newer than the record at its legacy value)."""
    try:
        return TrainConfig(**recorded).to_dict() == cfg.to_dict()
    except (TypeError, ValueError):  # not a mapping, an unknown or invalid field
        return False


def train_once(cfg, folder=None, checkpoint: bool = False, progress: bool = True, quiet: bool = False,
               on_eval=None):
    """The run record of `cfg`: read from the course's run folder if it is there, else trained now.

    checkpoint: also keep the trained adapter (or LayerNorm / head) weights, at <folder>/<run_id>/.
    The record gets `reused` (True: read, not trained) and `path`. One line says which happened
    unless `quiet`. `on_eval(history)`: called after each validation of a run trained now (see `train`).
    """
    from filelock import FileLock

    from ..train import run_id, train

    folder = Path(folder) if folder is not None else course_runs_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(folder / f"{run_id(cfg)}.lock"):  # another process training this run: wait, then reuse it
        record = stored_run(cfg, folder, checkpoint)
        if record is not None:
            record.reused = True
            if not quiet:
                print(f"reused {record.run_id} (trained earlier in {record.timing.wall_s:.0f} s; its record is in "
                      f"the course's run folder)")  # no machine path: notebooks store this line
            return record
        record = train(cfg, output_dir=folder, progress=progress, save_checkpoint=checkpoint, on_eval=on_eval)
    record.reused = False
    return record
