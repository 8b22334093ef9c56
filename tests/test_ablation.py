"""Layer-span ablation (paper Fig. 6) on a tiny random BERT and a tiny synthetic SST-2."""
import matplotlib

matplotlib.use("Agg")

import math

import pytest
import torch

from adapterlib import AdapterConfig, adapter_slots, add_adapters, set_trainable
from adapterlib.data import load_glue, tokenize_glue
from adapterlib.plots import plot_span_heatmap
from adapterlib.studies.ablation import span_ablation, span_matrix, span_summary, spans
from adapterlib.train import evaluate, make_loader


@pytest.fixture
def sst2_dir(tiny_glue_dir, tmp_path, monkeypatch):
    """The shared synthetic GLUE folder (its SST-2 has 40 dev rows) and a private tokenisation cache."""
    monkeypatch.setenv("ADAPTERLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GLUE_DIR", raising=False)
    return tiny_glue_dir


def tiny_with_adapters(make_tiny, std, layers=3):
    model = make_tiny(num_hidden_layers=layers)
    add_adapters(model, AdapterConfig(size=8, init_std=std))
    return set_trainable(model, "adapter").eval()


def test_spans_are_all_contiguous_ranges():
    assert spans(3) == [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)]
    assert len(spans(12)) == 12 * 13 // 2


def test_table_rows_baseline_and_all_removed(make_tiny, sst2_dir, word_tokenizer):
    torch.manual_seed(0)
    model = tiny_with_adapters(make_tiny, std=0.5)  # large init: removing adapters changes the outputs
    df = span_ablation(model, word_tokenizer, "sst2", glue_dir=sst2_dir)
    assert len(df) == 1 + 3 * 4 // 2
    assert df["removed"].tolist() == ["none", "0", "0-1", "0-2", "1", "1-2", "2"]
    assert df["first"].isna().tolist() == [True] + [False] * 6
    assert (df["metric"] == "accuracy").all() and (df["score"] == df["accuracy"]).all()
    assert df["n_removed"].tolist() == [0, 1, 2, 3, 1, 2, 1]
    assert df.attrs["n_examples"] == 40 and df.attrs["n_layers"] == 3
    assert all(slot.enabled for _, _, slot in adapter_slots(model))  # every adapter switched back on

    data = tokenize_glue(load_glue("sst2", sst2_dir, splits=["dev"]), word_tokenizer)["dev"]
    loader = make_loader(data, word_tokenizer, 16, shuffle=False)
    assert df["loss"].iloc[0] == pytest.approx(evaluate(model, loader, "sst2")["loss"], abs=1e-6)
    for _, _, slot in adapter_slots(model):
        slot.enabled = False
    off = evaluate(model, loader, "sst2")
    all_removed = df[df["removed"] == "0-2"].iloc[0]
    assert all_removed["loss"] == pytest.approx(off["loss"], abs=1e-6)
    assert df["loss"].nunique() > 1  # removing adapters did change the model's outputs


def test_identity_adapters_change_nothing(make_tiny, sst2_dir, word_tokenizer):
    model = tiny_with_adapters(make_tiny, std=0.0)  # exact identity: removing them is a no-op
    df = span_ablation(model, word_tokenizer, "sst2", glue_dir=sst2_dir, max_examples=17)
    assert df.attrs["n_examples"] == 17
    assert (df["drop"] == 0).all() and df["loss"].nunique() == 1


