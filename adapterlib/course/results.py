"""Results as data: small pure functions that read run records and frames and return dataclasses or DataFrames
(issue 27). They read no files (adapterlib.course.evidence loads what they need); notebooks show what they return
as tables, and the teaching text around them is Markdown written by hand.

    FloorCheck / verdict(rec)          one run's score against the majority-class floor of the same examples
    SeedCheck / seed_checks(sel, fl)   a mean over seeds against its floor: clearly above, within noise, at, below
    floor_table(records)               one row per run: score, floor, points above, learned
    Gap / gap_table(gap)               adapters minus full fine-tuning, with its seed-bootstrap interval
    ClaimCheck / claim_check(...)      Table 1's claim (within CLAIM_GAP points at <= the budget) as a verdict
    EdgeFlag / edge_table(rows)        choices made at the highest or lowest learning rate tried
    FitCheck / fit_check(recs, guess)  did the runs fit the training set (against the class-frequency loss)?

Method names are KEYS ("full", "adapters_64", ...: adapterlib.vocab); `vocab.key_of` accepts labels too, and
`vocab.display_labels(frame)` turns keys back into labels for display.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from .. import vocab
from .verdicts import CLAIM_GAP, HOLDS, NO, PARTLY, UNTESTABLE, gap_verdict

MARGIN = 1.0  # points above the majority-class score that count as "learned" (below: noise on a few hundred examples)


def _frame(rows, columns=None):
    import pandas as pd

    return pd.DataFrame(rows, columns=columns)


# --- one run against its floor ------------------------------------------------------------------------------


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
    name = f"top-{cfg.get('top_k')} layers" if rec["policy"] == "top_k" else vocab.label(rec["policy"])
    return f"{name} (lr {cfg['lr']:g})"


def verdict(rec: dict, name: str | None = None, split: str | None = None, floor: float | None = None) -> FloorCheck:
    """The score of run record `rec` on `split` (default: its task's dev split) against its majority-class floor:
    `floor`, else the one the record carries (records written before floors were recorded: pass it, e.g. from
    `evidence.record_floor`)."""
    from ..data import get_task

    spec = get_task(rec["task"])
    split = split or next(iter(spec.dev_files))
    if floor is None:
        floor = float(rec["majority"][split][spec.metric])
    return FloorCheck(name or record_name(rec), float(rec["dev"][split][spec.metric]), float(floor), spec.metric,
                      split)


def floor_table(records, names=None):
    """One row per run record: score, floor, points above it, learned (a pandas DataFrame)."""
    names = names or [None] * len(records)
    rows = []
    for rec, name in zip(records, names, strict=True):
        c = verdict(rec, name)
        rows.append({"run": c.name, f"{c.split} {c.metric}": round(c.score, 2), "majority class": round(c.floor, 2),
                     "points above": round(c.above, 2), "learned": c.learned})
    return _frame(rows)


# --- a mean over seeds against its floor ----------------------------------------------------------------------


@dataclass(frozen=True)
class SeedCheck:
    """A mean over seeds, its s.e.m. (NaN for one seed) and the majority-class floor of the same examples."""

    name: str
    task: str
    score: float
    sem: float
    n_seeds: int
    floor: float
    metric: str

    @property
    def above(self) -> float:
        return self.score - self.floor

    @property
    def status(self) -> str:
        """"clearly above" (by more than MARGIN and two s.e.m.), "within noise" (above MARGIN only), "at", "below"."""
        noise = 2 * self.sem if not math.isnan(self.sem) else 0.0
        if self.above > max(MARGIN, noise):
            return "clearly above"
        if self.above > MARGIN:
            return "within noise"
        return "at" if self.above >= -MARGIN else "below"

    @property
    def learned(self) -> bool:
        return self.status == "clearly above"

    def row(self) -> dict:
        return asdict(self) | {"above": self.above, "status": self.status, "learned": self.learned}


def seed_checks(selection, floors: dict) -> list[SeedCheck]:
    """Per row of `selection` (glue_selection: method, task, dev_mean, dev_sem, n_seeds, metric): its floor check,
    `floors` giving each task's majority-class score (NaN where unknown). `name` is the method's key."""
    out = []
    for row in selection.itertuples(index=False):
        sem = float(row.dev_sem)
        out.append(SeedCheck(vocab.key_of(row.method), row.task, float(row.dev_mean), sem, int(row.n_seeds),
                             float(floors.get(row.task, math.nan)), row.metric))
    return out


def sweep_table(selection, checks: list[SeedCheck]):
    """One row per (task, method) of a Table 1 sweep: the mean over seeds +- s.e.m., the floor and its status,
    the paper's score (NaN: not in Table 1) and the gap to full fine-tuning, ours and the paper's."""
    paper = {(vocab.key_of(m), t): p for m, t, p in zip(selection["method"], selection["task"],
                                                          selection["paper (test)"], strict=True)}
    rows = [c.row() | {"paper": paper.get((c.name, c.task), math.nan)} for c in checks]
    table = _frame(rows).rename(columns={"name": "method", "score": "dev_mean", "sem": "dev_sem"})
    full = table[table["method"] == "full"].set_index("task")
    table["gap_to_full"] = table["dev_mean"] - table["task"].map(full["dev_mean"])
    table["paper_gap_to_full"] = table["paper"] - table["task"].map(full["paper"])
    return table.set_index(["task", "method"])


def seeds_uneven(table, method: str = "adapters_64", baseline: str = "full") -> dict:
    """{task: (n_seeds of `method`, n_seeds of `baseline`)} where the two means stand on different seed counts."""
    out = {}
    for task in dict.fromkeys(table.index.get_level_values("task")):
        rows = table.loc[task]
        if method in rows.index and baseline in rows.index:
            n = (int(rows.loc[method, "n_seeds"]), int(rows.loc[baseline, "n_seeds"]))
            if n[0] != n[1]:
                out[task] = n
    return out


# --- gaps and the Table 1 claim --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gap:
    """A method minus full fine-tuning (points), averaged over tasks, with its seed-bootstrap interval."""

    method: str
    mean: float
    low: float
    high: float
    n_seeds: int
    best_of_seeds: float
    n_tasks: int
    level: str = "95%"


def gaps(gap, level: str = "95%") -> list[Gap]:
    """The rows of `aggregate.glue_gap` as Gaps (method keys)."""
    return [Gap(vocab.key_of(m), float(r["gap_mean"]), float(r[f"gap_low_{level}"]), float(r[f"gap_high_{level}"]),
                int(r["n_seeds_min"]), float(r["gap_best_of_seeds"]), len(str(r["tasks"]).split()), level)
            for m, r in gap.set_index("method").iterrows()]


def task_gap_table(gap, level: str = "95%"):
    """Per (method, task): the gap to full fine-tuning and its interval (NaN without one)."""
    rows = []
    for m, r in gap.set_index("method").iterrows():
        for t in str(r["tasks"]).split():
            rows.append({"method": vocab.key_of(m), "task": t, "gap": float(r[f"gap_{t}"]),
                         "low": float(r.get(f"gap_{t}_low_{level}", math.nan)),
                         "high": float(r.get(f"gap_{t}_high_{level}", math.nan))})
    return _frame(rows, ["method", "task", "gap", "low", "high"])


@dataclass(frozen=True)
class ClaimCheck:
    """Table 1's claim for one method: within `max_gap` points of full fine-tuning on average, at no more than
    `max_percent`% of the base per task. `status`: holds / partly / does not hold / untestable here."""

    method: str
    gap: Gap | None
    max_gap: float
    max_percent: float
    percent: float             # % of the whole base model trained per task
    percent_no_embedding: float  # the paper's convention
    status: str

    @property
    def budget_met(self) -> tuple[bool, bool]:
        """(whole model, without embeddings): within the budget?"""
        return (self.percent <= self.max_percent, self.percent_no_embedding <= self.max_percent)

    def row(self) -> dict:
        g = asdict(self.gap) if self.gap else {}
        return {"method": self.method, "status": self.status, "gap_mean": g.get("mean", math.nan),
                "low": g.get("low", math.nan), "high": g.get("high", math.nan), "n_seeds": g.get("n_seeds", 0),
                "best_of_seeds": g.get("best_of_seeds", math.nan), "n_tasks": g.get("n_tasks", 0),
                "% of base": self.percent, "% without embeddings": self.percent_no_embedding,
                "budget met (whole, no emb.)": self.budget_met}


def claim_check(gap, averages, method: str = "adapters_8_256", max_gap: float = CLAIM_GAP,
                max_percent: float | None = None) -> ClaimCheck:
    """The claim for `method` from `gap` (aggregate.glue_gap) and `averages` (aggregate.glue_table): the verdict
    reads the interval (gap_verdict); one seed per cell measures no interval, so the claim is untestable here."""
    max_percent = vocab.BUDGET_PERCENT if max_percent is None else max_percent
    key = vocab.key_of(method)
    found = {g.method: g for g in gaps(gap)} if gap is not None and len(gap) else {}
    pct = pct_ne = math.nan
    if averages is not None:
        rows = averages.rename(index=vocab.key_of)
        if key in rows.index:
            pct = float(rows.loc[key, "params_per_task_percent"])
            pct_ne = float(rows.loc[key, "params_per_task_percent_no_embedding"])
    g = found.get(key)
    if g is None or g.n_seeds < 2:
        status = UNTESTABLE
    else:
        status = gap_verdict(g.mean, g.low, g.high, max_gap)
    return ClaimCheck(key, g, max_gap, max_percent, pct, pct_ne, status)


def claim_table(gap, averages, methods=("adapters_8_256", "adapters_budget")):
    """One ClaimCheck row per method."""
    return _frame([claim_check(gap, averages, m).row() for m in methods]).set_index("method")


def average_table(averages, table1, complete: bool = True):
    """The Table 1 average per method: ours (the mean over the study's tasks), the paper's mean over the same
    task columns (NaN for a row Table 1 lacks), each gap to full fine-tuning, and the cost columns. Empty while
    the study is incomplete (`complete`) or a method lacks a task."""
    from ..studies.paper import TABLE1_COLUMNS

    if not complete or averages is None or not len(averages):
        return _frame([])
    ours = averages.rename(index=vocab.key_of)
    paper = table1.set_index("method").rename(index=vocab.key_of)
    cols = [c for c in ours.columns if c in TABLE1_COLUMNS.values()]
    methods = [m for m in vocab.TABLE1 if m in ours.index]
    if "full" not in methods or ours.loc[methods, "average"].isna().any():
        return _frame([])
    rows = []
    for m in methods:
        p = paper.loc[m, cols].mean() if m in paper.index else math.nan
        rows.append({"method": m, "ours": ours.loc[m, "average"], "paper, same tasks": p,
                     "% of base per task": ours.loc[m, "params_per_task_percent"],
                     "x base for all tasks": ours.loc[m, "total_params_multiple"], "n_tasks": len(cols)})
    table = _frame(rows).set_index("method")
    table["ours - full"] = table["ours"] - table.loc["full", "ours"]
    table["paper - full"] = table["paper, same tasks"] - table.loc["full", "paper, same tasks"]
    return table


# --- learning rates at the edge of the grid ---------------------------------------------------------------------


@dataclass(frozen=True)
class EdgeFlag:
    """A choice whose learning rate is the highest or lowest tried at its setting: a better rate may lie beyond."""

    method: str
    task: str
    point: str   # "m = 64", "top-2", "" (the method itself)
    lr: float
    edge: str    # "highest" or "lowest"


def edge_flags(rows) -> list[EdgeFlag]:
    """The rows of `rows` (select_best / glue_selection / size_curve rows with lr_edge) chosen at an edge of
    their learning-rate grid; one choice named under several rows (Table 1's rows can share one) is kept once
    per method."""
    if "lr_edge" not in rows:
        return []
    out = []
    for r in rows[rows["lr_edge"].fillna("").astype(str) != ""].itertuples():
        policy = getattr(r, "policy", None)
        point = (f"m = {r.adapter_size:g}" if policy == "adapter" else f"top-{r.top_k:g}" if policy == "top_k"
                 else "")
        out.append(EdgeFlag(vocab.key_of(getattr(r, "method", policy or "")), r.task, point, float(r.lr),
                            str(r.lr_edge)))
    return list(dict.fromkeys(out))


def edge_table(rows):
    return _frame([asdict(f) for f in edge_flags(rows)], ["method", "task", "point", "lr", "edge"])


# --- did the runs fit the training set? ------------------------------------------------------------------------


@dataclass(frozen=True)
class FitCheck:
    """The mean training loss up to the weights the runs kept, against `guess`, the loss of always predicting the
    training set's class frequencies (None for regression): `under_fit` when within 5% of it."""

    loss: float
    guess: float | None
    n_seeds: int
    kept_epochs: tuple      # the epochs whose weights the runs kept (validation chose them)
    run_epochs: tuple       # the epochs the runs trained
    max_epochs: float

    @property
    def under_fit(self) -> bool | None:
        return None if self.guess is None else self.loss > 0.95 * self.guess

    def row(self) -> dict:
        return asdict(self) | {"under_fit": self.under_fit}


def frequency_loss(counts) -> float:
    """Cross-entropy (nats) of always predicting the class frequencies `counts` (counts or probabilities): the loss
    a classifier that learned nothing but the label balance reaches (ln 2 = 0.693 for two balanced classes)."""
    n = sum(counts)
    return -sum(k / n * math.log(k / n) for k in counts if k > 0)


def _kept(rec: dict) -> dict:
    """The history entry of the weights a run kept: with early stopping the epoch validation chose, else the last."""
    chosen = (rec.get("selected") or {}).get("epoch") if rec["config"].get("patience") else None
    return next((h for h in rec["history"] if chosen is not None and h.get("epoch") == chosen), rec["history"][-1])


def fit_check(records, guess: float | None) -> FitCheck | None:
    """What the records say about fitting the training set (None when they hold no history)."""
    runs = [r for r in records if r.get("history")]
    if not runs:
        return None
    kept = [_kept(r) for r in runs]
    return FitCheck(sum(h["train_loss"] for h in kept) / len(kept), guess, len(runs),
                    tuple(sorted({float(h.get("epoch", 0)) for h in kept})),
                    tuple(sorted({float(r["history"][-1].get("epoch", 0)) for r in runs})),
                    float(runs[0]["config"]["epochs"]))


def frozen_pooler(rec: dict) -> bool:
    """Whether a run's classifier reads [CLS] through the (untrained, in MiniLM) pooler, frozen."""
    from ..record import as_record

    cfg = as_record(rec).config
    return cfg.get("head_input", "pooler") == "pooler" and not cfg.get("train_pooler")



def why_table(named: dict, guesses: dict):
    """Why results did not beat their floor, as far as their records show: per (method, task) -> records of
    `named`, the FitCheck of the records against `guesses[task]` (class_frequency_loss; None: regression), and
    whether the classifier read a frozen pooler. A row with no history has NaN loss."""
    rows = []
    for (method, task), records in named.items():
        fit = fit_check(records, guesses.get(task))
        rows.append({"method": vocab.key_of(method), "task": task, "has_history": fit is not None}
                    | (fit.row() if fit else {"loss": math.nan, "guess": guesses.get(task), "under_fit": None})
                    | {"frozen_pooler": bool(records) and frozen_pooler(records[0])})
    columns = ["method", "task", "has_history", "loss", "guess", "under_fit", "n_seeds", "kept_epochs",
               "run_epochs", "max_epochs", "frozen_pooler"]
    return _frame(rows, columns)


# --- notebook 04's live runs ---------------------------------------------------------------------------------

GLUE_LIVE_NAMES = {"adapter": "adapters ({size})", "full": vocab.label("full")}


def glue_live_table(records):
    """Notebook 04's live runs, one row each, with the run kept per method ("selected": best validation score;
    the dev score is never used to choose) and the majority-class floor of the dev examples."""
    rows = []
    for r in records:
        c = verdict(r)
        rows.append({"method": GLUE_LIVE_NAMES[r["policy"]].format(size=r["config"]["adapter_size"]),
                     "lr": r["config"]["lr"], "trained params": r["params"]["trainable"],
                     "% of base": r["params"]["percent_of_base"], "train loss": r["history"][-1]["train_loss"],
                     f"validation {c.metric}": r["selected"]["validation_" + c.metric], f"dev {c.metric}": c.score,
                     "majority class": c.floor, "learned": c.learned, "wall s": r["timing"]["wall_s"],
                     "reused": bool(r.get("reused"))})
    table = _frame(rows)
    table["selected"] = False
    validation = next(c for c in table.columns if c.startswith("validation "))
    table.loc[table.groupby("method")[validation].idxmax(), "selected"] = True  # validation only
    return table

VERDICTS = (HOLDS, PARTLY, NO, UNTESTABLE)


def details(summary: str, body: str) -> str:
    """Markdown collapsed under `summary` (an HTML <details> block): provenance that stays available, folded."""
    return f"<details><summary>{summary}</summary>\n\n{body}\n\n</details>"
