"""Model selection on validation: per group of runs, the setting with the best mean validation score
(`select_best`), and Table 1's cells (`glue_selection`: which runs compete for each method and task,
adapterlib.vocab's TABLE1). GLUE dev scores are reported, never compared."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..data import task_order as _task_order
from ..vocab import METHODS, TABLE1


def _sem(values: pd.Series) -> float:
    """Standard error of the mean over seeds (NaN for a single seed)."""
    values = values.dropna()
    return float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else float("nan")


def _best_of_seeds(rows: pd.DataFrame) -> float:
    """The dev score of the seed with the best validation score (ties: the lower seed)."""
    judged = rows.dropna(subset=["val_score"]).sort_values(["val_score", "seed"], ascending=[False, True])
    return float(judged["dev_score"].iloc[0]) if len(judged) else float("nan")


def _choose(group: pd.DataFrame) -> pd.DataFrame:
    """The rows (one per seed) of the best setting in `group`, judged on validation only.

    Settings are compared by mean val_score over the seeds they all share, so seeds added to
    the winner after selection (select_then_seeds) cannot change the choice. Ties go to the
    smaller lr, then fewer epochs, then the config hash: the choice is deterministic.
    """
    keys, seeds = group["config_key"].to_numpy(), group["seed"].to_numpy()
    seeds_of: dict = {}
    for key, seed in zip(keys, seeds, strict=True):
        seeds_of.setdefault(key, set()).add(seed)
    shared = set.intersection(*seeds_of.values()) if seeds_of else set()
    judged = np.isin(seeds, list(shared)) if shared else np.ones(len(keys), dtype=bool)
    val, lr, epochs = (group[c].to_numpy(dtype=float) for c in ("val_score", "lr", "epochs"))

    def rank(key):  # best mean validation score first; ties: smaller lr, fewer epochs, then the key
        mine = keys == key
        scores = val[mine & judged]
        scores = scores[~np.isnan(scores)]
        first = np.flatnonzero(mine)[0]
        return (-scores.mean() if len(scores) else np.inf, *(np.inf if np.isnan(x) else x for x in
                                                             (lr[first], epochs[first])), str(key))

    best = min(seeds_of, key=rank)
    return group[keys == best].sort_values("seed")


SETTING_BUT_LR = ("policy", "adapter_size", "top_k", "init_std", "epochs", "max_train_examples", "head_input",
                  "train_pooler", "mixed_precision", "patience", "nonlinearity", "train_layernorm", "lora_r",
                  "prefix_length")


def _settings(df: pd.DataFrame) -> pd.DataFrame:
    """Each row's setting but for lr and seed, as strings (so NaN, None and 1e-3 compare as written)."""
    return df[[c for c in SETTING_BUT_LR if c in df.columns]].map(str)


def lr_edge(group: pd.DataFrame, top, settings: pd.DataFrame | None = None) -> str:
    """'highest' or 'lowest' when `top`'s lr is the largest or smallest tried at its setting in `group`
    (the same setting but for lr and seed), with at least three lrs tried (of two, one always is); ''
    otherwise. A choice on the edge of its grid says the best rate may lie beyond it. `settings`: _settings of
    a frame holding `group`'s rows, when the caller has it already."""
    settings = _settings(group) if settings is None else settings.loc[group.index]
    mine = _settings(top.to_frame().T).to_numpy(dtype=object)
    same = (settings.to_numpy(dtype=object) == mine).all(axis=1)
    lrs = sorted(set(group.loc[same, "lr"].dropna()))
    if len(lrs) < 3:
        return ""
    return "highest" if top["lr"] == lrs[-1] else "lowest" if top["lr"] == lrs[0] else ""


