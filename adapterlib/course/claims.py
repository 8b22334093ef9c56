"""The claim scorecard: which of the paper's claims hold on this base model, from the committed records.

    card = claims()                      # one row per claim (a DataFrame indexed by claim key)
    scorecard(load_evidence())           # the same, from evidence loaded once (pure: reads no file)
    scorecard_markdown(card)             # the table of the site's scorecard page and of the README

Every verdict is one of VERDICTS and comes from one of four stated rules (`gap_verdict`, `share_verdict`,
`spread_verdict`, `storage_verdict`) applied to numbers recomputed from the records with
`adapterlib.sweeps.aggregate`'s selection (validation only) and seed bootstrap. Only `load_evidence` reads files.
Notebook 07's rows (the v3 studies: Houlsby vs Pfeiffer, the init std, the LayerNorms) come from `claims_v3`.

Floors: a task where every compared method sits at its floor (the majority class; `at_floor`) cannot test a
claim; it is left out of the claim's averages, and the row's `floor` column says so. RTE is such a task here:
the bundled all-MiniLM-L6-v2 is a sentence-embedding model and no method leaves chance on it.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import pandas as pd

from .. import vocab
from ..data import task_label
from ..errors import AdapterlibError
from ..params import storage_multiple, stored_params
from ..studies import ablation
from ..sweeps import aggregate
from .results import CLAIM_GAP, MARGIN
from .verdicts import (
    SIZE_TOLERANCE,
    STORAGE_TOLERANCE,
    UNTESTABLE,
    VERDICTS,
    Z95,
    at_floor,
    floor_note,
    gap_verdict,
    share_verdict,
    spread_verdict,
    storage_verdict,
    task_floors,
)

ROBUST_STD = 1e-2     # the paper's robust range of init stds ends here (section 3.6, Fig. 6 right)
N_PAPER_TASKS = 9     # Table 1's storage column counts the 9 GLUE tasks
COLUMNS = ["claim", "paper", "paper_value", "ours", "interval", "floor", "verdict", "notebook"]
SHOWN = {"claim": "claim", "paper": "paper", "paper_value": "paper's value", "ours": "ours", "interval": "interval",
         "floor": "floor", "verdict": "verdict", "notebook": "notebook"}


@dataclass(frozen=True)
class Claim:
    """One row of the scorecard: the claim, the paper's value, ours (`value`, with `low`..`high` where an
    interval exists), what the floors removed, the verdict and the rule that gave it."""

    key: str
    claim: str
    paper: str
    paper_value: str
    ours: str
    value: float
    low: float
    high: float
    interval: str
    floor: str
    verdict: str
    rule: str
    notebook: str


@dataclass(frozen=True)
class Evidence:
    """Everything the scorecard reads, loaded once by `load_evidence`: the records frames of the studies
    (aggregate.records_frame), each task's dev floor, the layer-ablation tables, notebook 06's recorded
    many-tasks checks (None when not recorded), the paper's tables (studies.paper) and the v3 studies' records
    frames (claims_v3.load_v3; empty frames, or none, for a study not run yet)."""

    glue: pd.DataFrame
    size: pd.DataFrame
    init: pd.DataFrame
    floors: pd.DataFrame
    ablation: dict
    many_tasks: dict | None
    paper: dict
    v3: dict = field(default_factory=dict)


def _fmt(x: float, sign: bool = True) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{x:+.2f}" if sign else f"{x:.2f}"


def _interval(low: float, high: float, what: str) -> str:
    return f"{_fmt(low)} .. {_fmt(high)} ({what})" if not (math.isnan(low) or math.isnan(high)) else "none (1 seed)"


# --- Table 1 (notebook 04) ----------------------------------------------------------------------------------


def glue_excluded(glue: pd.DataFrame, floors: pd.DataFrame) -> list[str]:
    """Table 1 tasks where every method's chosen setting (glue_selection) sits at the floor."""
    chosen = aggregate.glue_selection(glue)
    return [t for t in dict.fromkeys(chosen["task"])
            if all(at_floor(t, s, floors) for s in chosen.loc[chosen["task"] == t, "dev_mean"])]


