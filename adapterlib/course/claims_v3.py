"""The scorecard's rows fed by the v3 studies (notebook 07, issue 29): where the paper put its adapters and two
implementation details it fixed, tested against what later work changed.

    v3 = load_v3()                            # the one loader: {"methods": frame, "impl": frame} (empty when not run)
    placement_comparisons(v3["methods"], floors)   # per task: Houlsby minus Pfeiffer at the nearest matched budget
    v3_claims(v3, floors)                     # the three rows (claims.Claim), appended by claims.scorecard

Every number comes from notebook 07's tables (after_houlsby.method_points, after_houlsby.implementation_dial):
each setting's lr chosen on validation, the dev score only reported. Verdicts use verdicts.gap_verdict with
CLAIM_GAP (0.5 points). A study without records gives its rows "untestable here" and says which study is missing.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..data import task_label
from .after_houlsby import _bootstrap_mean, implementation_dial, method_points
from .claims import Claim
from .verdicts import CLAIM_GAP, HOLDS, NO, PARTLY, UNTESTABLE, at_floor, floor_note, gap_verdict

V3_STUDIES = {"methods": "methods_v3", "impl": "impl_v3"}   # Evidence.v3's keys -> study folders (data/results)
NOTEBOOK = "07"
DASH = "—"


def no_records(study: str) -> str:
    """The `ours` cell of a row whose study has no record yet."""
    return f"{DASH} (no {study} records yet: sweeps/{study}.yaml has not run)"


def both_ways_verdict(mean: float, low: float, high: float, tolerance: float = CLAIM_GAP) -> str:
    """"No difference" as gap_verdict applied both ways (the difference and its negative): holds when the whole
    interval lies within +-tolerance, does not hold when it lies wholly beyond one side, partly otherwise."""
    ways = (gap_verdict(mean, low, high, tolerance), gap_verdict(-mean, -high, -low, tolerance))
    if UNTESTABLE in ways:
        return UNTESTABLE
    return NO if NO in ways else HOLDS if ways == (HOLDS, HOLDS) else PARTLY


def _seeds(frame: pd.DataFrame, run_id: str) -> np.ndarray:
    """The dev scores of every ok seed of the setting that `run_id` ran (its config_key)."""
    ok = frame[frame["status"] == "ok"]
    key = ok.loc[ok["run_id"] == run_id, "config_key"].iloc[0]
    return ok.loc[ok["config_key"] == key, "dev_score"].to_numpy(float)


# --- two adapters per layer (Houlsby) vs one after the feed-forward (Pfeiffer) ---------------------------------

PLACEMENT = ["task", "houlsby", "pfeiffer", "houlsby_trainable", "pfeiffer_trainable", "houlsby_dev", "pfeiffer_dev",
             "gap", "n_seeds_min"]


def placement_comparisons(frame: pd.DataFrame, floors: pd.DataFrame) -> pd.DataFrame:
    """Per task with both methods (method_points: lr chosen on validation): the Houlsby and Pfeiffer settings whose
    trained-parameter counts are nearest (smallest |log ratio|; the dev score plays no part) and the Houlsby minus
    Pfeiffer dev gap. Tasks where both sit at their floor are left out (`attrs["excluded"]`); `attrs["seeds"]`
    holds each kept task's two arrays of per-seed dev scores."""
    points = method_points(frame)
    rows, excluded, seeds = [], [], {}
    for task, g in points.groupby("task", sort=False):
        h, p = g[g["method"] == "houlsby"], g[g["method"] == "pfeiffer"]
        if h.empty or p.empty:
            continue
        _, i, j = min((abs(math.log(a["trainable"] / b["trainable"])), i, j)
                      for i, a in h.iterrows() for j, b in p.iterrows())
        a, b = h.loc[i], p.loc[j]
        if at_floor(task, a["dev_mean"], floors) and at_floor(task, b["dev_mean"], floors):
            excluded.append(task)
            continue
        seeds[task] = (_seeds(frame, a["run_id"]), _seeds(frame, b["run_id"]))
        rows.append({"task": task, "houlsby": a["label"], "pfeiffer": b["label"], "houlsby_trainable": a["trainable"],
                     "pfeiffer_trainable": b["trainable"], "houlsby_dev": seeds[task][0].mean(),
                     "pfeiffer_dev": seeds[task][1].mean(), "gap": seeds[task][0].mean() - seeds[task][1].mean(),
                     "n_seeds_min": min(len(s) for s in seeds[task])})
    out = pd.DataFrame(rows, columns=PLACEMENT)
    out.attrs.update(excluded=excluded, seeds=seeds)
    return out


