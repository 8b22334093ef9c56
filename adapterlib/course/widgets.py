"""Interactive explorers for the course (ipywidgets), testable without a browser.

Parameter explorer (notebook 01):

    table = param_table("bert-large", size=64)      # a pandas DataFrame, no widgets needed
    storage_table("bert-large", size=64, n_tasks=9) # paper Table 1's "total" and "per task" columns
    explorer = ParamExplorer()                       # widgets: model, adapter size, number of tasks
    display(explorer.widget)                         # live in Jupyter; explorer.table is the current table

Counts come from weightless `meta` models (adapterlib.model_from_preset), so BERT-large costs
no download and no memory; each (model, size) pair is built once and cached.

Init-std explorer (notebook 01) and study explorer (notebook 03):

    probe = init_drift_probe()                      # bundled MiniLM + adapters, 8 sentences, cached per std
    probe.drift(1e-2)                                # mean [CLS] relative change, max |logit change|
    InitDriftExplorer().widget                       # log slider over the init std -> table + drift curve
    StudyExplorer().widget                           # stored size_cpu / ablation_cpu records: budget and span sliders
    budget_table(curve, "sst2", 1e6); span_table(ablation, 0, 2)   # the tables behind the two views

Every explorer keeps its current table in `.table` and its HTML in `.view`, so a notebook prints
the table for the default values below the widget: that output is what a reader without a kernel sees.
"""
from __future__ import annotations

import copy
import io
from functools import lru_cache

import numpy as np
import pandas as pd

from ..config import AdapterConfig
from ..inject import add_adapters
from ..vocab import display_labels
from .costs import MODELS, SIZES, adapter_report, param_table, storage_table  # noqa: F401 (re-exported)

FALLBACK_TEXT = ("[interactive explorer: run the notebook's cells (Run All) to use it; "
                 "until then this is its static view]")


@lru_cache(maxsize=1)
def _explorer_box_class():
    """ipywidgets' VBox whose display also carries a static view of the explorer (its caption, table and
    figure as HTML, and a readable text/plain line), for a notebook opened before its kernel runs: JupyterLab
    then has no widget model to draw (and an untrusted notebook renders no widget at all) and shows the best
    other representation, formerly the raw `VBox(children=...)` repr. With a kernel, the widget wins."""
    import ipywidgets as w

    class ExplorerBox(w.VBox):
        def __init__(self, children, static=None, **kwargs):
            super().__init__(children, **kwargs)
            self._static = static

        def _repr_mimebundle_(self, **kwargs):
            data = super()._repr_mimebundle_(**kwargs) or {}
            data["text/plain"] = FALLBACK_TEXT
            if self._static is not None:
                data["text/html"] = f"<p><i>{FALLBACK_TEXT}</i></p>" + self._static()
            return data

    return ExplorerBox


def explorer_box(children, static=None):
    """A VBox of `children` that shows `static()` (an HTML string) where the widget cannot be drawn."""
    return _explorer_box_class()(children, static=static)


def _static_html(view, image=None) -> str:
    """The explorer's current caption and table (`view`, an HTML widget) and figure (`image`, PNG) as HTML."""
    import base64

    html = view.value
    if image is not None and image.value:
        html += f'<br><img src="data:image/png;base64,{base64.b64encode(image.value).decode()}"/>'
    return html


