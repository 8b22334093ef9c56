"""Notebook 07, "After Houlsby: which method, at what cost?" (issue 29): the tables behind its plots and widget.

Everything here reads run records (the v3 studies under data/results/, or runs the notebook trained itself) and
the committed cost benchmark; nothing is typed by hand, and a study that has not run yet is reported as such.

    status = study_status("methods_v3")             # how far the study is: records, planned runs, tasks complete
    frame = load_records_frame(["methods_v3", "curve_v3"])   # every valid record of the studies that exist
    points = method_points(frame)                   # per task and method setting: best lr on validation, dev score
    best_under_budget(points, 0.8)                  # per task: the best method (on validation) within 0.8% of the base
    cost_table()                                    # step time, peak memory, inference overhead (methods_cost.json)
    dial = implementation_dial(load_records_frame(["impl_v3"]))   # each variant vs the paper, bootstrap intervals
    BudgetExplorer(points).widget                   # a budget slider -> the best method per task

Selection never reads the dev set: each setting's lr is chosen on validation (aggregate.select_best), and so is the
method within a budget; the dev score is only reported.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..paths import RESULTS_DIR, SWEEPS_DIR

METHOD_ORDER = ("houlsby", "pfeiffer", "lora", "prefix", "bitfit", "ia3", "full", "top_k", "layernorm", "head")
SETTING = ["task", "method", "adapter_size", "lora_r", "prefix_length"]   # one point of the Pareto plot
DIAL = ["task", "nonlinearity", "init_std", "train_layernorm"]          # one variant of the implementation dial
PAPER_STD = 1e-2
PAPER_VARIANT = ("gelu", PAPER_STD, True)  # GELU, std 1e-2 (the "houlsby" scheme), LayerNorms trained
COST_FILE = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "methods_cost.json"


def setting_label(row) -> str:
    """'houlsby m=16', 'lora r=16', 'prefix 30', 'bitfit' (a record row or a points row)."""
    method = row["method"]
    if method in ("houlsby", "pfeiffer"):
        return f"{method} m={int(row['adapter_size'])}"
    if method == "lora":
        return f"lora r={int(row['lora_r'])}"
    if method == "prefix":
        return f"prefix {int(row['prefix_length'])}"
    return str(method)


def study_status(name: str, results_dir: Path | None = None) -> dict:
    """How far study `name` is: its records (ok / failed), the runs its sweep file plans so far, the tasks complete.
    `exists` is False while the study has no record (it has not run yet)."""
    from ..records import load_records
    from ..sweeps.driver import study_progress
    from ..sweeps.spec import load_spec

    folder = (results_dir or RESULTS_DIR) / name
    records = load_records(folder / "runs") if (folder / "runs").is_dir() else []
    out = {"name": name, "exists": bool(records), "n_records": len(records),
           "n_ok": sum(r.get("status") == "ok" for r in records), "planned": None, "tasks": [], "tasks_complete": []}
    sweep_file = SWEEPS_DIR / f"{name}.yaml"
    if sweep_file.is_file():
        progress = study_progress(load_spec(sweep_file), folder)
        out.update(planned=progress["planned"], tasks=progress["tasks"], tasks_complete=progress["tasks_complete"])
    return out


def status_line(status: dict) -> str:
    """One sentence on a study's state, from `study_status`."""
    if not status["exists"]:
        planned = f" ({status['planned']} runs planned)" if status["planned"] else ""
        return f"`{status['name']}` has not run yet: no run records{planned}."
    complete = ", ".join(status["tasks_complete"]) or "none"
    return (f"`{status['name']}`: {status['n_ok']} runs finished ok ({status['n_records']} records) of "
            f"{status['planned']} planned so far; tasks complete: {complete}.")


def load_records_frame(names, results_dir: Path | None = None) -> pd.DataFrame:
    """The records of every study in `names` that has any (others are skipped), as one records frame; a run copied
    from one study into another (`reuse`) counts once."""
    from ..records import load_records
    from ..sweeps.aggregate import records_frame

    records, seen = [], set()
    for name in names:
        folder = (results_dir or RESULTS_DIR) / name / "runs"
        for rec in load_records(folder) if folder.is_dir() else []:
            if rec["run_id"] not in seen:
                seen.add(rec["run_id"])
                records.append(rec)
    return records_frame(records)