def paper_gap(table1: pd.DataFrame, method: str, tasks) -> float:
    """The paper's Table 1 gap (method minus full fine-tuning) averaged over `tasks` (ours)."""
    from ..studies.paper import TABLE1_COLUMNS

    t = table1.set_index("method")
    cols = [TABLE1_COLUMNS[task] for task in tasks if task in TABLE1_COLUMNS]
    return float((t.loc[method, cols] - t.loc["full", cols]).mean()) if cols else math.nan


def _gap_claim(key, claim, gap: pd.DataFrame, method: str, percent: str, table1, paper_method, floor) -> Claim:
    if method not in gap.index:
        return Claim(key, claim, "Table 1", "", "no runs", math.nan, math.nan, math.nan, "none", floor,
                     UNTESTABLE, f"gap_verdict: within {CLAIM_GAP:g} points", "04")
    row = gap.loc[method]
    tasks = str(row["tasks"]).split()
    mean, low, high = float(row["gap_mean"]), float(row["gap_low_95%"]), float(row["gap_high_95%"])
    t = table1.set_index("method")
    pct = float(t.loc[paper_method, "params_per_task_percent"])
    total = float(t.loc[paper_method, "Total"] - t.loc["full", "Total"])
    return Claim(key, claim, "Table 1", f"{paper_gap(table1, paper_method, tasks):+.2f} on these tasks "
                 f"(Total {total:+.1f}, {pct:g}% per task)", f"{mean:+.2f} over {len(tasks)} tasks, {percent}",
                 mean, low, high, _interval(low, high, "95% seed bootstrap"), floor,
                 gap_verdict(mean, low, high), f"gap_verdict: within {CLAIM_GAP:g} points", "04")


def table1_claims(glue: pd.DataFrame, floors: pd.DataFrame, table1: pd.DataFrame) -> list[Claim]:
    """The Table 1 gap at the paper's budget on both parameter conventions, and adapters (64) vs full."""
    excluded = glue_excluded(glue, floors)
    testable = glue[~glue["task"].isin(excluded)]
    floor = floor_note(excluded, floors)
    budget = aggregate.BUDGET_PERCENT
    chosen = aggregate.glue_selection(testable).groupby("method")
    gap = aggregate.glue_gap(testable).set_index("method")
    # the paper's convention: only the sizes within the budget of the base without its embeddings compete
    small = testable[(testable["policy"] != "adapter") | (testable["percent_of_base_no_embedding"] <= budget)]
    gap_ne = aggregate.glue_gap(small).set_index("method")
    chosen_ne = aggregate.glue_selection(small).groupby("method")

    def pct(groups, method, column):
        column = "percent_of_base" if column == "whole" else "percent_of_base_no_embedding"
        return f"{groups[column].mean()[method]:.1f}%" if method in groups.groups else "n/a"

    return [
        _gap_claim("table1_budget_whole", f"adapters within {budget:g}% per task match full fine-tuning "
                   "(whole model counted)", gap, "adapters_budget",
                   f"{pct(chosen, 'adapters_budget', 'whole')} of the whole model", table1, "adapters_8_256", floor),
        _gap_claim("table1_budget_paper", f"adapters within {budget:g}% per task match full fine-tuning "
                   "(without embeddings, as the paper counts)", gap_ne, "adapters_8_256",
                   f"{pct(chosen_ne, 'adapters_8_256', 'paper')} without embeddings", table1, "adapters_8_256", floor),
        _gap_claim("adapters64_vs_full", "adapters (64) match full fine-tuning", gap, "adapters_64",
                   f"{pct(chosen, 'adapters_64', 'whole')} of the whole model", table1, "adapters_64", floor),
        *[floor_claim(task, glue, floors, table1) for task in excluded],
    ]