class ParamExplorer:
    """Dropdown (model) + slider (adapter size) + slider (tasks) -> parameter tables.

    `update()` recomputes `self.table`, `self.storage` and the HTML view; widget callbacks call it, and tests
    can set `explorer.model.value = "bert-large"` and read `explorer.table` directly.
    """

    def __init__(self, model: str = "bert-base", size: int = 64, n_tasks: int = 9):
        import ipywidgets as w

        self.model = w.Dropdown(options=list(MODELS.items()), value=model, description="model")
        self.size = w.SelectionSlider(options=list(SIZES), value=size, description="adapter size m")
        self.n_tasks = w.IntSlider(value=n_tasks, min=1, max=50, description="tasks")
        self.view = w.HTML()
        for control in (self.model, self.size, self.n_tasks):
            control.observe(lambda _change: self.update(), names="value")
        self.widget = explorer_box([w.HBox([self.model, self.size, self.n_tasks]), self.view],
                                   static=lambda: _static_html(self.view))
        self.update()

    def update(self) -> pd.DataFrame:
        self.table = param_table(self.model.value, self.size.value)
        self.storage = storage_table(self.model.value, self.size.value, self.n_tasks.value)
        html = dict(float_format=lambda v: f"{v:,.3f}", index_names=False)  # no empty index-name row
        self.view.value = (self.caption()  # the head's "% of base" is NaN: new parameters, not part of the base
                           + self.table.to_html(formatters={"parameters": "{:,}".format}, na_rep="new", **html)
                           + "<br>" + self.storage.to_html(formatters={"trained per task": "{:,}".format,
                                                                       "of which new head": "{:,}".format},
                                                           na_rep="", **html))
        return self.table

    def caption(self) -> str:
        r = adapter_report(self.model.value, self.size.value)
        return (f"<b>{self.model.label}</b>, adapter size {self.size.value}: each task trains "
                f"{r.trainable:,} parameters ({r.percent_of_base_no_embedding:.2f}% of the non-embedding base, "
                f"{r.percent_of_base:.2f}% of all {r.base:,}).")


# --- init std -> output drift (notebooks 01/02, paper section 3.6) ------------------------------------------

DRIFT_SENTENCES = ("A gripping, beautifully shot film.", "The plot never comes together.",
                   "I would happily watch it again.", "Two hours I will never get back.",
                   "The cast is uniformly excellent.", "It is neither funny nor clever.",
                   "An ambitious, flawed, fascinating debut.", "Flat, dull and far too long.")
PAPER_INITS = {"paper (1e-2)": 1e-2, "official code (1e-3)": 1e-3}


class InitDriftProbe:
    """How far freshly inserted adapters move a model's output, as a function of their init std.

    Adapters (size `size`, every layer) are inserted once into `model` (a model object, which is
    deep-copied, or a name for `load_base_model`, None for the bundled MiniLM) and re-initialised
    with a fixed seed for each std; the reference output is the same network with every adapter
    bypassed (`adapters_removed`), i.e. the base model with the same random head. Results are
    cached per std, so a slider that returns to a value costs nothing.
    """

    def __init__(self, model=None, tokenizer=None, sentences=DRIFT_SENTENCES, size: int = 64, seed: int = 0):

        import torch

        from ..inject import adapter_slots, adapters_removed
        from ..models import load_base_model

        self.sentences, self.size, self.seed = list(sentences), size, seed
        with torch.random.fork_rng(devices=[]):  # the new head is random: seed it, leave the caller's RNG alone
            torch.manual_seed(seed)
            if model is None or isinstance(model, str):
                model, tokenizer = load_base_model(model)
            else:
                model = copy.deepcopy(model)
        if tokenizer is None:
            raise ValueError("pass the tokenizer that goes with the model object")
        self.net = add_adapters(model, AdapterConfig(size=size)).eval()
        self.slots = [slot for _, _, slot in adapter_slots(self.net)]
        self.batch = tokenizer(self.sentences, padding=True, truncation=True, max_length=128, return_tensors="pt")
        with adapters_removed(self.net, range(len({i for i, _, _ in adapter_slots(self.net)}))):
            self.base_cls, self.base_logits = self._forward()
        self.forward_passes = 0
        self._cache: dict[float, pd.DataFrame] = {}

    def _forward(self):
        import torch

        with torch.no_grad():
            out = self.net(**self.batch, output_hidden_states=True)
        return out.hidden_states[-1][:, 0], out.logits  # (B, d): final [CLS], (B, labels)

    def per_sentence(self, std: float) -> pd.DataFrame:
        """One row per sentence: relative change of the final [CLS] vector and max |logit change|."""
        import torch

        key = float(std)
        if key not in self._cache:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)  # the same draw for every std, scaled
                for slot in self.slots:
                    slot.adapter.reset_parameters(key)
            cls, logits = self._forward()
            self.forward_passes += 1
            rel = ((cls - self.base_cls).norm(dim=-1) / self.base_cls.norm(dim=-1)).tolist()
            dlogit = (logits - self.base_logits).abs().amax(dim=-1).tolist()
            self._cache[key] = pd.DataFrame({"sentence": self.sentences, "[CLS] relative change": rel,
                                             "max |logit change|": dlogit})
        return self._cache[key]

    def drift(self, std: float) -> dict:
        """Mean over the sentences: {"init_std", "cls_relative_change", "max_abs_logit_change"}."""
        table = self.per_sentence(std)
        return {"init_std": float(std), "cls_relative_change": float(table["[CLS] relative change"].mean()),
                "max_abs_logit_change": float(table["max |logit change|"].max())}

    def curve(self, stds) -> pd.DataFrame:
        """drift() for every std in `stds`, one row each."""
        return pd.DataFrame([self.drift(s) for s in stds])