def test_matrix_summary_and_plot(make_tiny, sst2_dir, word_tokenizer):
    model = tiny_with_adapters(make_tiny, std=0.5)
    df = span_ablation(model, word_tokenizer, "sst2", glue_dir=sst2_dir)
    grid = span_matrix(df)
    assert grid.shape == (3, 3) and math.isnan(grid[2, 0]) and not math.isnan(grid[0, 2])
    assert grid[1, 2] == df.loc[df["removed"] == "1-2", "score"].item()
    summary = span_summary(df)
    assert summary["none_removed"] == df["score"].iloc[0]
    assert summary["all_removed"] == df.loc[df["removed"] == "0-2", "score"].item()
    assert set(summary["single_layer_scores"]) == {0, 1, 2}
    assert summary["halves"] == ("0-0", "1-2")  # 3 layers: the lower half is the smaller one
    assert summary["lower_half_removed"] == df.loc[df["removed"] == "0", "score"].item()
    assert summary["upper_half_removed"] == df.loc[df["removed"] == "1-2", "score"].item()
    assert summary["max_single_layer_drop"] == max(summary["none_removed"] - s
                                                   for s in summary["single_layer_scores"].values())
    ax = plot_span_heatmap(df)
    assert ax.get_xlabel() and ax.get_ylabel() and len(ax.texts) == 6
    ax = plot_span_heatmap(df, value="drop")
    assert "drop" in ax.figure.axes[-1].get_ylabel()


def test_needs_adapters(make_tiny, sst2_dir, word_tokenizer):
    with pytest.raises(ValueError, match="no adapters"):
        span_ablation(make_tiny(), word_tokenizer, "sst2", glue_dir=sst2_dir)


@pytest.mark.parametrize("precision", ["no", "bf16"])
def test_layer_ablation_script_scores_as_the_run_was_scored(tiny_model_dir, sst2_dir, tmp_path, precision, capsys):
    """sweeps/layer_ablation.py on a study folder: the "nothing removed" row is the record's dev score (the run's
    own max_length and precision: a bf16 run is scored under bf16 autocast), and every span gets a row."""
    import importlib.util
    import json
    from pathlib import Path

    import pandas as pd

    import adapterlib as al
    config = al.TrainConfig(task="sst2", model=str(tiny_model_dir), glue_dir=str(sst2_dir), batch_size=8, epochs=2,
                            lr=1e-2, max_length=24, adapter_size=4, head_input="mean", mixed_precision=precision)
    record = al.train(config, output_dir=tmp_path / "study" / "runs", progress=False, save_checkpoint=True)
    assert json.loads((tmp_path / "study" / "runs" / f"{record['run_id']}.json").read_text())["checkpoint"]
    path = Path(__file__).resolve().parents[1] / "sweeps" / "layer_ablation.py"
    spec = importlib.util.spec_from_file_location("layer_ablation_script", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main([str(tmp_path / "study")]) == 0
    df = pd.read_csv(tmp_path / "study" / "layer_ablation" / "layer_ablation_sst2.csv")
    assert df["removed"].iloc[0] == "none" and len(df) == 1 + len(spans(2))
    assert df["score"].iloc[0] == pytest.approx(record["dev_score"], abs=1e-3)
    # the same batches as train scored, under the same precision: equal to rounding (bf16 vs fp32 differ by ~1e-5,
    # below the CSV's 4 decimals, so the unrounded loss is compared)
    model, tokenizer = al.load_base_model(str(tiny_model_dir), num_labels=2)
    al.load_adapter(model, tmp_path / "study" / "runs" / record["checkpoint"])
    with script.scored_as_trained(record["config"]):
        again = span_ablation(model, tokenizer, "sst2", glue_dir=sst2_dir, max_length=24)
    assert again["loss"].iloc[0] == pytest.approx(record["dev"]["dev"]["loss"], rel=1e-6)
    assert f"dev score: {record['dev_score']:.2f}" in capsys.readouterr().out   # the run record's
    png = tmp_path / "study" / "layer_ablation" / "layer_ablation_sst2.png"
    assert png.is_file()
    png.unlink()   # --replot redraws it from the CSV alone (no checkpoint needed)
    (tmp_path / "study" / "runs" / record["checkpoint"]).rename(tmp_path / "moved")
    assert script.main([str(tmp_path / "study"), "--replot"]) == 0 and png.is_file()