def floor_claim(task: str, glue: pd.DataFrame, floors: pd.DataFrame, table1: pd.DataFrame) -> Claim:
    """A Table 1 task where every method sits at its floor: its part of the claim is untestable here."""
    from ..studies.paper import TABLE1_COLUMNS

    chosen = aggregate.glue_selection(glue[glue["task"] == task]).set_index("method")["dev_mean"]
    t = table1.set_index("method")[TABLE1_COLUMNS[task]]
    name = task_label(task)
    return Claim(f"table1_{task}", f"adapters match full fine-tuning on {name}", "Table 1",
                 f"{t['adapters_8_256'] - t['full']:+.1f} ({t['adapters_8_256']:g} vs "
                 f"{t['full']:g})", ", ".join(f"{vocab.label(m)} {v:.1f}" for m, v in chosen.items()),
                 math.nan, math.nan, math.nan, "none", floor_note([task], floors), UNTESTABLE,
                 "floor: every method within 1.96 s.e. of the majority class", "04")


def size_claim(glue: pd.DataFrame, floors: pd.DataFrame, paper_sizes: pd.DataFrame) -> Claim:
    """Robust to size: the task-mean dev score of sizes 8, 64 and 256 (each at its lr chosen on validation,
    aggregate.select_best) over the Table 1 tasks not at their floor; its spread against SIZE_TOLERANCE."""
    excluded = glue_excluded(glue, floors)
    best = aggregate.select_best(glue[(glue["policy"] == "adapter") & ~glue["task"].isin(excluded)])
    best = best[best["adapter_size"].isin(paper_sizes["adapter_size"])]
    tasks = set.intersection(*[set(g["task"]) for _, g in best.groupby("adapter_size")]) if len(best) else set()
    means = best[best["task"].isin(tasks)].groupby("adapter_size")["dev_mean"].mean()
    spread = float(means.max() - means.min()) if len(means) > 1 else math.nan
    paper = paper_sizes.set_index("adapter_size")["score"]
    return Claim("size_robust", "robust to the adapter size (8, 64, 256)", "section 3.2",
                 " / ".join(f"{v:.1f}" for v in paper) + f" (spread {paper.max() - paper.min():.1f})",
                 " / ".join(f"{v:.1f}" for v in means) + f" over {len(tasks)} tasks (spread {spread:.2f})",
                 spread, float(means.min()) if len(means) else math.nan, float(means.max()) if len(means) else math.nan,
                 "range over sizes", floor_note(excluded, floors), spread_verdict(spread),
                 f"spread_verdict: within {SIZE_TOLERANCE:g} point(s)", "04")


# --- Figs. 3/4 (notebook 03) and Fig. 6 (notebooks 02 and 05) -----------------------------------------------


def topk_comparisons(curve: pd.DataFrame, floors: pd.DataFrame) -> pd.DataFrame:
    """Per task and k: adapters at no more trained parameters than top-k fine-tuning (the size chosen on
    validation among them) minus top-k, dev points. Tasks where both sit at the floor are left out
    (`attrs["excluded"]`)."""
    rows, excluded = [], []
    for task, g in curve.groupby("task", sort=False):
        adapters, top = g[g["policy"] == "adapter"], g[g["policy"] == "top_k"]
        both = g.loc[g["policy"].isin(["adapter", "top_k"]), "dev_mean"]
        if len(top) and all(at_floor(task, s, floors) for s in both):
            excluded.append(task)
            continue
        for _, t in top.iterrows():
            fits = adapters[adapters["trainable"] <= t["trainable"]]
            if len(fits):
                a = fits.sort_values(["val_mean", "trainable"], ascending=[False, True]).iloc[0]
                rows.append({"task": task, "top_k": int(t["top_k"]), "top_k_trainable": t["trainable"],
                             "adapter_size": int(a["adapter_size"]), "adapter_trainable": a["trainable"],
                             "difference": a["dev_mean"] - t["dev_mean"]})
    out = pd.DataFrame(rows, columns=["task", "top_k", "top_k_trainable", "adapter_size", "adapter_trainable",
                                      "difference"])
    out.attrs["excluded"] = excluded
    return out


