"""Notebook 03 (adapter size vs trained parameters) as data. Pure functions: run records and frames in,
DataFrames out; the notebook shows them as tables, and its Markdown says how to read them.

    run_label(rec)                   a point's label in a size plot: "m=64", "k=1", ""
    why_not_learned(rec)             the known reason (a key phrase) a live run stayed at its floor
    live_table(records)              one row per live run: method, trainable, dev score, floor, learned, why not
    live_vs_full(live)               the live runs against full fine-tuning: points, share of its parameters
    size_study_table(curve, floors)  the stored study per task: full, the size chosen on validation, top-1, LN
    stuck_points(curve, floors)      the study's points not above their floor
"""
from __future__ import annotations

import math

from .. import vocab
from ..record import as_record
from .results import MARGIN, verdict

SMOKE_STEPS = "too few steps"        # a smoke-scale run: checks that the code runs, not that it learns
ONE_LR = "one learning rate"          # the method's one learning rate did not move it off the majority class


def run_label(rec: dict) -> str:
    """The point label of a run in a size plot: "m=64", "k=1", or "" (LayerNorm, head, full)."""
    cfg = rec["config"]
    return {"adapter": f"m={cfg['adapter_size']}", "top_k": f"k={cfg.get('top_k')}"}.get(rec["policy"], "")


def why_not_learned(rec: dict) -> str:
    """The known reason a run stayed at its majority-class floor, from its own settings: "3 steps only (too few
    steps)" for a smoke-scale run, "94 steps at one learning rate (0.001)" otherwise."""
    rec = as_record(rec)
    cfg, steps = rec.config, rec.timing.steps or rec.history[-1].get("step")
    if cfg.get("max_steps") and cfg["max_steps"] < 50:
        return f"{steps} steps only ({SMOKE_STEPS})"
    return f"{steps} steps at {ONE_LR} ({cfg['lr']:g})"


def live_table(records):
    """One row per run record of a score-vs-parameters comparison (notebook 03): method, point label, lr,
    trained parameters, dev score, the majority-class floor of the same dev examples, learned (more than
    MARGIN points above it), why_not (when it did not), final train loss, wall time and whether the record
    was reused from an earlier notebook."""
    import pandas as pd

    rows = []
    for rec in records:
        check = verdict(rec)
        rows.append(dict(method=rec["policy"], label=run_label(rec), lr=rec["config"]["lr"],
                         trainable=int(rec["params"]["trainable"]), dev_score=round(check.score, 2),
                         floor=round(check.floor, 2), learned=check.learned,
                         why_not="" if check.learned else why_not_learned(rec),
                         train_loss=round(float(rec["history"][-1]["train_loss"]), 4),
                         wall_s=round(float(rec["timing"]["wall_s"]), 1), reused=bool(rec.get("reused", False))))
    return pd.DataFrame(rows)


def live_vs_full(live):
    """The live runs (a `live_table`) against full fine-tuning: points above the floor, points from full
    fine-tuning, the share of its parameters, and, for top-k, how many cheaper adapter sizes score higher."""
    table = live[["method", "label", "trainable", "dev_score", "floor", "learned"]].copy()
    table["above floor"] = table["dev_score"] - table["floor"]
    full = live[live["method"] == "full"]
    f = full.iloc[0] if len(full) else None
    table["vs full"] = table["dev_score"] - f["dev_score"] if f is not None else math.nan
    table["% of full's parameters"] = 100 * table["trainable"] / f["trainable"] if f is not None else math.nan
    ad = live[(live["method"] == "adapter") & live["learned"]]
    table["cheaper adapters higher"] = [
        f"{int(((ad['trainable'] < r.trainable) & (ad['dev_score'] > r.dev_score)).sum())} of "
        f"{int((ad['trainable'] < r.trainable).sum())}" if r.method == "top_k" else ""
        for r in table.itertuples()]
    return table


def stuck_points(curve, floors: dict):
    """The points of a size curve whose dev mean is not more than MARGIN above their task's floor."""
    margin = curve["dev_mean"] - curve["task"].map(floors)
    return curve[margin <= MARGIN]


def _point(r) -> str:
    return (f"m = {r['adapter_size']:g}" if r["policy"] == "adapter" else f"k = {r['top_k']:g}"
            if r["policy"] == "top_k" else vocab.label(r["policy"]))


