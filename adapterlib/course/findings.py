"""Findings text for the notebooks, generated from the numbers (never typed), so it matches any preset,
task or seed a notebook is run with.

Every score the course shows is read against its floor: always predicting the majority class of the
same examples (`record["majority"]`, or `adapterlib.data.majority_floor`). A result "learned" when it
beats that floor by more than `MARGIN` points; when it does not, the text says so, and why where the
reason is known.

    verdict(rec)                 -> FloorCheck(name, score, floor, metric, learned) for one run record
    floor_table(records)         -> one row per run: score, floor, margin, learned
    floor_sentence(check)        -> "adapters (m=64): dev acc 88.1, 37.2 points above the majority class (50.9)."
"""
from __future__ import annotations

from dataclasses import dataclass

MARGIN = 1.0  # points above the majority-class score that count as "learned" (below: noise on a few hundred examples)


@dataclass(frozen=True)
class FloorCheck:
    """A score and the majority-class floor of the same examples."""

    name: str
    score: float
    floor: float
    metric: str
    split: str = "dev"

    @property
    def above(self) -> float:
        return self.score - self.floor

    @property
    def learned(self) -> bool:
        return self.above > MARGIN


def record_name(rec: dict) -> str:
    """A short label for a run record: "adapters (m=64, lr 0.001)", "full fine-tuning (lr 0.0001)", ..."""
    cfg = rec["config"]
    if rec["policy"] == "adapter":
        return f"adapters (m={cfg['adapter_size']}, lr {cfg['lr']:g})"
    names = {"full": "full fine-tuning", "top_k": f"top-{cfg.get('top_k')} layers", "layernorm": "LayerNorm only",
             "head": "head only"}
    return f"{names.get(rec['policy'], rec['policy'])} (lr {cfg['lr']:g})"


def record_floor(rec: dict, split: str | None = None, glue_dir=None) -> float:
    """The majority-class score of the examples `rec` was scored on (its record; else recomputed)."""
    from ..data import get_task

    spec = get_task(rec["task"])
    split = split or next(iter(spec.dev_files))
    if split in rec.get("majority", {}):
        return float(rec["majority"][split][spec.metric])
    from ..data import majority_floor  # records written before floors were recorded

    cfg = rec["config"]
    return float(majority_floor(spec, split, glue_dir or cfg.get("glue_dir"), cfg.get("max_eval_examples"))[spec.metric])


def verdict(rec: dict, name: str | None = None, split: str | None = None) -> FloorCheck:
    """The dev score of run record `rec` against its majority-class floor."""
    from ..data import get_task

    spec = get_task(rec["task"])
    split = split or next(iter(spec.dev_files))
    return FloorCheck(name or record_name(rec), float(rec["dev"][split][spec.metric]), record_floor(rec, split),
                      spec.metric, split)


def floor_sentence(check: FloorCheck, why_not: str | None = None) -> str:
    """One sentence: by how much the score beats its floor, or that it does not (with `why_not`, if known)."""
    head = f"{check.name}: {check.split} {check.metric} {check.score:.1f}"
    if check.learned:
        return f"{head}, {check.above:.1f} points above the majority class ({check.floor:.1f})."
    where = "at" if abs(check.above) <= MARGIN else "below"
    text = f"{head}, {where} the majority class ({check.floor:.1f}): this run has not learned the task"
    return text + (f"; {why_not}" if why_not else "") + "."


def floor_table(records, names=None):
    """One row per run record: score, floor, points above it, learned (a pandas DataFrame)."""
    import pandas as pd

    names = names or [None] * len(records)
    rows = []
    for rec, name in zip(records, names):
        c = verdict(rec, name)
        rows.append({"run": c.name, f"{c.split} {c.metric}": round(c.score, 2), "majority class": round(c.floor, 2),
                     "points above": round(c.above, 2), "learned": c.learned})
    return pd.DataFrame(rows)


# --- notebook 02 (initialisation) ---------------------------------------------------------------

ROBUST_MAX = 1e-2  # the paper's robust range of init stds ends here (section 3.6, Fig. 6 right)


def std_text(std: float) -> str:
    """0 -> "0", 1e-07 -> "1e-7", 0.1 -> "0.1", 1.0 -> "1", 3.16e-05 -> "3.2e-5"."""
    import math

    if std == 0:
        return "0"
    k = math.log10(std)
    if abs(k - round(k)) < 1e-9:
        return {0: "1", -1: "0.1"}.get(round(k), f"1e{round(k)}")
    mantissa, exponent = f"{std:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def _pct(x: float) -> str:
    """0.0111 -> "1.1%", 9.5e-05 -> "0.0095%", 2.0 -> "200%"."""
    return f"{100 * x:.0f}%" if x >= 0.1 else f"{100 * x:.2g}%"


def init_why_not(std: float, drift: dict | None = None) -> str:
    """Why a run at init std `std` may not learn; `drift` {std: [CLS] relative change at init} adds the number."""
    if std == 0:
        return ("at std 0 the adapters' projections get exactly zero gradients (GELU(0) = 0 and W_up = 0), so the "
                "adapters cannot learn; only the LayerNorms, the head and the adapters' output biases train")
    if std > ROBUST_MAX:
        moved = f" by {_pct(drift[std])} of its length" if drift and std in drift else ""
        return (f"at std {std_text(std)} the fresh adapters move the [CLS] representation{moved} before training "
                f"starts, destroying the pre-trained function the adapters are meant to keep")
    return "no known reason inside the paper's robust range; with one seed, an unlucky run is as likely as an effect"