def topk_claim(curve: pd.DataFrame, floors: pd.DataFrame, fig4: pd.DataFrame) -> Claim:
    """Adapters at least as good as top-k fine-tuning (within MARGIN) at equal trained parameters, each k."""
    comp = topk_comparisons(curve, floors)
    diff = comp["difference"]
    p = fig4.set_index("method")["score"]
    return Claim("adapters_vs_topk", "adapters beat top-k fine-tuning at equal trained parameters", "Figs. 3/4",
                 f"{p['adapter'] - p['top_k']:+.1f} (MNLI-m: m=64 vs top-1 layer)",
                 f"{diff.mean():+.2f} on average; {int((diff >= -MARGIN).sum())} of {len(diff)} comparisons "
                 f"not worse than -{MARGIN:g}", diff.mean(), diff.min(), diff.max(),
                 f"{_fmt(diff.min())} .. {_fmt(diff.max())} (range, 1 seed)" if len(diff) else "none",
                 floor_note(comp.attrs["excluded"], floors), share_verdict(diff >= -MARGIN),
                 f"share_verdict: adapters - top-k >= -{MARGIN:g} in each comparison", "03")


def layernorm_claim(curve: pd.DataFrame, floors: pd.DataFrame, fig4: pd.DataFrame) -> Claim:
    """LayerNorm-only below full fine-tuning by more than MARGIN on each task not at its floor."""
    diffs, excluded = {}, []
    for task, g in curve.groupby("task", sort=False):
        full, ln = g.loc[g["policy"] == "full", "dev_mean"], g.loc[g["policy"] == "layernorm", "dev_mean"]
        if len(full) and len(ln):
            if at_floor(task, full.iloc[0], floors) and at_floor(task, ln.iloc[0], floors):
                excluded.append(task)
            else:
                diffs[task] = float(full.iloc[0] - ln.iloc[0])
    d = pd.Series(diffs, dtype=float)
    paper = fig4.loc[fig4["method"] == "layernorm"].set_index("task")["drop_in_points"]
    return Claim("layernorm_worse", "LayerNorm-only tuning is worse than full fine-tuning", "Figs. 3/4",
                 ", ".join(f"-{v:g} {k}" for k, v in paper.items()),
                 ", ".join(f"{-v:+.1f} {task_label(k)}" for k, v in d.items()) or "no runs", -d.mean(),
                 -d.max(), -d.min(), f"{_fmt(-d.max())} .. {_fmt(-d.min())} (range over tasks, 1 seed)"
                 if len(d) else "none", floor_note(excluded, floors), share_verdict(d > MARGIN),
                 f"share_verdict: full - LayerNorm-only > {MARGIN:g} on each task", "03")


def init_checks(curve: pd.DataFrame, floors: pd.DataFrame) -> pd.DataFrame:
    """Per task of an init_curve: the largest drop among stds <= ROBUST_STD below the best of them, whether
    that is within the seed noise (max(MARGIN, Z95 combined s.e.m.)), and the drop at the largest std above
    ROBUST_STD below the worst of the robust range (degrading: by more than MARGIN)."""
    rows = []
    for task, g in curve.groupby("task", sort=False):
        small, large = g[g["init_std"] <= ROBUST_STD], g[g["init_std"] > ROBUST_STD]
        if small.empty or at_floor(task, small["dev_mean"].max(), floors):
            continue
        best = small.loc[small["dev_mean"].idxmax()]
        sem = small["dev_sem"].fillna(0)
        noise = (Z95 * (sem ** 2 + (0 if math.isnan(best["dev_sem"]) else best["dev_sem"]) ** 2) ** 0.5).clip(MARGIN)
        drops = best["dev_mean"] - small["dev_mean"]
        top = large.loc[large["init_std"].idxmax()] if len(large) else None
        rows.append({"task": task, "robust_drop": float(drops.max()), "robust": bool((drops <= noise).all()),
                     "largest_std": top["init_std"] if top is not None else math.nan,
                     "large_drop": float(small["dev_mean"].min() - top["dev_mean"]) if top is not None else math.nan,
                     "degrades": bool(top is not None and small["dev_mean"].min() - top["dev_mean"] > MARGIN)})
    return pd.DataFrame(rows, columns=["task", "robust_drop", "robust", "largest_std", "large_drop", "degrades"])


