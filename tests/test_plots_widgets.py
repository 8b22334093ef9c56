"""Plot helpers and the parameter explorer: exact counts, and figures that draw without a display."""
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from adapterlib import model_from_preset, param_report, plots, set_trainable
from adapterlib.course.widgets import MODELS, SIZES, ParamExplorer, adapter_report, param_table, storage_table
from adapterlib.sweeps.aggregate import RESULTS_DIR


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _png_bytes(fig) -> int:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.tell()


def test_adapter_architecture_figure_is_small_and_labelled():
    plots.use_course_style()
    fig = plots.draw_adapter_architecture()
    assert len(fig.axes) == 2
    texts = {t.get_text() for ax in fig.axes for t in ax.texts}
    assert {"Adapter", "Layer norm", "Multi-headed attention", "Nonlinearity (GELU)"} <= texts
    assert "attention.output.dropout.adapter" in texts  # the HuggingFace path of the first adapter
    assert _png_bytes(fig) < 100_000


def test_score_vs_params_log_axis_one_line_per_method():
    rows = [dict(method="adapter", trainable=1e5, score=80.0, label="m=8"),
            dict(method="adapter", trainable=1e6, score=82.0, label="m=64"),
            dict(method="top_k", trainable=2e6, score=79.0, label="k=1"),
            dict(method="full", trainable=2e7, score=83.0, label="")]
    ax = plots.score_vs_params(pd.DataFrame(rows))
    assert ax.get_xscale() == "log"
    labelled = [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")]
    assert labelled == [plots.METHOD_STYLE[m]["label"] for m in ("adapter", "top_k", "full")] + [plots.FULL_LINE_LABEL]
    full_line = [line for line in ax.get_lines() if line.get_label() == plots.FULL_LINE_LABEL]
    assert len(full_line) == 1 and list(full_line[0].get_ydata()) == [83.0, 83.0]  # dashed full fine-tuning level
    assert plots.FULL_LINE_LABEL in [t.get_text() for t in ax.get_legend().get_texts()]  # and in the legend
    assert sorted(t.get_text() for t in ax.texts) == ["k=1", "m=64", "m=8"]
    assert ax.get_xlabel() and ax.get_ylabel()


def test_init_std_plot_marks_paper_and_code_inits():
    ax = plots.plot_vs_init_std([1e-7, 1e-2, 1.0], [80, 80, 60], ylabel="accuracy (%)")
    plots.mark_paper_inits(ax)
    assert ax.get_xscale() == "log"
    vertical = sorted(line.get_xdata()[0] for line in ax.get_lines()[1:])
    assert vertical == [1e-3, 1e-2]


def test_storage_plot_matches_total_multiple():
    report = adapter_report("bert-base", 64)
    ax = plots.plot_storage_vs_tasks({"adapters": report}, n_max=9)
    y = ax.get_lines()[0].get_ydata()
    assert y[-1] == pytest.approx(report.total_multiple(9))
    assert y[0] == pytest.approx(report.total_multiple(1))


def test_param_table_exact_paper_counts():
    large = param_table("bert-large", 64)
    assert large.loc["adapters", "parameters"] == 6_343_680      # PAPER.md parameter arithmetic
    assert large.loc["layernorm", "parameters"] == 100_352
    assert large.loc["head", "parameters"] == 1024 * 2 + 2
    assert large.loc["trainable per task", "parameters"] == 6_343_680 + 100_352 + 2050
    base = param_table("bert-base", 8)
    assert base.loc["adapters", "parameters"] == 313_536
    assert base.loc["layernorm", "parameters"] == 38_400
    total = base.loc["total", "parameters"]
    assert total == base.loc["trainable per task", "parameters"] + base.loc["frozen (shared)", "parameters"]


def test_storage_table_reproduces_table1_budget():
    table = storage_table("bert-large", 64, n_tasks=9)
    adapters = table.loc["adapters (m=64)"]
    assert round(adapters["% of non-embedding base"], 1) == 2.1
    assert round(adapters["stored for 9 tasks (x base)"], 1) == 1.2
    assert round(table.loc["full fine-tuning", "stored for 9 tasks (x base)"], 1) == 9.0
    full = model_from_preset("bert-large")
    set_trainable(full, "full")
    assert table.loc["full fine-tuning", "trained per task"] == param_report(full).trainable


def test_full_fine_tuning_trains_100_percent_of_the_base_head_aside():
    """Full fine-tuning trains every base parameter: 100%, not 100.003% (the new head's 770 parameters on MiniLM
    are counted aside, in their own column/row)."""
    full = model_from_preset("minilm", device="meta")
    set_trainable(full, "full")
    report = param_report(full)
    assert report.trainable == report.base + report.head and report.head == 384 * 2 + 2
    assert report.percent_of_base_head_aside == 100.0
    trainable_row = next(line for line in str(report).splitlines() if line.startswith("trainable"))
    assert trainable_row.split()[-1] == "100.000%"
    total_row = next(line for line in str(report).splitlines() if line.startswith("total"))
    assert total_row.split()[-1] == "100.000%" and report.percent_total_head_aside == 100.0
    table = storage_table("minilm", 64, n_tasks=9)
    assert table.loc["full fine-tuning", "% of base"] == 100.0
    assert (table["of which new head"] == 770).all()
    adapters = param_table("minilm", 64)
    assert adapters["% of base"].isna().tolist() == [False, False, True, False, False, False]  # the head: new
    report = adapter_report("minilm", 64)
    assert adapters.loc["total", "% of base"] == round(100 + 100 * report.adapter_total / report.base, 3)


def test_explorer_tables_have_no_index_name_row():
    import re

    explorer = ParamExplorer(model="minilm", size=64, n_tasks=9)
    heads = re.findall(r"<thead>(.*?)</thead>", explorer.view.value, flags=re.S)
    assert len(heads) == 2 and all(head.count("<tr") == 1 for head in heads)
    assert ">new<" in explorer.view.value  # the head row's share of the base


@pytest.mark.committed
def test_cost_table_counts_minilm_as_the_v2_studies_build_it():
    """head_input="mean" counts MiniLM without its pooler, as TrainConfig(head_input="mean") builds it: the
    counts equal a committed pilot record's, and the paper's numbers stay on the BERT-large rows only."""
    import json

    from adapterlib.course.costs import cost_table
    from adapterlib.sweeps.aggregate import RESULTS_DIR
    pooled = cost_table(("minilm",), sizes=(64,), paper=False).set_index("method")
    table = cost_table(("bert-large", "minilm"), sizes=(64,), head_input={"minilm": "mean"})
    mean = table[table["model"] == "minilm"].set_index("method")
    assert (mean["head input"] == "mean").all()
    assert (table[table["model"] == "bert-large"]["head input"] == "pooler").all()
    pooler = 384 * 384 + 384
    full = "full fine-tuning"
    assert mean.loc[full, "trained per task"] == pooled.loc[full, "trained per task"] - pooler
    assert mean.loc["adapters (64)", "trained per task"] == pooled.loc["adapters (64)", "trained per task"]
    assert mean["paper: % per task"].isna().all()
    assert table[table["model"] == "bert-large"]["paper: % per task"].notna().any()
    checked = set()
    for path in (RESULTS_DIR / "pilot_v2" / "runs").glob("cola-*-s0-mean-es3-bf16-*.json"):  # built by train()
        rec = json.loads(path.read_text())
        method = "full fine-tuning" if rec["policy"] == "full" else f"adapters ({rec['config']['adapter_size']})"
        if method in mean.index:
            assert mean.loc[method, "trained per task"] == rec["params"]["trainable"], path.name
            params = rec["params"]
            head_aside = 100.0 * (params["trainable"] - params["head"]) / params["base"]
            assert mean.loc[method, "% of base"] == pytest.approx(head_aside, abs=1e-3)
            checked.add(method)
    assert checked == {"full fine-tuning", "adapters (64)"}


def test_explorer_updates_on_widget_changes():
    explorer = ParamExplorer(model="bert-base", size=64, n_tasks=9)
    assert explorer.table.loc["trainable per task", "parameters"] == 2_379_264 + 38_400 + 1538
    explorer.model.value = "bert-large"
    assert explorer.table.loc["adapters", "parameters"] == 6_343_680
    explorer.size.value = 256
    assert explorer.table.loc["adapters", "parameters"] == 25_227_264
    assert "25,227,264" in explorer.view.value and "BERT-large" in explorer.view.value
    explorer.n_tasks.value = 3
    assert "stored for 3 tasks (x base)" in explorer.storage.columns
    assert list(explorer.model.options) == list(MODELS.items()) and explorer.size.options == SIZES


# --- init-std explorer: a tiny random BERT, so each forward pass costs milliseconds ---------------------------

TINY_SENTENCES = ["the cat sat on the mat .", "a big red bird is happy", "the movie was awful , not good ."]


@pytest.fixture(scope="module")
def tiny_probe(tiny_model_dir):
    from adapterlib.course.widgets import InitDriftProbe
    return InitDriftProbe(str(tiny_model_dir), sentences=TINY_SENTENCES, size=8)


def test_drift_probe_is_exact_identity_at_zero_and_grows_with_std(tiny_probe):
    zero = tiny_probe.per_sentence(0.0)
    assert list(zero["sentence"]) == TINY_SENTENCES
    assert (zero["[CLS] relative change"] == 0).all() and (zero["max |logit change|"] == 0).all()
    curve = tiny_probe.curve([1e-3, 1e-2, 1e-1, 1.0])["cls_relative_change"].tolist()
    assert all(a < b for a, b in zip(curve, curve[1:], strict=False)), curve
    # the correction W_up f(W_down h) is a product of two std-sized projections: ~100x per decade
    assert 30 < curve[2] / curve[1] < 300


def test_drift_probe_reference_is_the_base_model_and_results_are_cached(tiny_model_dir, tiny_probe):
    from adapterlib import load_base_model
    torch = pytest.importorskip("torch")
    torch.manual_seed(tiny_probe.seed)  # the probe seeds the new head the same way
    base, tokenizer = load_base_model(str(tiny_model_dir))
    with torch.no_grad():
        out = base.eval()(**tokenizer(TINY_SENTENCES, padding=True, return_tensors="pt"), output_hidden_states=True)
    assert torch.allclose(out.hidden_states[-1][:, 0], tiny_probe.base_cls, atol=1e-6)
    assert torch.allclose(out.logits, tiny_probe.base_logits, atol=1e-6)
    before = tiny_probe.forward_passes
    first = tiny_probe.drift(3e-2)
    assert tiny_probe.forward_passes == before + 1
    assert tiny_probe.drift(3e-2) == first and tiny_probe.forward_passes == before + 1  # cached
    rng = torch.get_rng_state()
    tiny_probe.drift(4e-2)
    assert torch.equal(rng, torch.get_rng_state())  # the caller's random stream is left alone


def test_init_drift_explorer_updates_table_caption_and_plot(tiny_probe):
    from adapterlib.course.widgets import InitDriftExplorer
    explorer = InitDriftExplorer(probe=tiny_probe, std=1e-2)
    assert explorer.std.min == -7 and explorer.std.max == 0 and explorer.std.value == pytest.approx(1e-2)
    at_paper = explorer.table.copy()
    html, png = explorer.view.value, explorer.image.value
    assert "init std 1.0e-02" in html and "paper (1e-2)" in html and "drift-table" in html
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    explorer.std.value = 1e-1
    assert explorer.summary["init_std"] == pytest.approx(1e-1)
    assert (explorer.table["[CLS] relative change"] > at_paper["[CLS] relative change"]).all()
    assert explorer.view.value != html and "init std 1.0e-01" in explorer.view.value
    assert explorer.image.value != png


# --- study explorer: the stored run records in data/results/ -------------------------------------------------

@pytest.fixture(scope="module")
def size_curve_cpu():
    from adapterlib.sweeps.aggregate import load_study, size_curve
    return size_curve(load_study("size_cpu"))


@pytest.mark.committed
def test_budget_table_chooses_on_validation_within_the_budget(size_curve_cpu):
    from adapterlib.course.widgets import budget_table
    curve = size_curve_cpu
    sst2 = curve[curve.task == "sst2"]
    everything = budget_table(curve, "sst2", budget=float(sst2.trainable.max()))
    for method, part in sst2.groupby("method"):  # the setting with the best validation score, reported on dev
        assert everything.loc[method, "dev score"] == pytest.approx(part.loc[part.val_mean.idxmax(), "dev_mean"])
    full = sst2.loc[sst2.policy == "full", "dev_mean"].iloc[0]
    assert everything.loc["full", "vs full"] == pytest.approx(0.0)
    assert everything.loc["adapter", "vs full"] == pytest.approx(everything.loc["adapter", "dev score"] - full)
    smallest = budget_table(curve, "sst2", budget=float(sst2.trainable.min()))
    only = smallest.dropna(subset=["dev score"])
    assert list(only.index) == [sst2.loc[sst2.trainable.idxmin(), "method"]]
    assert smallest.loc["full", "best setting"] == "none within budget"
    # a budget between two adapter sizes allows the smaller one only
    adapters = sst2[sst2.policy == "adapter"].sort_values("trainable")
    cut = budget_table(curve, "sst2", budget=float(adapters.trainable.iloc[1]))
    allowed = adapters.iloc[:2]
    assert cut.loc["adapter", "dev score"] == pytest.approx(allowed.loc[allowed.val_mean.idxmax(), "dev_mean"])
    assert cut.loc["adapter", "trained parameters"] <= adapters.trainable.iloc[1]


@pytest.mark.committed
def test_span_table_reads_the_stored_heat_map():
    from adapterlib.course.widgets import load_span_ablations, span_table
    from adapterlib.studies.ablation import span_matrix, span_summary
    tables = load_span_ablations("ablation_cpu")
    assert set(tables) == {"cola", "sst2"}
    df = tables["sst2"]
    assert df.attrs["n_layers"] == 6 and df.attrs["task"] == "SST-2"
    summary = span_summary(df)
    grid = span_matrix(df)
    table = span_table(df, 1, 3)
    assert table.loc["layers 1-3 removed", "score"] == pytest.approx(grid[1, 3])
    assert table.loc["layers 1-3 removed", "drop"] == pytest.approx(summary["none_removed"] - grid[1, 3])
    assert table.loc["nothing removed", "drop"] == 0
    assert table.loc["all removed (0-5)", "score"] == pytest.approx(summary["all_removed"])
    assert span_table(df, 2, 2).index[1] == "layer 2 removed"


@pytest.mark.committed
def test_study_explorer_controls_change_table_and_figure(size_curve_cpu):
    from adapterlib.course.widgets import StudyExplorer, span_table
    explorer = StudyExplorer(task="sst2")
    assert [v for _, v in explorer.task.options] == ["cola", "sst2"]
    assert explorer.budget.value == int(size_curve_cpu.trainable.max())  # default budget: everything
    html, png = explorer.view.value, explorer.image.value
    adapters = size_curve_cpu[(size_curve_cpu.task == "sst2") & (size_curve_cpu.policy == "adapter")]
    chosen = adapters.loc[adapters.val_mean.idxmax(), "adapter_size"]  # chosen on validation, not dev
    assert "SST-2" in html and explorer.table.loc["adapter", "best setting"] == f"m={chosen:g}"
    explorer.budget.value = explorer.budget.options[1][1]
    assert explorer.view.value != html and explorer.image.value != png
    assert explorer.table.loc["full", "best setting"] == "none within budget"
    explorer.mode.value = "layer-span ablation"
    assert explorer.budget.layout.display == "none" and explorer.span.layout.display is None
    explorer.span.value = (0, 5)
    assert explorer.table.equals(span_table(explorer.ablations["sst2"], 0, 5))
    assert "layers <b>0..5</b>" in explorer.view.value
    explorer.task.value = "cola"
    assert explorer.table.attrs["metric"] == "mcc"
    assert explorer.view in explorer.widget.children  # full width: the caption is not squeezed beside the figure


def test_glue_vs_paper_plot_has_one_short_tick_per_row_and_names_them_in_the_legend():
    import matplotlib.pyplot as plt
    import pandas as pd

    from adapterlib.plots import OURS_COLORS, plot_glue_vs_paper
    from adapterlib.vocab import label
    rows = [{"method": m, "task": t, "dev_mean": 80.0 + i, "dev_sem": 1.0, "metric": "accuracy",
             "paper (test)": 90.0 if m != "adapters_budget" else float("nan")}
            for i, m in enumerate(OURS_COLORS) for t in ("rte", "mrpc")]
    axes = plot_glue_vs_paper(pd.DataFrame(rows), floors={"rte": 52.7, "mrpc": 68.4})
    assert [t.get_text() for t in axes[0].get_xticklabels()] == ["full\nFT", "8-256", "within\n4%", "64"]
    legend = [t.get_text() for t in axes[0].figure.legends[0].get_texts()]
    assert all(any(label(m) in text for text in legend) for m in OURS_COLORS)
    plt.close("all")


@pytest.mark.committed
def test_a_majority_class_far_below_the_scores_is_a_legend_entry_not_a_line(size_curve_cpu):
    """SST-2's majority class (50.9) lies far below its size-study scores: drawing it would squash the
    differences, and a note inside the axes covered the lowest point (size_v2's top-1 on SST-2), so it is a legend
    entry; CoLA's (0.0) lies within reach of its scores and stays a dotted line."""
    axes = plots.plot_size_curve(size_curve_cpu, floors={"cola": 0.0, "sst2": 50.9})
    cola, sst2 = axes
    labels = axes[-1].get_legend().get_texts()
    assert any(t.get_text().startswith("SST-2 majority class (50.9): below") for t in labels)   # below the axis
    assert not [t for t in sst2.texts if "majority" in t.get_text()]   # no note written over the data
    assert any(list(line.get_ydata()) == [0.0, 0.0] for line in cola.get_lines())   # CoLA's floor: a line
    assert not any(list(line.get_ydata()) == [50.9, 50.9] for line in sst2.get_lines())
    low = sst2.get_ylim()[0]
    assert low > 50.9 and low <= size_curve_cpu[size_curve_cpu.task == "sst2"]["dev_mean"].min()


@pytest.mark.committed
def test_one_metric_label_convention_and_the_full_line_in_every_legend(size_curve_cpu):
    """The same metric reads the same on every axis (CoLA: "MCC (x100)", never "mcc (%)"), and the size curve's
    legend names full fine-tuning's dashed reference line."""
    from adapterlib.studies.ablation import load_study as load_ablation

    assert plots.metric_label("mcc") == "MCC (x100)" and plots.metric_label("accuracy") == "accuracy (%)"
    axes = plots.plot_size_curve(size_curve_cpu, floors=None)
    by_task = {a.get_title().split(":")[0]: a for a in axes}
    assert by_task["CoLA"].get_ylabel() == "CoLA dev MCC (x100)"
    assert by_task["SST-2"].get_ylabel() == "SST-2 dev accuracy (%)"
    legend = [t.get_text() for t in axes[-1].get_legend().get_texts()]
    assert plots.FULL_LINE_LABEL in legend or any(plots.FULL_LINE_LABEL in text for text in legend)
    init = pd.DataFrame([dict(task="cola", init_std=s, dev_mean=20.0, dev_sem=float("nan"), metric="mcc")
                         for s in (1e-3, 1e-2)])
    assert plots.plot_init_curve(init)[0].get_ylabel() == "CoLA dev MCC (x100)"
    tables = load_ablation(Path(RESULTS_DIR) / "ablation_v2")
    table, _ = tables["cola"]
    fig, ax = plt.subplots(figsize=(5.6, 4.6))
    plots.plot_span_heatmap(table, ax=ax)
    colorbar = [a for a in fig.axes if a is not ax][0]
    assert colorbar.get_ylabel() == "MCC (x100)"
    fig.canvas.draw()
    title, box = ax.title.get_window_extent(), fig.bbox
    assert box.x0 <= title.x0 and title.x1 <= box.x1 and title.y1 <= box.y1  # the title fits in the figure