def mean_gap_interval(seeds: dict, n_boot: int = 10000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """A `level` seed-bootstrap interval for the mean over tasks of (first - second): each draw resamples each
    task's two seed arrays (after_houlsby._bootstrap_mean), as aggregate.glue_gap does; NaN where a side has one
    seed (its noise is not measured)."""
    if not seeds or min(len(s) for pair in seeds.values() for s in pair) < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    boot = sum(_bootstrap_mean(a, rng, n_boot) - _bootstrap_mean(b, rng, n_boot) for a, b in seeds.values())
    low, high = np.quantile(boot / len(seeds), [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def _floor(compared: pd.DataFrame, floors: pd.DataFrame) -> str:
    """The `floor` column of a v3 row: floor_note of the tasks left out, or, where no task has both sides yet (a
    study in progress), "n/a" rather than "every task above its floor"."""
    excluded = compared.attrs["excluded"]
    return floor_note(excluded, floors) if len(compared) or excluded else "n/a: no task compared yet"


def placement_claim(frame: pd.DataFrame, floors: pd.DataFrame) -> Claim:
    """Houlsby (two adapters per layer) minus Pfeiffer (one, after the feed-forward) at a matched budget, averaged
    over the tasks above their floor, with a seed bootstrap; gap_verdict within CLAIM_GAP."""
    claim = ("two adapters per layer (the paper's) do as well as one after the feed-forward (Pfeiffer) at a "
             "matched budget")
    paper = ("section 2.1 / 3.6", "two per layer; attention-only adapters did not help")
    rule = f"gap_verdict: Houlsby - Pfeiffer within {CLAIM_GAP:g} points"
    if frame.empty:
        return Claim("houlsby_vs_pfeiffer", claim, *paper, no_records(V3_STUDIES["methods"]), math.nan, math.nan,
                     math.nan, "none", "n/a: no runs", UNTESTABLE, rule, NOTEBOOK)
    comp = placement_comparisons(frame, floors)
    mean = float(comp["gap"].mean()) if len(comp) else math.nan
    low, high = mean_gap_interval(comp.attrs["seeds"])
    ours = (f"{mean:+.2f} over {len(comp)} tasks (" + ", ".join(
        f"{task_label(r.task)} {r.houlsby} vs {r.pfeiffer} {r.gap:+.1f}" for r in comp.itertuples()) + ")"
        if len(comp) else "no task with both methods above its floor" if comp.attrs["excluded"]
        else "no task has runs of both methods yet (the study is in progress)")
    interval = ("none" if math.isnan(mean) else "none (1 seed)" if math.isnan(low)
                else f"{low:+.2f} .. {high:+.2f} (95% seed bootstrap)")
    return Claim("houlsby_vs_pfeiffer", claim, *paper, ours, mean, low, high, interval,
                 _floor(comp, floors), gap_verdict(mean, low, high), rule, NOTEBOOK)


# --- the implementation dial: init std and LayerNorms ------------------------------------------------------------


def dial_differences(dial: pd.DataFrame, variant: str, floors: pd.DataFrame) -> pd.DataFrame:
    """The dial's rows of `variant` that have the paper's variant beside them (diff not NaN), without the tasks where
    both sit at their floor (`attrs["excluded"]`)."""
    paper = dial[dial["variant"] == "paper"].set_index("task")["dev_mean"]
    part = dial[(dial["variant"] == variant) & dial["diff"].notna()]
    keep = np.array([not (at_floor(t, s, floors) and at_floor(t, paper[t], floors))
                     for t, s in zip(part["task"], part["dev_mean"], strict=True)], dtype=bool)
    out = part[keep].copy()
    out.attrs["excluded"] = [t for t in part["task"] if t not in set(out["task"])]
    return out


def dial_claim(key: str, claim: str, paper: tuple, variant: str, dial: pd.DataFrame, floors: pd.DataFrame,
               verdict, rule: str, missing: bool) -> Claim:
    """One dial row: `variant` minus the paper's variant, the mean over tasks, and the lowest .. highest ends of the
    per-task 95% seed-bootstrap intervals; none when a task has one seed on a side (its noise is not measured)."""
    if missing:
        return Claim(key, claim, *paper, no_records(V3_STUDIES["impl"]), math.nan, math.nan, math.nan, "none",
                     "n/a: no runs", UNTESTABLE, rule, NOTEBOOK)
    d = dial_differences(dial, variant, floors)
    mean = float(d["diff"].mean()) if len(d) else math.nan
    low, high = ((float(d["diff_low"].min(skipna=False)), float(d["diff_high"].max(skipna=False))) if len(d)
                 else (math.nan, math.nan))
    ours = (f"{mean:+.2f} over {len(d)} tasks (" + ", ".join(f"{task_label(r.task)} {r.diff:+.1f}"
                                                            for r in d.itertuples()) + ")"
            if len(d) else f"no {variant} run beside the paper's above the floor" if d.attrs["excluded"]
            else f"no {variant} run beside the paper's yet (the study is in progress)")
    interval = ("none" if not len(d) else "none (1 seed)" if math.isnan(low)
                else f"{low:+.2f} .. {high:+.2f} (per-task 95% seed bootstrap, lowest .. highest)")
    return Claim(key, claim, *paper, ours, mean, low, high, interval, _floor(d, floors), verdict(mean, low, high),
                 rule, NOTEBOOK)


def dial_claims(impl: pd.DataFrame, floors: pd.DataFrame) -> list[Claim]:
    """The init std (adapter-bert's 1e-3 vs the paper's 1e-2: no difference, both ways within CLAIM_GAP) and the
    LayerNorms (frozen, as AdapterHub, vs trained, as the paper: costs at most CLAIM_GAP)."""
    dial, missing = implementation_dial(impl), impl.empty
    return [
        dial_claim("init_std_adapter_bert", "the init std of adapter-bert's code (1e-3) does as well as the "
                   "paper's 1e-2", ("section 3.6, Fig. 6 right", "both inside the robust range (flat below 1e-2)"),
                   "adapter-bert", dial, floors, both_ways_verdict,
                   f"gap_verdict both ways: std 1e-3 - std 1e-2 within +-{CLAIM_GAP:g} points", missing),
        dial_claim("layernorms_frozen", "training the LayerNorms matters little: freezing them (as AdapterHub does) "
                   "costs little", ("section 2.1; adapter-bert's authors",
                                    "trained per task; 'LayerNorms matter less' than the head"),
                   "LayerNorms frozen", dial, floors, gap_verdict,
                   f"gap_verdict: LayerNorms frozen - trained within {CLAIM_GAP:g} points", missing),
    ]


def v3_claims(v3: dict, floors: pd.DataFrame) -> list[Claim]:
    """The scorecard's notebook-07 rows from `load_v3`'s frames (a missing key reads as a study not run)."""
    empty = pd.DataFrame()
    return [placement_claim(v3.get("methods", empty), floors), *dial_claims(v3.get("impl", empty), floors)]


def load_v3(results_dir=None) -> dict[str, pd.DataFrame]:
    """The records frames of V3_STUDIES under `results_dir` (default data/results); an empty frame for a study
    that has not run (no folder, or no record in it)."""
    from pathlib import Path

    from .after_houlsby import load_records_frame

    root = Path(results_dir) if results_dir is not None else None
    return {key: load_records_frame([study], root) for key, study in V3_STUDIES.items()}