def init_claim(curve: pd.DataFrame, floors: pd.DataFrame) -> Claim:
    checks = init_checks(curve, floors)
    excluded = [t for t in dict.fromkeys(curve["task"]) if t not in set(checks["task"])]
    ours = "; ".join(f"{task_label(r.task)}: worst {r.robust_drop:.1f} below the best <= {ROBUST_STD:g}, "
                     f"{-r.large_drop:+.1f} at {r.largest_std:g}" for r in checks.itertuples())
    return Claim("init_robust", f"init std robust up to {ROBUST_STD:g}, worse above", "Fig. 6 right",
                 f"flat below {ROBUST_STD:g}, degrading above (more on CoLA)", ours or "no runs",
                 float(checks["robust_drop"].max()) if len(checks) else math.nan, math.nan, math.nan,
                 "within seed noise: " + ", ".join(f"{task_label(t)} {'yes' if r else 'no'}"
                                                   for t, r in zip(checks["task"], checks["robust"], strict=True)),
                 floor_note(excluded, floors), share_verdict([*checks["robust"], *checks["degrades"]]),
                 "share_verdict: per task, flat within seed noise <= 1e-2 and worse by > 1 point above", "02")


def ablation_claims(tables: dict, floors: pd.DataFrame, fig6: pd.DataFrame) -> list[Claim]:
    """Fig. 6 left/centre: one layer's adapters removed costs at most the paper's limit (+MARGIN); removing the
    lower half costs less than removing the upper half (by more than MARGIN). Tasks whose trained model sits
    at its floor are left out; so are the halves test's tasks where both halves removed fall to the floor."""
    limit = float(fig6.loc[fig6["quantity"].str.startswith("largest drop"), "value"].iloc[0])
    single, halves, out_single, out_halves = {}, {}, [], []
    for task, table in tables.items():
        s = ablation.span_summary(table)
        if at_floor(task, s["none_removed"], floors):
            out_single.append(task), out_halves.append(task)
            continue
        single[task] = s["max_single_layer_drop"]
        lower, upper = s["none_removed"] - s["lower_half_removed"], s["none_removed"] - s["upper_half_removed"]
        if at_floor(task, s["lower_half_removed"], floors) and at_floor(task, s["upper_half_removed"], floors):
            out_halves.append(task)
        else:
            halves[task] = (lower, upper)
    one = pd.Series(single, dtype=float)
    diff = pd.Series({t: lo - up for t, (lo, up) in halves.items()}, dtype=float)
    return [
        Claim("ablation_single_layer", "removing one layer's adapters costs little", "Fig. 6 left/centre",
              f"at most {limit:g} points", ", ".join(f"{task_label(t)} up to {v:.1f}" for t, v in one.items()),
              one.max() if len(one) else math.nan, one.min() if len(one) else math.nan,
              one.max() if len(one) else math.nan, "largest drop per task, 1 seed", floor_note(out_single, floors),
              share_verdict(one <= limit + MARGIN), f"share_verdict: largest drop <= {limit:g} + {MARGIN:g}", "05"),
        Claim("ablation_lower_layers", "lower layers' adapters matter less than higher ones", "Fig. 6 left/centre",
              "lower layers (0-4) least, top layers most",
              ", ".join(f"{task_label(t)}: lower half -{lo:.1f}, upper half -{up:.1f}"
                        for t, (lo, up) in halves.items()),
              diff.mean() if len(diff) else math.nan, diff.min() if len(diff) else math.nan,
              diff.max() if len(diff) else math.nan, "cost lower - upper half, 1 seed", floor_note(out_halves, floors),
              share_verdict(diff < -MARGIN), f"share_verdict: lower half costs > {MARGIN:g} less on each task", "05"),
    ]


# --- many tasks on one frozen base (notebook 06, Table 1's storage column) ---------------------------------

UNCHANGED_CHECKS = ("unchanged_after_later_tasks", "dev_identical_after_all", "frozen_identical",
                    "fresh_base_identical", "fresh_reload_identical")  # notebook 06's recorded bit-for-bit checks