def _task_row(rows, floor: float) -> dict:
    """One task of a size curve: full fine-tuning, the adapter size validation chose, top-1, LayerNorm-only."""
    by = {p: rows[rows["policy"] == p] for p in ("full", "adapter", "top_k", "layernorm")}
    out = {"metric": rows["metric"].iloc[0], "seeds": int(rows["n_seeds"].min()),
           "lrs per point (max)": int(rows["n_candidates"].max()), "majority class": floor}
    full = by["full"].iloc[0] if len(by["full"]) else None
    if full is not None:
        out |= {"full": full["dev_mean"], "full trained": full["trainable"]}
    ad = by["adapter"].sort_values("adapter_size")
    if len(ad):
        best = ad.loc[ad["val_mean"].idxmax()]
        out |= {"chosen m": best["adapter_size"], "chosen m score": best["dev_mean"],
                "chosen m trained": best["trainable"]}
        if full is not None:
            near = ad[ad["dev_mean"] >= full["dev_mean"] - 1]
            out |= {"chosen m vs full": best["dev_mean"] - full["dev_mean"],
                    "chosen m % of full": 100 * best["trainable"] / full["trainable"],
                    "smallest m within 1 of full": near["adapter_size"].iloc[0] if len(near) else math.nan}
    tk = by["top_k"].sort_values("top_k")
    if len(tk) and len(ad):
        top1 = tk.iloc[0]
        smaller = ad[ad["trainable"] < top1["trainable"]]
        out |= {"top-1 score": top1["dev_mean"], "top-1 trained": top1["trainable"],
                "smaller adapters above top-1": f"{int((smaller['dev_mean'] > top1['dev_mean']).sum())} of "
                                                f"{len(smaller)}"}
    if len(by["layernorm"]) and full is not None:
        ln = by["layernorm"].iloc[0]
        out |= {"LayerNorm only": ln["dev_mean"], "LayerNorm only vs full": ln["dev_mean"] - full["dev_mean"]}
    low = rows.loc[rows["dev_mean"].idxmin()]
    stuck = rows[rows["dev_mean"] - floor <= MARGIN]
    out |= {"lowest point": _point(low), "lowest above floor": low["dev_mean"] - floor,
            "not above floor": ", ".join(_point(r) for _, r in stuck.iterrows())}
    return out


def size_study_table(curve, floors: dict):
    """The stored size study (`aggregate.size_curve`) per task, `floors` giving each task's dev majority class."""
    import pandas as pd

    rows = {task: _task_row(rows, float(floors.get(task, math.nan)))
            for task, rows in curve.groupby("task", sort=False)}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("task")


def size_summary_table(arithmetic_ok: bool, large64, full_large, axis):
    """Notebook 03's headline numbers, one per row (`large64`, `full_large`: ParamReports of BERT-large with
    adapters of size 64 and fully fine-tuned; `axis`: the BERT-base parameter axis, method/setting/trainable)."""
    import pandas as pd

    ad = axis[axis["method"] == "adapter"].assign(m=lambda d: d["setting"].str[2:].astype(int))
    top1 = int(axis.query("setting == 'k=1'")["trainable"].iloc[0])
    ln = int(axis.query("method == 'layernorm'")["trainable"].iloc[0])
    rows = {"paper's arithmetic matched exactly": arithmetic_ok,
            "BERT-large m=64: adapter parameters": large64.adapter,
            "BERT-large m=64: % of the non-embedding model per task": round(large64.percent_of_base_no_embedding, 2),
            "BERT-large m=64: 9 tasks (x base)": round(large64.total_multiple(9), 2),
            "BERT-large full fine-tuning: 9 tasks (x base)": round(full_large.total_multiple(9), 2),
            "BERT-base: smallest adapter (m, trained)": (int(ad["m"].min()), int(ad["trainable"].min())),
            "BERT-base: largest adapter (m, trained)": (int(ad["m"].max()), int(ad["trainable"].max())),
            "BERT-base: largest m cheaper than the top layer": int(ad[ad["trainable"] < top1]["m"].max()),
            "BERT-base: top layer (k=1) trained": top1, "BERT-base: LayerNorm only trained": ln}
    return pd.DataFrame({"value": pd.Series(rows, dtype=object)})
