"""Seed bootstraps: how far each adapter method is from full fine-tuning on Table 1 (`glue_gap`), and how
twin runs (same settings and seed) on two machines differ (`_epoch_by_epoch`, `twin_differences`,
`twin_summary`; aggregate.twin_pairs pairs them)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..data import task_order as _task_order
from ..record import RunRecord
from ..vocab import TABLE1, key_of
from .selection import glue_selection


def _epoch_by_epoch(rec: RunRecord, ref: RunRecord) -> dict:
    """Two runs' histories compared over the epochs both ran (see `twin_pairs`)."""
    key = f"validation_{rec.metric}"
    mine, theirs = rec.history, ref.history
    pairs = list(zip(mine, theirs, strict=False))  # the epochs both ran
    loss = [abs(x["train_loss"] - y["train_loss"]) for x, y in pairs
            if x.get("train_loss") is not None and y.get("train_loss") is not None]
    val = [x[key] - y[key] for x, y in pairs if x.get(key) is not None and y.get(key) is not None]
    return {"same_epochs": len(pairs), "train_loss_max_abs_diff": max(loss) if loss else float("nan"),
            "val_same_epochs_diff": float(np.mean(val)) if val else float("nan")}


def twin_differences(pairs: pd.DataFrame, n_boot: int = 10000, seed: int = 0) -> pd.DataFrame:
    """Per setting of `twin_pairs` (task, policy, size, lr): the seeds compared, each side's mean dev score,
    the mean difference (study - reference) of dev and of validation scores, each with a 95% bootstrap interval
    over the seeds (each setting draws from its own seeded stream; NaN for one seed, whose spread is not
    measured, as in `glue_gap`), each side's mean epochs run, and epoch by epoch: the mean difference of
    validation scores over the epochs both runs of a pair ran, and the largest training-loss difference."""
    def interval(diff: np.ndarray) -> tuple[float, float]:
        if len(diff) < 2:
            return float("nan"), float("nan")
        rng = np.random.default_rng(seed)
        return tuple(np.quantile(rng.choice(diff, (n_boot, len(diff))).mean(axis=1), [0.025, 0.975]))

    rows = []
    keys = ["task", "policy", "adapter_size", "lr"]
    for key, group in pairs.groupby(keys, dropna=False, sort=True):
        dev = (group["dev_score"] - group["reference_dev_score"]).to_numpy(float)
        val = (group["val_score"] - group["reference_val_score"]).to_numpy(float)
        (low, high), (val_low, val_high) = interval(dev), interval(val)
        rows.append({**dict(zip(keys, key, strict=False)), "setting": group["setting"].iloc[0], "n_seeds": len(dev),
                     "machine": " / ".join(sorted(set(group["machine"]))),
                     "reference_machine": " / ".join(sorted(set(group["reference_machine"]))),
                     "dev_mean": group["dev_score"].mean(), "reference_dev_mean": group["reference_dev_score"].mean(),
                     "dev_diff": dev.mean(), "dev_diff_low": low, "dev_diff_high": high,
                     "val_diff": val.mean(), "val_diff_low": val_low, "val_diff_high": val_high,
                     "val_same_epochs_diff": group["val_same_epochs_diff"].mean(),
                     "train_loss_max_abs_diff": group["train_loss_max_abs_diff"].max(),
                     "epochs_run": group["epochs_run"].mean(),
                     "reference_epochs_run": group["reference_epochs_run"].mean()})
    return pd.DataFrame(rows)


def twin_summary(diffs: pd.DataFrame) -> list[str]:
    """One line per setting of `twin_differences`: both differences with their intervals and whether each
    excludes 0, the epochs run, and the epoch-by-epoch comparison."""
    lines = []
    for _, d in diffs.iterrows():
        verdict = "excludes 0: systematic" if d["dev_diff_low"] > 0 or d["dev_diff_high"] < 0 else "includes 0"
        val_verdict = "excludes 0" if d["val_diff_low"] > 0 or d["val_diff_high"] < 0 else "includes 0"
        lines.append(f"{d['setting']}: {d['machine']} - {d['reference_machine']} = "
                     f"{d['dev_diff']:+.2f} dev points over {d['n_seeds']} seeds (95% {d['dev_diff_low']:+.2f} .. "
                     f"{d['dev_diff_high']:+.2f}, {verdict}); validation {d['val_diff']:+.2f} (95% "
                     f"{d['val_diff_low']:+.2f} .. {d['val_diff_high']:+.2f}, {val_verdict}); epochs run "
                     f"{d['epochs_run']:.1f} vs {d['reference_epochs_run']:.1f}; at the epochs both ran: validation "
                     f"{d['val_same_epochs_diff']:+.2f} on average, training loss within "
                     f"{d['train_loss_max_abs_diff']:.3f}")
    return lines