def unchanged_claim(recorded: dict | None) -> Claim:
    """Earlier tasks unchanged by later ones, from notebook 06's recorded checks (bit for bit)."""
    checks = [bool(recorded[k]) for k in UNCHANGED_CHECKS if k in (recorded or {})]
    tasks = ", ".join(task_label(t) for t in (recorded or {}).get("tasks", []))
    return Claim("many_tasks_unchanged", "a new task leaves the earlier tasks unchanged", "section 1",
                 "earlier tasks untouched", f"{sum(checks)} of {len(checks)} checks bit-identical ({tasks})"
                 if checks else "not recorded", sum(checks) / len(checks) if checks else math.nan, math.nan, math.nan,
                 "exact (bit for bit)" if checks else "none", "n/a: equality, not a score",
                 share_verdict(checks), "share_verdict: every bit-for-bit check passes", "06")


def storage_claim(glue: pd.DataFrame, table1: pd.DataFrame, n_tasks: int = N_PAPER_TASKS) -> Claim:
    """Storage of `n_tasks` tasks on one frozen base, in base models (Table 1's total column): the frozen
    parameters once plus each task's trained set, at the mean trained set of adapters (8-256) chosen here."""
    chosen = aggregate.glue_selection(glue)
    rows = chosen[chosen["method"] == "adapters_8_256"]
    t = table1.set_index("method")
    paper, full = float(t.loc["adapters_8_256", "total_params_multiple"]), float(t.loc["full", "total_params_multiple"])
    if rows.empty:
        ours = studied = math.nan
    else:
        per_task = rows["trainable"].mean()
        ours = storage_multiple(stored_params(rows["frozen"].mean(), [per_task] * n_tasks), rows["base"].mean())
        studied = storage_multiple(stored_params(rows["frozen"].mean(), rows["trainable"]), rows["base"].mean())
    return Claim("many_tasks_storage", f"{n_tasks} tasks on one frozen base cost about {paper:g}x storage",
                 "Table 1", f"{paper:g}x (full fine-tuning {full:g}x)",
                 f"{ours:.2f}x for {n_tasks} tasks ({studied:.2f}x for the {len(rows)} studied)", ours, math.nan,
                 math.nan, "none (a count)", "n/a: a parameter count", storage_verdict(ours, paper, full),
                 f"storage_verdict: within {STORAGE_TOLERANCE:g} of the paper's, partly under half of full", "04")


# --- the scorecard ------------------------------------------------------------------------------------------


def scorecard(evidence: Evidence) -> pd.DataFrame:
    """Every claim as one row (index: key; columns COLUMNS, then value, low, high and rule). Pure."""
    from .claims_v3 import v3_claims  # it builds Claim rows: imported here, not at the top (no import cycle)

    p, floors = evidence.paper, evidence.floors
    curve = aggregate.size_curve(evidence.size)
    rows = [*table1_claims(evidence.glue, floors, p["table1"]),
            size_claim(evidence.glue, floors, p["size_robustness"]),
            topk_claim(curve, floors, p["fig4_mnli_points"]), layernorm_claim(curve, floors, p["fig4_mnli_points"]),
            init_claim(aggregate.init_curve(evidence.init), floors),
            *ablation_claims(evidence.ablation, floors, p["fig6_layer_ablation"]),
            unchanged_claim(evidence.many_tasks), storage_claim(evidence.glue, p["table1"]),
            *v3_claims(evidence.v3, floors)]  # notebook 07's rows (placement, init std, LayerNorms)
    card = pd.DataFrame([asdict(c) for c in rows]).set_index("key")
    return card[[*COLUMNS, "value", "low", "high", "rule"]]


def verdict_counts(card: pd.DataFrame) -> dict:
    """How many claims got each verdict, in VERDICTS order."""
    return {v: int((card["verdict"] == v).sum()) for v in VERDICTS}


def headline(card: pd.DataFrame, key: str = "table1_budget_whole") -> str:
    """The scorecard in one line: the counts of each verdict, and the Table 1 row (with its interval)."""
    counts = ", ".join(f"{n} {v}" for v, n in verdict_counts(card).items() if n)
    row = card.loc[key]
    interval = f"95% {_fmt(row['low'])} .. {_fmt(row['high'])}; " if not math.isnan(row["low"]) else ""
    return (f"{len(card)} claims: {counts}. {row['claim']}: ours {row['ours']} ({interval}paper "
            f"{row['paper_value']}): **{row['verdict']}**.")