@lru_cache(maxsize=4)
def init_drift_probe(model: str | None = None, size: int = 64) -> InitDriftProbe:
    """The probe for a model name (None: bundled MiniLM), built once per process."""
    return InitDriftProbe(model, size=size)


def _png(fig) -> bytes:

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _fmt_pct(v: float) -> str:
    return f"{100 * v:.3g}%"  # 132%, 1.2%, 0.0101%, 1.01e-06%


class InitDriftExplorer:
    """Log slider (adapter init std) -> how far fresh adapters move the output of the pre-trained model.

    `self.table` is the per-sentence table at the current std, `self.summary` its mean, `self.view`
    the HTML (caption + table) and `self.image` a PNG of the drift curve with the current std marked.
    Tests set `explorer.std.value = 1e-1` and read them; in Jupyter the slider calls `update()`.
    """

    GRID = tuple(10.0 ** (k / 2) for k in range(-14, 1))  # 1e-7 .. 1, half decades: the curve behind the marker

    def __init__(self, model=None, size: int = 64, std: float = 1e-2, probe: InitDriftProbe | None = None):
        import ipywidgets as w

        self.probe = probe if probe is not None else init_drift_probe(model, size)
        self.std = w.FloatLogSlider(value=std, base=10, min=-7, max=0, step=0.25, readout_format=".1e",
                                    continuous_update=False, description="init std",
                                    style={"description_width": "initial"})
        self.view = w.HTML()
        self.image = w.Image(format="png")
        self.std.observe(lambda _change: self.update(), names="value")
        self.widget = explorer_box([self.std, w.HBox([self.view, self.image])],
                                   static=lambda: _static_html(self.view, self.image))
        self.widget.add_class("adapterlib-drift-explorer")  # stable hooks for the browser test and for styling
        self.view.add_class("adapterlib-view")
        self.update()

    def update(self) -> pd.DataFrame:
        std = self.std.value
        self.table = self.probe.per_sentence(std)
        self.summary = self.probe.drift(std)
        self.view.value = self.caption() + self.table.to_html(
            index=False, float_format=lambda v: f"{v:.2e}", classes="drift-table")
        self.image.value = _png(self.figure())
        return self.table

    def caption(self) -> str:
        s = self.summary
        refs = ", ".join(f"{name}: {_fmt_pct(self.probe.drift(v)['cls_relative_change'])}"
                         for name, v in PAPER_INITS.items())
        return (f"<b>init std {s['init_std']:.1e}</b>: fresh adapters (m={self.probe.size}) move the final [CLS] "
                f"vector by <b>{_fmt_pct(s['cls_relative_change'])}</b> on average over "
                f"{len(self.probe.sentences)} sentences (max |logit change| {s['max_abs_logit_change']:.1e}); "
                f"for reference, {refs}.")

    def figure(self):
        import matplotlib.pyplot as plt

        from ..plots import mark_exact_zeros, mark_paper_inits, plot_vs_init_std

        curve = self.probe.curve(self.GRID)
        fig, ax = plt.subplots(figsize=(4.6, 3.2))
        plot_vs_init_std(curve.init_std, curve.cls_relative_change, ax=ax, logy=True,
                         ylabel="[CLS] relative change at init", label="mean over sentences")
        mark_paper_inits(ax, legend=False)
        slider = f"slider: {self.summary['init_std']:.1e}"
        if self.summary["cls_relative_change"] == 0:  # exactly the base model: no point on a log axis
            mark_exact_zeros(ax, [self.summary["init_std"]], color="tab:red", label=f"{slider}, exactly 0")
        else:
            ax.plot([self.summary["init_std"]], [self.summary["cls_relative_change"]], "o", color="tab:red",
                    markersize=9, label=slider)
        ax.legend(fontsize=7, loc="upper left")
        return fig


