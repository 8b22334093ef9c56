"""adapterlib.vocab: one registry of methods (key, label, colour, row selector) that every table and plot uses."""
import matplotlib
import pandas as pd
import pytest

from adapterlib import vocab
from adapterlib.config import TRAIN_METHODS, policy_of_method
from adapterlib.sweeps import aggregate

matplotlib.use("Agg")


def test_every_training_method_has_one_entry():
    for method in TRAIN_METHODS:
        key = policy_of_method(method)
        assert key in vocab.METHODS and vocab.Policy(key).method == method
    assert set(vocab.TRAINING) == {policy_of_method(m) for m in TRAIN_METHODS}
    labels = [m.label for m in vocab.METHODS.values()]
    assert len(set(labels)) == len(labels)
    assert all(vocab.key_of(vocab.label(k)) == k and vocab.key_of(k) == k for k in vocab.METHODS)


def runs(percent: dict) -> pd.DataFrame:
    """A records frame of one task: full fine-tuning and adapters of sizes 8, 64, 256 (percent: % of the base)."""
    rows = []
    for i, (policy, size) in enumerate([("full", None), ("adapter", 8), ("adapter", 64), ("adapter", 256)]):
        pct = 100.0 if policy == "full" else percent[size]
        rows.append({"run_id": f"r{i}", "status": "ok", "task": "rte", "policy": policy, "adapter_size": size,
                     "top_k": None, "init_std": None, "lr": 1e-3, "epochs": 3, "seed": 0, "config_key": f"k{i}",
                     "selected_epoch": 1, "epochs_run": 3, "val_score": 60.0 + i, "dev_score": 55.0 + i,
                     "trainable": pct, "percent_of_base": pct, "percent_of_base_no_embedding": pct, "frozen": 100 - pct,
                     "base": 100.0, "metric": "accuracy"})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("budget", [4.0, 3.0, 12.0])
def test_the_budget_row_follows_the_budget_into_the_table_and_the_plot(budget, monkeypatch):
    """Changing the budget keeps its row in Table 1 and in its plot (the plot once keyed colours by the label
    "adapters (within 4%)", so another budget's row was silently left out)."""
    import matplotlib.pyplot as plt

    from adapterlib.plots import plot_glue_vs_paper

    monkeypatch.setattr(vocab, "BUDGET_PERCENT", budget)
    selection = aggregate.glue_selection(runs({8: 0.4, 64: 2.7, 256: 10.5}))
    budget_label = f"adapters (within {budget:g}%)"
    assert list(selection["method"]) == list(vocab.TABLE1)  # keys, whatever the budget
    chosen = selection.set_index("method").loc["adapters_budget", "adapter_size"]
    assert chosen == (256 if budget > 10.5 else 64)  # the largest size within the budget wins on validation
    assert list(aggregate.glue_table(runs({8: 0.4, 64: 2.7, 256: 10.5})).index) == list(selection["method"])
    axes = plot_glue_vs_paper(selection, floors={"rte": 52.7})
    ticks = [t.get_text() for t in axes[0].get_xticklabels()]
    assert ticks == ["full\nFT", "8-256", f"within\n{budget:g}%", "64"]
    colours = [matplotlib.colors.to_hex(line.get_color()) for line in axes[0].lines if line.get_marker() == "o"]
    assert colours == [matplotlib.colors.to_hex(vocab.METHODS[k].color) for k in vocab.TABLE1]
    legend = [t.get_text() for t in axes[0].figure.legends[0].get_texts()]
    assert any(budget_label in text for text in legend)
    plt.close("all")


def _o_colours(ax) -> list[str]:
    return [matplotlib.colors.to_hex(line.get_color()) for line in ax.lines if line.get_marker() == "o"]


def test_a_table_made_under_one_budget_keeps_its_budget_row_under_another(monkeypatch, tmp_path):
    """Tables carry keys, not labels: a selection aggregated (and written to CSV) under one budget keeps its budget
    row, in Table 1's place and colour, when the budget changes afterwards (its label then no longer matched)."""
    import matplotlib.pyplot as plt

    from adapterlib.plots import plot_glue_vs_paper

    selection = aggregate.glue_selection(runs({8: 0.4, 64: 2.7, 256: 10.5}))   # BUDGET_PERCENT 4
    selection.to_csv(tmp_path / "glue_selection.csv", index=False)
    table = aggregate.glue_table(runs({8: 0.4, 64: 2.7, 256: 10.5}))
    table.reset_index(names="method").to_csv(tmp_path / "glue_table.csv", index=False)
    monkeypatch.setattr(vocab, "BUDGET_PERCENT", 3.0)
    stored = pd.read_csv(tmp_path / "glue_selection.csv")
    assert list(stored["method"]) == list(vocab.TABLE1)
    assert list(pd.read_csv(tmp_path / "glue_table.csv", index_col="method").index) == list(vocab.TABLE1)
    expected = [matplotlib.colors.to_hex(vocab.METHODS[k].color) for k in vocab.TABLE1]
    for chosen in (selection, stored):
        axes = plot_glue_vs_paper(chosen, floors={"rte": 52.7})
        assert _o_colours(axes[0]) == expected   # every row, in Table 1's order and colour
        legend = [t.get_text() for t in axes[0].figure.legends[0].get_texts()]
        assert sum(vocab.label("adapters_budget") in text for text in legend) == 1
        plt.close("all")
    shown = vocab.display_labels(table)   # labels only for display, from the budget of now
    assert list(shown.index) == [vocab.label(k) for k in vocab.TABLE1] and "adapters (within 3%)" in shown.index
    assert shown["RTE"].tolist() == table["RTE"].tolist()