def glue_gap(df: pd.DataFrame, baseline: str = "full", n_boot: int = 10000, seed: int = 0,
             level: float = 0.95) -> pd.DataFrame:
    """How far each adapter method is from `baseline` on the Table 1 tasks both have, with a seed bootstrap.

    One row per adapter method (`method` and `baseline`: keys of adapterlib.vocab.TABLE1; a label given as
    `baseline` is read as its key): per-task gaps (method minus baseline, dev mean over seeds), their average
    ("gap_mean"), the average gap of the paper's way of reporting (best of seeds chosen on validation,
    "gap_best_of_seeds"), and a `level` interval for the average gap: every bootstrap sample redraws, for
    each task and each of the two methods, its seeds with replacement, and averages the per-task gaps.
    The same draws give each task's own interval (gap_<task>_low_95% / _high_95%, the last columns).
    When a cell has one seed its seed noise is not measured, so there is no interval (NaN; n_seeds_min = 1):
    resampling the other cells alone would draw it too narrow.
    """
    long, baseline = glue_selection(df), key_of(baseline)
    if long.empty or baseline not in set(long["method"]):
        return pd.DataFrame()
    ok = df[df["status"] == "ok"]
    scores = {}  # (method, task) -> dev scores of the chosen setting's seeds
    for _, row in long.iterrows():
        chosen_key = ok.loc[ok["run_id"] == row["run_id"], "config_key"].iloc[0]
        scores[(row["method"], row["task"])] = ok.loc[ok["config_key"] == chosen_key, "dev_score"].to_numpy()
    rows = []
    for method in [k for k in TABLE1 if k != baseline and k in set(long["method"])]:
        tasks = [t for t in _task_order(long["task"]) if (method, t) in scores and (baseline, t) in scores]
        if not tasks:
            continue
        rng = np.random.default_rng(seed)  # per method: two rows that chose the same runs get the same interval
        gaps = {t: scores[(method, t)].mean() - scores[(baseline, t)].mean() for t in tasks}
        best = long.set_index(["method", "task"])["dev_best_of_seeds"]
        boot, per_task = np.zeros(n_boot), {}
        for t in tasks:
            a, b = scores[(method, t)], scores[(baseline, t)]
            draws = rng.choice(a, (n_boot, len(a))).mean(axis=1) - rng.choice(b, (n_boot, len(b))).mean(axis=1)
            boot += draws
            # the task's own interval, from the same draws; none where a cell has one seed
            per_task[t] = (np.quantile(draws, [(1 - level) / 2, (1 + level) / 2]) if min(len(a), len(b)) > 1
                           else (float("nan"), float("nan")))
        boot /= len(tasks)
        lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
        if min(min(len(scores[(method, t)]), len(scores[(baseline, t)])) for t in tasks) < 2:
            lo = hi = float("nan")
        rows.append({"method": method, "baseline": baseline, "n_tasks": len(tasks), "tasks": " ".join(tasks),
                     **{f"gap_{t}": g for t, g in gaps.items()}, "gap_mean": float(np.mean(list(gaps.values()))),
                     f"gap_low_{level:.0%}": float(lo), f"gap_high_{level:.0%}": float(hi),
                     "gap_best_of_seeds": float(np.mean([best[(method, t)] - best[(baseline, t)] for t in tasks])),
                     "n_seeds_min": int(min(min(len(scores[(method, t)]), len(scores[(baseline, t)])) for t in tasks)),
                     "n_boot": n_boot, "bootstrap_seed": seed,
                     **{f"gap_{t}_{side}_{level:.0%}": float(per_task[t][i]) for t in tasks
                        for i, side in enumerate(("low", "high"))}})
    return pd.DataFrame(rows)