# --- study explorer: stored run records (notebooks 03 and 05) ----------------------------------------------

def load_span_ablations(study: str = "ablation_cpu") -> dict[str, pd.DataFrame]:
    """The layer-span ablation tables of a study (<study>/layer_ablation/layer_ablation_<task>.csv), by task.

    Each table gets the attrs `plot_span_heatmap` uses for its title (task, split, metric, n_layers).
    """
    from ..sweeps.aggregate import study_dir, task_label

    tables = {}
    for path in sorted((study_dir(study) / "layer_ablation").glob("layer_ablation_*.csv")):
        task = path.stem.removeprefix("layer_ablation_")
        df = pd.read_csv(path)
        df[["first", "last"]] = df[["first", "last"]].astype("Int64")
        df.attrs.update(task=task_label(task), split="dev", metric=df["metric"].iloc[0],
                        n_layers=int(df["last"].max()) + 1)
        tables[task] = df
    return tables


def budget_table(curve: pd.DataFrame, task: str, budget: float) -> pd.DataFrame:
    """Per method, the setting chosen on validation among those that train at most `budget` parameters per
    task, and its dev score (dev never chooses). Indexed by method key (adapterlib.vocab; the view shows labels).

    `curve` is `aggregate.size_curve(...)` (each point already at its lr chosen on validation). Rows: every
    method of the task; a method with no setting under the budget has NaN scores. "vs full" is the dev score
    minus full fine-tuning's.
    """
    rows = curve[curve["task"] == task]
    full = rows.loc[rows["policy"] == "full", "dev_mean"]
    full_score = float(full.iloc[0]) if len(full) else float("nan")
    out = []
    for method, part in rows.groupby("method", sort=False):
        within = part[part["trainable"] <= budget]
        best = within.loc[within["val_mean"].idxmax()] if len(within) else None
        setting = "" if best is None else (f"m={best['adapter_size']:g}" if best["policy"] == "adapter" else
                                           f"k={best['top_k']:g}" if best["policy"] == "top_k" else "-")
        out.append({"method": method, "best setting": setting if best is not None else "none within budget",
                    "trained parameters": np.nan if best is None else best["trainable"],
                    "dev score": np.nan if best is None else best["dev_mean"],
                    "vs full": np.nan if best is None else best["dev_mean"] - full_score})
    return pd.DataFrame(out).set_index("method").astype({"trained parameters": "Int64"})


def span_table(ablation: pd.DataFrame, first: int, last: int) -> pd.DataFrame:
    """Score with the adapters of layers first..last removed, next to nothing removed and all removed."""
    from ..studies.ablation import span_summary

    summary = span_summary(ablation)
    row = ablation[(ablation["first"] == first) & (ablation["last"] == last)].iloc[0]
    top = int(ablation["last"].max())
    rows = [("nothing removed", "-", summary["none_removed"]),
            (f"layers {first}-{last} removed" if first != last else f"layer {first} removed", row["removed"],
             float(row["score"])),
            (f"all removed (0-{top})", f"0-{top}", summary["all_removed"])]
    table = pd.DataFrame(rows, columns=["case", "span", "score"]).set_index("case")
    table["drop"] = summary["none_removed"] - table["score"]
    table.attrs["metric"] = summary["metric"]
    return table