def _cell(value) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def scorecard_markdown(card: pd.DataFrame) -> str:
    """The scorecard as a Markdown table (the shown columns)."""
    lines = ["| " + " | ".join(SHOWN[c] for c in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cell(row[c]) for c in COLUMNS) + " |" for _, row in card.iterrows()]
    return "\n".join(lines)


# --- the one loader -----------------------------------------------------------------------------------------

STUDIES = {"glue": "glue_v2", "size": "size_v2", "init": "init_v2", "ablation": "ablation_v2",
           "many_tasks": "many_tasks"}
PAPER_TABLES = ("table1", "size_robustness", "fig4_mnli_points", "fig6_layer_ablation")


class ClaimsError(AdapterlibError, ValueError):
    """The committed records the scorecard needs are missing or unreadable."""


def load_evidence(results_dir=None) -> Evidence:
    """Read the committed studies (STUDIES, under `results_dir`, default data/results) and the paper's tables."""
    import json
    from pathlib import Path

    from ..paths import RESULTS_DIR
    from ..records import load_records
    from ..studies.paper import paper_table
    from .claims_v3 import load_v3

    root = Path(results_dir) if results_dir is not None else RESULTS_DIR
    frames, records = {}, []
    for name in ("glue", "size", "init"):
        folder = aggregate.runs_dir(root / STUDIES[name])
        found = load_records(folder) if folder.is_dir() else []
        if not found:
            raise ClaimsError(f"no run records in {folder}: the scorecard reads the committed studies "
                              f"({', '.join(STUDIES.values())}) under {root}")
        frames[name] = aggregate.records_frame(found)
        records += found
    tables = {t: table for t, (table, _) in ablation.load_study(root / STUDIES["ablation"]).items()}
    many = root / STUDIES["many_tasks"] / "results.json"
    try:
        recorded = json.loads(many.read_text()) if many.is_file() else None
    except ValueError as e:
        raise ClaimsError(f"{many} is not JSON: {e}") from e
    return Evidence(frames["glue"], frames["size"], frames["init"], task_floors(records), tables, recorded,
                    {name: paper_table(name) for name in PAPER_TABLES}, load_v3(root))


def claims(results_dir=None) -> pd.DataFrame:
    """The claim scorecard of the committed records (see `scorecard`)."""
    return scorecard(load_evidence(results_dir))


SCORECARD_BEGIN, SCORECARD_END = "<!-- scorecard:begin (python -m adapterlib claims --update FILE) -->", \
    "<!-- scorecard:end -->"
HEADLINE_BEGIN, HEADLINE_END = "<!-- scorecard-headline:begin (python -m adapterlib claims --update FILE) -->", \
    "<!-- scorecard-headline:end -->"


def scorecard_block(card: pd.DataFrame) -> str:
    """What sits between the scorecard markers of a Markdown page: the headline, then the table."""
    return f"{headline(card)}\n\n{scorecard_markdown(card)}"


def scorecard_blocks(text: str) -> list:
    """The (begin, end, make) marker pairs found in `text`; ClaimsError when there is none (checked before the
    scorecard is computed, so a page without markers fails at once)."""
    blocks = ((SCORECARD_BEGIN, SCORECARD_END, scorecard_block), (HEADLINE_BEGIN, HEADLINE_END, headline))
    found = [(b, e, make) for b, e, make in blocks if b in text and e in text]
    if not found:
        raise ClaimsError(f"no '{SCORECARD_BEGIN}' ... '{SCORECARD_END}' or '{HEADLINE_BEGIN}' ... "
                          f"'{HEADLINE_END}' block to update")
    return found


def replace_scorecard_block(text: str, card: pd.DataFrame) -> str:
    """`text` with the lines between the scorecard markers replaced by the scorecard of `card`, and those between
    the headline markers (the README's first screen) by its headline; at least one pair must be there."""
    for begin, end, make in scorecard_blocks(text):
        head, rest = text.split(begin, 1)
        text = f"{head}{begin}\n{make(card)}\n{end}{rest.split(end, 1)[1]}"
    return text