def init_floor_table(records, stds, drift: dict | None = None):
    """notebook 02: one row per training run (init std `stds[i]`): score, majority class, learned, and why not."""
    table = floor_table(records, names=[f"std {std_text(s)}" for s in stds])
    table["why not"] = ["" if ok else init_why_not(s, drift) for ok, s in zip(table["learned"], stds)]
    return table


def init_findings(records, stds, drift: dict, study_curve=None, study_floors: dict | None = None) -> str:
    """notebook 02's summary, as Markdown bullets, from its numbers: drift at init, the trained scores against
    their floors and the robust range, and (when present) the stored reproduction study."""
    checks = {s: verdict(rec, f"std {std_text(s)}") for s, rec in zip(stds, records)}
    metric, floor = next(iter(checks.values())).metric, next(iter(checks.values())).floor
    lines = []
    named = [(s, who) for s, who in ((1e-3, "the official code's 1e-3"), (1e-2, "the paper's 1e-2")) if s in drift]
    big = max(drift)
    d_at = ", ".join(f"{_pct(drift[s])} at {who}" for s, who in named)
    per_decade = (f"; from 1e-3 to 1e-2 it grows {drift[1e-2] / drift[1e-3]:.0f}-fold (the square of the std gives "
                  f"100: the correction is a product of two projections of that std)"
                  if 1e-3 in drift and 1e-2 in drift and drift[1e-3] > 0 else "")
    lines.append(f"Fresh adapters move the final [CLS] vector by {d_at} and {_pct(drift[big])} at std "
                 f"{std_text(big)}{per_decade}; at std 0 by exactly {drift.get(0.0, 0.0):g}.")
    small = {s: c for s, c in checks.items() if 0 < s <= ROBUST_MAX}
    if small:
        lo, hi = min(c.score for c in small.values()), max(c.score for c in small.values())
        best = max(small, key=lambda s: small[s].score)
        beats = all(c.learned for c in small.values())
        if len(small) > 1:
            lines.append(f"Trained with stds {std_text(min(small))} … {std_text(max(small))} (the paper's robust range) "
                         f"the dev {metric} lies within {hi - lo:.1f} points ({lo:.1f} … {hi:.1f}); "
                         + ("every one beats the majority class" if beats else "not every one beats the majority class")
                         + f" ({floor:.1f}).")
        else:
            lines.append(f"Trained with std {std_text(best)} (in the paper's robust range) the dev {metric} is {hi:.1f}, "
                         + ("above" if beats else "not above") + f" the majority class ({floor:.1f}).")
        for s in sorted(x for x in checks if x > ROBUST_MAX):
            c = checks[s]
            where = (f"{small[best].score - c.score:.1f} points below the best small std ({std_text(best)})"
                     if c.score < small[best].score else f"no lower than the small stds")
            state = "still above the majority class" if c.learned else "**at or below the majority class: not learned**"
            lines.append(f"Std {std_text(s)}: {c.score:.1f}, {where}, {state}"
                         + ("." if c.learned else f" ({init_why_not(s, drift)})."))
        if 0.0 in checks:
            c = checks[0.0]
            rel = small[best].score - c.score
            lines.append(f"Std 0 (an exact identity): {c.score:.1f}, "
                         + (f"{rel:.1f} points below the best small std" if rel > 0 else "not below the small stds")
                         + (", above the majority class: it learns through the LayerNorms, the head and the "
                            "adapters' output biases, while the adapters' projections stay exactly at zero"
                            if c.learned else f", not above the majority class ({init_why_not(0.0)})") + ".")
    if study_curve is not None and len(study_curve):
        from ..data import task_label

        parts = []
        for task in dict.fromkeys(study_curve["task"]):
            rows = study_curve[study_curve["task"] == task].sort_values("init_std")
            m, f = rows["metric"].iloc[0], (study_floors or {}).get(task)
            inside = rows[rows["init_std"] <= ROBUST_MAX]
            text = (f"{task_label(task)} ({m}): {inside['dev_mean'].min():.1f} … {inside['dev_mean'].max():.1f} for stds "
                    f"{std_text(inside['init_std'].min())} … {std_text(inside['init_std'].max())}; "
                    + ", ".join(f"{v:.1f} at {std_text(s)}" for s, v in zip(rows["init_std"], rows["dev_mean"])
                                if s > ROBUST_MAX))
            if f is not None:
                at_floor = [std_text(s) for s, v in zip(rows["init_std"], rows["dev_mean"]) if v - f <= MARGIN]
                text += (f"; at the majority class ({f:.1f}) at std {', '.join(at_floor)}" if at_floor
                         else f"; every std beats the majority class ({f:.1f})")
            parts.append(text)
        seeds = int(study_curve["n_seeds"].min())
        lines.append("The stored reproduction study (`init_cpu`): " + ". ".join(parts) + "."
                     + (" With one seed per std, a single run at the majority class inside the robust range is as "
                        "likely an unlucky run as an effect; more seeds would tell." if seeds == 1 else ""))
    return "\n".join(f"- {line}" for line in lines)



# --- notebook 03 (size vs parameters) -----------------------------------------------------------


# --- notebook 04 (GLUE reproduction) ------------------------------------------------------------


# --- notebook 05 (layer ablation) ---------------------------------------------------------------


# --- notebook 06 (many tasks) -------------------------------------------------------------------