class StudyExplorer:
    """Browse the stored studies: score vs trained parameters (size_cpu) and layer-span heat maps (ablation_cpu).

    Controls: task, view ("score vs parameters" | "layer-span ablation"), a parameter-budget slider
    (size view: the best each method reaches within the budget) and a layer-range slider (ablation
    view: which adapters are removed). `self.table` is the current table, `self.view` its HTML,
    `self.image` the current figure as PNG. Nothing is trained or scored: it reads run records.
    """

    VIEWS = ("score vs parameters", "layer-span ablation")

    def __init__(self, size_study: str = "size_cpu", ablation_study: str = "ablation_cpu", task: str | None = None,
                 view: str = "score vs parameters", budget: float | None = None):
        import ipywidgets as w

        from ..sweeps.aggregate import load_study, size_curve, task_label

        self.curve = size_curve(load_study(size_study))
        self.ablations = load_span_ablations(ablation_study)
        tasks = list(dict.fromkeys(list(self.curve["task"]) + list(self.ablations)))
        self.task = w.Dropdown(options=[(task_label(t), t) for t in tasks], value=task or tasks[0], description="task")
        self.mode = w.ToggleButtons(options=list(self.VIEWS), value=view, description="view",
                                    style={"button_width": "auto"})
        budgets = sorted(set(int(t) for t in self.curve["trainable"]))
        self.budget = w.SelectionSlider(options=[(_short(b), b) for b in budgets], description="parameter budget",
                                        style={"description_width": "initial"},
                                        value=min(budgets, key=lambda b: abs(b - (budget or budgets[-1]))),
                                        continuous_update=False)
        n_layers = max((df.attrs["n_layers"] for df in self.ablations.values()), default=1)
        self.span = w.IntRangeSlider(value=(0, 0), min=0, max=n_layers - 1, description="layers removed",
                                     continuous_update=False, style={"description_width": "initial"})
        self.view = w.HTML()
        self.image = w.Image(format="png")
        for control in (self.task, self.mode, self.budget, self.span):
            control.observe(lambda _change: self.update(), names="value")
        # the view (caption + table) spans the whole width above the figure: beside it, JupyterLab cut the caption
        # off ("LA dev mcc: ...")
        self.widget = explorer_box([w.HBox([self.task, self.mode]), w.HBox([self.budget, self.span]), self.view,
                                    self.image], static=lambda: _static_html(self.view, self.image))
        self.widget.add_class("adapterlib-study-explorer")
        self.view.add_class("adapterlib-view")
        self.update()

    def update(self) -> pd.DataFrame:
        size_view = self.mode.value == self.VIEWS[0]
        self.budget.layout.display = None if size_view else "none"
        self.span.layout.display = None if not size_view else "none"
        if size_view:
            self.table = budget_table(self.curve, self.task.value, self.budget.value)
            caption = (f"<b>{self.task.label}</b>: the dev score of each method's setting chosen on validation among "
                       f"those training at most <b>{self.budget.value:,}</b> parameters per task.")
            html = display_labels(self.table).to_html(na_rep="-", float_format=lambda v: f"{v:,.2f}", index_names=False,
                                      formatters={"trained parameters": lambda v: "-" if pd.isna(v) else f"{v:,.0f}"})
        elif self.task.value not in self.ablations:
            self.table = pd.DataFrame()
            caption, html = f"No layer-span ablation stored for <b>{self.task.label}</b>.", ""
        else:
            first, last = self.span.value
            self.table = span_table(self.ablations[self.task.value], first, last)
            caption = (f"<b>{self.task.label}</b> dev {self.table.attrs['metric']}: the adapters of layers "
                       f"<b>{first}..{last}</b> switched off at inference (no retraining).")
            html = self.table.to_html(float_format=lambda v: f"{v:.2f}", index_names=False)
        self.view.value = f"<p>{caption}</p>" + html
        self.image.value = _png(self.figure())
        return self.table

    def figure(self):
        import matplotlib.pyplot as plt
        from matplotlib.patches import Rectangle

        from ..plots import plot_size_curve, plot_span_heatmap

        if self.mode.value == self.VIEWS[0]:
            fig, ax = plt.subplots(figsize=(5.4, 3.6))
            plot_size_curve(self.curve[self.curve["task"] == self.task.value], ax=ax)
            if self.budget.value < self.budget.options[-1][1]:  # shade what the budget excludes, if anything
                ax.axvspan(self.budget.value * 1.05, ax.get_xlim()[1], color="grey", alpha=0.15, lw=0,
                           label="over the budget")
                ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)  # outside,
                # as plot_size_curve places it: never over the data
            return fig
        fig, ax = plt.subplots(figsize=(5.0, 4.2))
        if self.task.value in self.ablations:
            plot_span_heatmap(self.ablations[self.task.value], ax=ax)
            first, last = self.span.value
            ax.add_patch(Rectangle((last - 0.5, first - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2.5))
        else:
            ax.set_axis_off()
        return fig


def _short(n: int) -> str:
    """24590 -> '24.6k', 2377730 -> '2.38M' (slider labels)."""
    for div, unit in ((1e6, "M"), (1e3, "k")):
        if n >= div:
            return f"{n / div:.3g}{unit}"
    return str(n)