def select_best(df: pd.DataFrame, by=("task", "policy", "adapter_size"), within=None) -> pd.DataFrame:
    """For each group of `by`, the setting (lr, epochs, ...) with the best mean validation score.

    Only runs with status ok count. `within` (e.g. ("adapter_size",)) selects in two levels: the
    best setting per `within` value first, then the best of those winners, each judged on all
    the seeds the winners share (Table 1's "adapters (8-256)": best lr per size, then best size).
    Returns one row per group: the group keys, the chosen lr, lr_edge ('highest'/'lowest' when that lr is
    the edge of the lrs tried at its setting, see lr_edge) and epochs (the maximum, with early stopping),
    n_candidates (settings compared), selected_epoch_mean and epochs_run_mean (over the seeds: the epoch
    validation chose and the epochs trained), n_seeds, val_mean, dev_mean, dev_sem (s.e.m. over seeds, NaN for one
    seed), dev_min (the worst seed's dev score),
    dev_best_of_seeds (the dev score of the seed with the best validation score: how the paper reports,
    "best of 5 seeds chosen on validation"), trainable, percent_of_base, percent_of_base_no_embedding (the
    paper's convention: of the base without its embedding tables), frozen, base, metric, run_id (of the
    lowest seed).
    """
    by = list(by)
    ok = df[df["status"] == "ok"]
    settings = _settings(ok)
    rows = []
    for keys, group in ok.groupby(by, dropna=False, sort=True):
        if within:
            best = _choose(pd.concat([_choose(g) for _, g in group.groupby(list(within), dropna=False)]))
        else:
            best = _choose(group)
        top = best.iloc[0]
        rows.append({**dict(zip(by, keys if isinstance(keys, tuple) else (keys,), strict=False)),
                     **{c: top[c] for c in ("policy", "adapter_size", "top_k", "init_std") if c not in by},
                     "lr": top["lr"], "lr_edge": lr_edge(group, top, settings), "epochs": top["epochs"],
                     "n_candidates": group["config_key"].nunique(),
                     "selected_epoch_mean": best["selected_epoch"].mean(), "epochs_run_mean": best["epochs_run"].mean(),
                     "n_seeds": len(best), "val_mean": best["val_score"].mean(), "dev_mean": best["dev_score"].mean(),
                     "dev_sem": _sem(best["dev_score"]), "dev_min": best["dev_score"].min(),
                     "dev_best_of_seeds": _best_of_seeds(best),
                     "trainable": best["trainable"].mean(), "percent_of_base": best["percent_of_base"].mean(),
                     "percent_of_base_no_embedding": best["percent_of_base_no_embedding"].mean(),
                     "frozen": best["frozen"].mean(),
                     "base": best["base"].mean(), "metric": top["metric"], "run_id": top["run_id"]})
    return pd.DataFrame(rows)


# Table 1's rows (which runs compete for each task's cell) are adapterlib.vocab's TABLE1 entries; the budget row
# covers the sizes of 8-256 that train at most vocab.BUDGET_PERCENT of the base per task.


def glue_selection(df: pd.DataFrame) -> pd.DataFrame:
    """Long form of Table 1: one row per (method, task) with the setting chosen on validation; `method` is the
    row's key (a TABLE1 key of adapterlib.vocab: "full", "adapters_8_256", ...; vocab.label names it)."""
    parts = []
    for key in TABLE1:
        within = ("adapter_size",) if METHODS[key].size_chosen else None
        chosen = select_best(df[METHODS[key].select(df)], by=("task",), within=within)
        if len(chosen):
            parts.append(chosen.assign(method=key))
    if not parts:
        return pd.DataFrame(columns=["method", "task"])
    out = pd.concat(parts, ignore_index=True)
    out["task_order"] = out["task"].map({t: i for i, t in enumerate(_task_order(out["task"]))})
    out["method_order"] = out["method"].map(TABLE1.index)
    out = out.sort_values(["method_order", "task_order"]).drop(columns=["task_order", "method_order"])
    return out[["method", "task", *[c for c in out.columns if c not in ("method", "task")]]].reset_index(drop=True)
