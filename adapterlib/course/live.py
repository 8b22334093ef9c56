"""Learning curves drawn while runs train, from their history (the student watches a model learn).

    curves = LiveCurves("accuracy")                  a figure: losses | validation score, against the step
    rec = train_once(cfg, on_eval=curves.on_eval("adapters", "adapter"))   redrawn after each validation
    curves.add_record("adapters", rec)               the record's own history (a reused run: its stored one)
    selection_table(curves.records)                  what model selection / early stopping chose, and why
    stored_runs("glue_v2", "sst2")                   a stored study's runs, one per method, to draw the same way

Every point comes from a run's `history` (one dict per validation: step, train_loss, validation_<metric>,
validation_loss), the same list the run record stores, so a run read from its record draws the same curve.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from ..errors import UsageError
from ..paths import RESULTS_DIR
from ..plots import METHOD_STYLE, metric_label


class LiveCurves:
    """Train/validation loss (left) and validation score (right) against the optimizer step, one colour per
    run; redrawn in place (an IPython display handle) each time `update` gets a longer history."""

    def __init__(self, metric: str, title: str | None = None, show: bool = True):
        self.metric, self.title = metric, title
        self.runs: dict[str, dict] = {}      # label -> {"policy", "history", "record"}
        self.score_lines: dict = {}           # label -> the validation-score line drawn for it
        self.fig, self.axes = plt.subplots(1, 2, figsize=(10, 3.6), sharex=True)
        self.handle = None
        if show:
            from IPython.display import display
            self.handle = display(self.fig, display_id=True)
        plt.close(self.fig)  # shown through the handle only, not again at the end of the cell

    @property
    def records(self) -> dict:
        return {label: run["record"] for label, run in self.runs.items() if run["record"] is not None}

    def on_eval(self, label: str, policy: str):
        """A callback for `train(on_eval=...)`: redraws with the history so far."""
        return lambda history: self.update(label, policy, history)

    def update(self, label: str, policy: str, history: list, record: dict | None = None) -> None:
        if not isinstance(history, list):
            raise UsageError(f"a run's history is a list of validation points, got {type(history).__name__}")
        self.runs[label] = {"policy": policy, "history": list(history), "record": record}
        self.redraw()
        if self.handle is not None:
            self.handle.update(self.fig)

    def add_record(self, label: str, record: dict) -> None:
        """Draw a finished run from its record: its history, the point kept (ringed) and where it stopped."""
        self.update(label, record["policy"], record["history"], record)

    def redraw(self) -> None:
        loss_ax, score_ax = self.axes
        loss_ax.clear()
        score_ax.clear()
        key = f"validation_{self.metric}"
        for label, run in self.runs.items():
            h = pd.DataFrame(run["history"])
            if h.empty:
                continue
            color = METHOD_STYLE.get(run["policy"], {}).get("color")
            loss_ax.plot(h["step"], h["train_loss"], "-", color=color, label=f"{label}: train (running mean)")
            if "validation_loss" in h:
                loss_ax.plot(h["step"], h["validation_loss"], "--", color=color, label=f"{label}: validation")
            (self.score_lines[label],) = score_ax.plot(h["step"], h[key], "o-", ms=4, color=color, label=label)
            record = run["record"]
            if record is not None:
                kept = record["selected"]
                score_ax.plot([kept["step"]], [kept[key]], "o", ms=12, mfc="none", mec=color, mew=2)
                if record["timing"].get("stopped_early"):
                    score_ax.axvline(h["step"].iloc[-1], color=color, ls=":", lw=1)
        loss_ax.set(xlabel="optimizer step", ylabel="loss", title="loss (solid: train, dashed: validation)")
        score_ax.set(xlabel="optimizer step", ylabel=f"validation {metric_label(self.metric)}",
                     title="validation score (ring: the point kept)")
        if self.runs:
            score_ax.legend(loc="lower right")
        if self.title:
            self.fig.suptitle(self.title)
        self.fig.tight_layout()


def selection_table(records: dict) -> pd.DataFrame:
    """Per run (label -> record): how many validations it made, which step it kept and why, whether it stopped
    early. The dev score is the kept step's: selection used the validation slice of train only."""
    rows = []
    for label, rec in records.items():
        metric, history, kept, timing = rec["metric"], rec["history"], rec["selected"], rec["timing"]
        key = f"validation_{metric}"
        patience = rec["config"].get("patience")
        planned = timing.get("planned_steps", timing["steps"])
        if timing.get("stopped_early"):
            why = f"no better validation score in {patience} validations after it: stopped"
        else:
            why = f"best validation score of {len(history)}; ran all {planned} steps"
        rows.append({"run": label, "validations": len(history), "steps run": timing["steps"],
                     "steps planned": planned, "kept step": kept["step"], f"kept {key}": kept[key],
                     f"last {key}": history[-1][key], "stopped early": bool(timing.get("stopped_early")),
                     f"dev {metric}": rec["dev_score"], "why this step": why})
    return pd.DataFrame(rows).set_index("run")


def stored_runs(study: str, task: str, seed: int = 0, methods=(("adapter", 64), ("full", None)), folder=None) -> dict:
    """label -> run record of a stored study: for each (policy, adapter size), among the runs of `task` and
    `seed` that finished, the one with the best validation score (as the study chose). {} if none is stored."""
    from ..records import load_records

    runs_dir = (folder or RESULTS_DIR / study) / "runs"
    records = load_records(runs_dir) if runs_dir.is_dir() else []
    chosen = {}
    for policy, size in methods:
        mine = [r for r in records if r.get("status") == "ok" and r["task"] == task and r["seed"] == seed
                and r["policy"] == policy and (size is None or r["config"].get("adapter_size") == size)]
        if mine:
            best = max(mine, key=lambda r: r["selected"][f"validation_{r['metric']}"])
            label = f"adapters (m={size})" if policy == "adapter" else "full fine-tuning"
            chosen[f"{label}, lr {best['config']['lr']:g}"] = best
    return chosen
