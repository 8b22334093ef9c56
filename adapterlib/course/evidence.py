"""Loaders: what the pure functions of adapterlib.course.results need from files (run records of a study, the
majority-class floor of records written before floors were recorded, the class balance of train.tsv, the
pilot's head-input runs). Notebooks call a loader, then hand its data to a pure function.

    record_floor(rec, glue_dir)          a record's dev floor (its own, else recomputed from the data)
    class_frequency_loss(task)           the loss of predicting train.tsv's class frequencies
    study_record(study, run_id)          one run record of a study (None when absent or unreadable)
    sweep_records(selection, runs, study)  per selection row, the records of its chosen setting (every seed)
    sweep_floors(records)                {task: dev floor} from those records
    head_input_table(runs)               the pilot's adapter runs per head input: best validation score
    pilot_head_runs(folder)              the pilot's CoLA adapter pair (frozen pooler vs token mean), as a row
    ablation_floors(study)               each stored ablation's dev floors, per metric
    paper_fig6()                         what the paper states about Fig. 6 (data/paper)
"""
from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

from .results import MARGIN, frequency_loss


def record_floor(rec: dict, split: str | None = None, glue_dir=None) -> float:
    """The majority-class score of the examples `rec` was scored on (its record; else recomputed from the data)."""
    from ..data import get_task, majority_floor

    spec = get_task(rec["task"])
    split = split or next(iter(spec.dev_files))
    if split in rec.get("majority", {}):
        return float(rec["majority"][split][spec.metric])
    cfg = rec["config"]
    floor = majority_floor(spec, split, glue_dir or cfg.get("glue_dir"), cfg.get("max_eval_examples"))
    return float(floor[spec.metric])


def class_frequency_loss(task, glue_dir=None) -> float | None:
    """frequency_loss of train.tsv's labels (None for regression)."""
    from ..data import get_task, load_glue

    spec = get_task(task)
    if spec.num_labels < 2:
        return None
    return frequency_loss(Counter(load_glue(spec, glue_dir, splits=["train"])["train"]["label"]).values())


def study_record(study, run_id: str) -> dict | None:
    """One run record of a study (a name under data/results/ or a folder), or None."""
    from ..records import read_record_file
    from ..sweeps.aggregate import runs_dir

    path = runs_dir(study) / f"{run_id}.json"
    if not path.is_file():
        return None
    record, problem = read_record_file(path)
    return None if problem else record


def sweep_records(selection, runs, study) -> list[list[dict]]:
    """Per row of `selection` (glue_selection), the run records of its chosen setting: every seed of it."""
    out = []
    for run_id in selection["run_id"]:
        key = runs.loc[runs["run_id"] == run_id, "config_key"]
        ids = runs.loc[runs["config_key"] == key.iloc[0], "run_id"] if len(key) else [run_id]
        out.append([r for r in (study_record(study, i) for i in ids) if r is not None])
    return out


def sweep_floors(selection, records, glue_dir=None) -> dict:
    """{task (as `selection` names it): the dev floor} from the first record of each task (NaN without one)."""
    floors = {}
    for task, recs in zip(selection["task"], records, strict=True):
        if recs and not (task in floors and not math.isnan(floors[task])):
            floors[task] = record_floor(recs[0], glue_dir=glue_dir)
        floors.setdefault(task, math.nan)
    return floors


def head_input_table(runs):
    """The pilot's adapter runs (`load_study("pilot_v2")`), best validation score per task and head input:
    "frozen pooler", "mean pooling", "pooler trained"."""
    import pandas as pd

    runs = runs[(runs["status"] == "ok") & (runs["policy"] == "adapter")]
    trained = runs["train_pooler"].astype(bool)
    variant = pd.Series("frozen pooler", index=runs.index).mask(runs["head_input"] == "mean", "mean pooling")
    variant = variant.mask(trained, "pooler trained")
    table = runs.assign(head=variant).groupby(["task", "head"])["val_score"].max().unstack("head")
    return table.reindex(columns=[c for c in ("frozen pooler", "mean pooling", "pooler trained") if c in table])


def pilot_head_runs(folder=None) -> dict | None:
    """The pilot_v2 records (if present): CoLA adapters (m=64) reading the frozen pooler vs the token mean at one
    learning rate, best validation MCC and epochs run. None when the records are not there."""
    from ..paths import RESULTS_DIR
    from ..records import load_records

    folder = Path(folder) if folder else RESULTS_DIR / "pilot_v2" / "runs"
    found: dict = {}
    for rec in load_records(folder) if folder.is_dir() else []:  # valid records only
        cfg = rec.config
        if rec.task != "cola" or rec.policy != "adapter":
            continue
        kind = "mean" if cfg.get("head_input") == "mean" else "pooler" if not cfg.get("train_pooler") else None
        if kind and rec.status == "ok" and cfg["adapter_size"] == 64:
            found.setdefault(cfg["lr"], {})[kind] = rec
    both = [lr for lr, kinds in sorted(found.items()) if set(kinds) == {"mean", "pooler"}]
    if not both:
        return None
    pooler, mean = found[both[0]]["pooler"], found[both[0]]["mean"]
    first = next((h for h in mean["history"] if h["validation_mcc"] > MARGIN), None)
    return {"train_examples": mean["splits"]["sizes"]["train"], "lr": mean["config"]["lr"],
            "pooler_mcc": pooler["selected"]["validation_mcc"], "pooler_epochs": pooler["timing"]["epochs_run"],
            "mean_mcc": mean["selected"]["validation_mcc"], "mean_epochs": mean["timing"]["epochs_run"],
            "mean_first_step": first["step"] if first else None}


def ablation_floors(study: dict, glue_dir=None) -> dict:
    """{task: {metric: majority-class score}} of each stored ablation's dev set (`studies.ablation.load_study`):
    from its record, else recomputed from the data (records written before floors were recorded)."""
    from ..data import get_task, majority_floor

    floors = {}
    for task, (_, rec) in study.items():
        majority = (rec or {}).get("majority") or {}
        if "dev" in majority:
            floors[task] = dict(majority["dev"])
        else:
            cap = ((rec or {}).get("config") or {}).get("max_eval_examples")
            floors[task] = dict(majority_floor(get_task(task), "dev", glue_dir, cap))
    return floors


def paper_fig6() -> dict:
    """What the paper states about Fig. 6 left/centre (data/paper/fig6_layer_ablation.csv).

    max_single_drop: the largest cost of removing one layer's adapters (points, "at most 2%");
    all_removed: {task: score with every adapter removed} (= that task's majority class);
    least: which layers' adapters matter least (a sentence); statements: quantity -> sentence.
    """
    from ..studies.paper import paper_table

    t = paper_table("fig6_layer_ablation")

    def by(prefix):
        return t[t["quantity"].str.startswith(prefix)]

    return {"max_single_drop": float(by("largest drop")["value"].iloc[0]),
            "all_removed": {row.task: float(row.value) for row in by("score with all").itertuples()},
            "least": by("layers that matter least")["statement"].iloc[0],
            "statements": dict(zip(t["quantity"], t["statement"], strict=True))}
