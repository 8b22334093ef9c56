"""Plot helpers and the parameter explorer: exact counts, and figures that draw without a display."""
import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from adapterlib import model_from_preset, param_report, set_trainable
from adapterlib import plots
from adapterlib.widgets import MODELS, SIZES, ParamExplorer, adapter_report, param_table, storage_table


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
    assert labelled == [plots.METHOD_STYLE[m]["label"] for m in ("adapter", "top_k", "full")]
    full_line = [line for line in ax.get_lines() if line.get_label().startswith("_")]
    assert len(full_line) == 1 and list(full_line[0].get_ydata()) == [83.0, 83.0]  # dashed full fine-tuning level
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