def method_points(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per task and method setting (method and size): its lr chosen on validation, the dev score over the
    seeds of that lr (mean, s.e.m., n_seeds), trained parameters and % of the base, and `pareto` (no other setting
    of the task has more dev score with no more parameters). Empty when `frame` has no ok run."""
    from ..sweeps.aggregate import select_best

    if frame.empty or not (frame["status"] == "ok").any():
        return pd.DataFrame(columns=[*SETTING, "label", "lr", "n_seeds", "val_mean", "dev_mean", "dev_sem",
                                     "trainable", "percent_of_base", "metric", "pareto"])
    runs = frame.copy()
    for col in ("lora_r", "prefix_length", "adapter_size"):  # a size only where the method has one
        runs[col] = runs[col].astype(object)
    runs.loc[~runs["method"].isin(["houlsby", "pfeiffer"]), "adapter_size"] = None
    best = select_best(runs, by=SETTING)
    best.insert(2, "label", [setting_label(r) for _, r in best.iterrows()])
    best["_m"] = best["method"].map({m: i for i, m in enumerate(METHOD_ORDER)})
    best = best.sort_values(["task", "_m", "trainable"]).drop(columns="_m").reset_index(drop=True)
    best["pareto"] = pareto_flags(best)
    return best


def pareto_flags(points: pd.DataFrame, score: str = "dev_mean") -> list[bool]:
    """Per row: whether no other row of its task reaches a higher `score` with at most its trained parameters."""
    flags = []
    for _, row in points.iterrows():
        same = points[(points["task"] == row["task"]) & (points["trainable"] <= row["trainable"])]
        flags.append(bool((same[score] <= row[score]).all()))
    return flags


def best_under_budget(points: pd.DataFrame, budget_percent: float) -> pd.DataFrame:
    """Per task, the method setting with the best validation score among those training at most `budget_percent`
    of the base, and its dev score (dev never chooses); "runner-up" is the next method's best (another method)."""
    rows = []
    for task, part in points.groupby("task", sort=False):
        within = part[part["percent_of_base"] <= budget_percent].sort_values("val_mean", ascending=False)
        first = within.iloc[0] if len(within) else None
        others = within[within["method"] != first["method"]] if first is not None else within
        second = others.iloc[0] if len(others) else None
        rows.append({"task": task, "best (validation)": None if first is None else first["label"],
                     "dev": np.nan if first is None else first["dev_mean"],
                     "n_seeds": 0 if first is None else int(first["n_seeds"]),
                     "% of base": np.nan if first is None else first["percent_of_base"],
                     "runner-up": None if second is None else second["label"],
                     "runner-up dev": np.nan if second is None else second["dev_mean"],
                     "settings within budget": len(within)})
    return pd.DataFrame(rows)


def cost_table(path: Path | str = COST_FILE) -> pd.DataFrame:
    """Per method, from the committed interleaved benchmark (benchmarks/methods_cost.py): train step time and peak
    memory as ratios to full fine-tuning, inference time as a ratio to the frozen base, unmerged and (LoRA, (IA)3)
    merged into the weights. `attrs` carry the benchmark's machine and settings."""
    data = json.loads(Path(path).read_text())
    rows = []
    for method, step in data["step"].items():
        infer = data.get("infer", {})
        rows.append({"method": method, "trainable": step.get("trainable"),
                     "percent_of_base": step.get("percent_of_base"),
                     "step_ratio": step["ratio"], "memory_ratio": data.get("memory", {}).get(method, {}).get("ratio"),
                     "infer_ratio": infer.get(method, {}).get("ratio"),
                     "infer_merged_ratio": infer.get(f"{method}_merged", {}).get("ratio")})
    table = pd.DataFrame(rows)
    table.attrs.update(machine=data.get("machine", {}), settings=data.get("settings", {}))
    return table


def _bootstrap_mean(values: np.ndarray, rng, n_boot: int) -> np.ndarray:
    return rng.choice(values, (n_boot, len(values))).mean(axis=1)


def implementation_dial(frame: pd.DataFrame, n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """The implementation dial: per task and variant (nonlinearity, init std, LayerNorms), the lr chosen on
    validation, the dev mean over its seeds with a bootstrap interval, and the difference from the paper's variant
    (GELU, std 1e-2, LayerNorms trained) with a bootstrap interval: each draw resamples each side's seeds with
    replacement (as aggregate.glue_gap does); NaN where a side has one seed."""
    from ..sweeps.aggregate import select_best

    cols = [*DIAL, "variant", "lr", "n_seeds", "dev_mean", "dev_low", "dev_high", "diff", "diff_low", "diff_high"]
    ok = frame[(frame["status"] == "ok") & (frame["method"] == "houlsby")] if not frame.empty else frame
    if ok.empty:
        return pd.DataFrame(columns=cols)
    ok = ok.astype({"init_std": float, "train_layernorm": object})   # the std used (the scheme's where not set)
    ok["train_layernorm"] = [True if v is None or pd.isna(v) else bool(v) for v in ok["train_layernorm"]]  # houlsby's
    best = select_best(ok, by=DIAL)
    rng, q = np.random.default_rng(seed), [(1 - level) / 2, (1 + level) / 2]
    seeds_of = {}
    for _, row in best.iterrows():
        key = tuple(row[c] for c in DIAL)
        chosen = ok[(ok["config_key"] == ok.loc[ok["run_id"] == row["run_id"], "config_key"].iloc[0])]
        seeds_of[key] = chosen["dev_score"].to_numpy(float)
    rows = []
    for _, row in best.iterrows():
        key = tuple(row[c] for c in DIAL)
        dev = seeds_of[key]
        paper = seeds_of.get((row["task"], *PAPER_VARIANT))
        boot = _bootstrap_mean(dev, rng, n_boot) if len(dev) > 1 else None
        low, high = np.quantile(boot, q) if boot is not None else (np.nan, np.nan)
        diff = d_low = d_high = np.nan
        if paper is not None:
            diff = dev.mean() - paper.mean()
            if len(dev) > 1 and len(paper) > 1:
                d_low, d_high = np.quantile(boot - _bootstrap_mean(paper, rng, n_boot), q)
        rows.append({**dict(zip(DIAL, key, strict=True)), "variant": variant_name(*key[1:]), "lr": row["lr"],
                     "n_seeds": len(dev), "dev_mean": dev.mean(), "dev_low": low, "dev_high": high,
                     "diff": diff, "diff_low": d_low, "diff_high": d_high})
    return pd.DataFrame(rows, columns=cols)


def variant_name(nonlinearity, init_std, train_layernorm) -> str:
    """'paper', 'AdapterHub Houlsby', 'adapter-bert', or the changes from the paper ('swish', 'std 0.02', ...)."""
    changes = ([nonlinearity] if nonlinearity != "gelu" else []) + \
        ([f"std {init_std:g}"] if init_std is not None and init_std != PAPER_STD else []) + \
        (["LayerNorms frozen"] if train_layernorm is False else [])
    named = {(): "paper", ("std 0.001",): "adapter-bert",
             ("swish", "std 0.02", "LayerNorms frozen"): "AdapterHub Houlsby"}
    return named.get(tuple(changes), " + ".join(changes))


def dial_answer(dial: pd.DataFrame) -> str:
    """"Do the LayerNorms and the init matter?", answered from the dial's intervals (Markdown bullets)."""
    if dial.empty:
        return "- The implementation dial (`impl_v3`) has no runs yet: no answer, and no number stands in for one."
    lines = []
    for variant in ("LayerNorms frozen", "adapter-bert", "std 0.02", "swish", "AdapterHub Houlsby"):
        part = dial[dial["variant"] == variant]
        if part.empty:
            continue
        verdicts = []
        for _, r in part.iterrows():
            if np.isnan(r["diff_low"]):
                verdicts.append(f"{r['task']} {r['diff']:+.1f} (no interval: one seed on a side)")
            else:
                word = ("worse" if r["diff_high"] < 0 else "better" if r["diff_low"] > 0 else "no clear difference")
                verdicts.append(f"{r['task']} {r['diff']:+.1f} [{r['diff_low']:+.1f}, {r['diff_high']:+.1f}]: {word}")
        lines.append(f"- **{variant}** vs the paper (dev, 95% bootstrap interval over seeds): " + "; ".join(verdicts))
    return "\n".join(lines)


class BudgetExplorer:
    """A parameter-budget slider (% of the base per task) and a task dropdown -> the best method per task within the
    budget (chosen on validation, dev reported: `best_under_budget`) and the task's Pareto plot with what the budget
    excludes shaded. `self.table` is the current table, `self.view` its HTML, `self.image` the figure as PNG."""

    def __init__(self, points: pd.DataFrame, budget_percent: float = 1.0, task: str | None = None):
        import ipywidgets as w

        self.points = points
        budgets = sorted({float(p) for p in points["percent_of_base"].dropna()}) or [budget_percent]  # each setting's
        tasks = list(dict.fromkeys(points["task"])) or ["-"]
        self.budget = w.SelectionSlider(options=[(f"{b:.3g}%", b) for b in budgets], description="budget (% of base)",
                                        value=min(budgets, key=lambda b: abs(b - budget_percent)),
                                        style={"description_width": "initial"}, continuous_update=False)
        self.task = w.Dropdown(options=tasks, value=task or tasks[0], description="plot")
        self.view, self.image = w.HTML(), w.Image(format="png")
        for control in (self.budget, self.task):
            control.observe(lambda _change: self.update(), names="value")
        from .widgets import _static_html, explorer_box  # a static view where the widget cannot be drawn

        self.widget = explorer_box([w.HBox([self.budget, self.task]), self.view, self.image],
                                   static=lambda: _static_html(self.view, self.image))
        self.update()

    def update(self) -> pd.DataFrame:
        import matplotlib.pyplot as plt

        from ..plots import plot_pareto
        from .widgets import _png

        self.table = best_under_budget(self.points, self.budget.value)
        caption = (f"Per task, the method setting with the best <b>validation</b> score among those training at most "
                   f"<b>{self.budget.value:.2f}%</b> of the base per task, and its dev score.")
        self.view.value = f"<p>{caption}</p>" + self.table.to_html(index=False, na_rep="-",
                                                                   float_format=lambda v: f"{v:.2f}")
        fig, ax = plt.subplots(figsize=(6.4, 3.6))
        plot_pareto(self.points, ax=ax, task=self.task.value, budget_percent=self.budget.value)
        self.image.value = _png(fig)
        return self.table
