"""Notebook 07's tables (adapterlib.course.after_houlsby), on hand-written records of the v3 studies' shape: the
Pareto points (lr chosen on validation), the best method within a budget, the cost table read from the committed
benchmark, the implementation dial's bootstrap intervals, and a study that has not run yet."""
import json
import math

import numpy as np
import pytest

from adapterlib.config import TrainConfig
from adapterlib.course import after_houlsby as ah
from adapterlib.train import run_id

BASE = 22_565_376


def write(folder, task, method, lr, seed, val, dev, trainable, metric="mcc", status="ok", **options):
    cfg = TrainConfig(task=task, method=method, lr=lr, seed=seed, epochs=20, patience=3, head_input="mean",
                      **options).to_dict()
    rid = run_id(TrainConfig(**cfg))
    rec = {"run_id": rid, "status": status, "task": task, "policy": cfg["policy"], "config": cfg, "seed": seed,
           "metric": metric, "selected": {"epoch": 3.0, f"validation_{metric}": val}, "dev_score": dev,
           "params": {"trainable": trainable, "frozen": BASE, "base": BASE, "percent_of_base": 100 * trainable / BASE},
           "timing": {"wall_s": 60.0, "epochs_run": 5}, **({"error": "boom"} if status == "failed" else {})}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{rid}.json").write_text(json.dumps(rec))
    return rid


@pytest.fixture
def methods_study(tmp_path):
    runs = tmp_path / "methods_v3" / "runs"
    # Houlsby m=16: 1.2e-3 wins on validation (dev lower than 3.6e-3's, which validation does not choose)
    write(runs, "cola", "houlsby", 1.2e-3, 0, 40.0, 38.0, 163_010, adapter_size=16)
    write(runs, "cola", "houlsby", 3.6e-3, 0, 35.0, 45.0, 163_010, adapter_size=16)
    for seed, dev in ((1, 40.0), (2, 42.0)):
        write(runs, "cola", "houlsby", 1.2e-3, seed, 39.0, dev, 163_010, adapter_size=16)
    write(runs, "cola", "houlsby", 1e-3, 0, 41.0, 41.0, 310_658, adapter_size=32)   # bigger, better
    write(runs, "cola", "lora", 1.5e-3, 0, 37.0, 36.0, 148_226, lora_r=16)
    write(runs, "cola", "bitfit", 3e-3, 0, 30.0, 39.5, 26_498)                       # cheap; dev high, val low
    write(runs, "cola", "ia3", 3e-3, 0, 20.0, 20.0, 16_898, status="failed")         # failed: no point
    return tmp_path


def test_method_points_choose_on_validation_and_mark_the_pareto_front(methods_study):
    points = ah.method_points(ah.load_records_frame(["methods_v3", "curve_v3"], methods_study))
    got = {r["label"]: r for _, r in points.iterrows()}
    assert set(got) == {"houlsby m=16", "houlsby m=32", "lora r=16", "bitfit"}
    h16 = got["houlsby m=16"]
    assert h16["lr"] == 1.2e-3 and h16["n_seeds"] == 3 and h16["dev_mean"] == pytest.approx(40.0)
    assert h16["dev_sem"] == pytest.approx(np.std([38.0, 40.0, 42.0], ddof=1) / math.sqrt(3))
    # Pareto on dev: bitfit (26k, 39.5), houlsby m=16 (163k, 40.0), houlsby m=32 (311k, 41.0); lora r=16 is beaten
    # by bitfit with fewer parameters
    assert {k for k, r in got.items() if r["pareto"]} == {"bitfit", "houlsby m=16", "houlsby m=32"}


def test_best_under_budget_chooses_on_validation(methods_study):
    points = ah.method_points(ah.load_records_frame(["methods_v3"], methods_study))
    small = ah.best_under_budget(points, 0.2).iloc[0]    # only bitfit fits 0.2% of the base
    assert small["best (validation)"] == "bitfit" and small["runner-up"] is None
    assert small["settings within budget"] == 1
    mid = ah.best_under_budget(points, 1.0).iloc[0]      # houlsby m=16 (val 39.7 mean) beats lora (37) and bitfit (30)
    assert mid["best (validation)"] == "houlsby m=16" and mid["runner-up"] == "lora r=16"
    assert mid["dev"] == pytest.approx(40.0) and mid["n_seeds"] == 3
    big = ah.best_under_budget(points, 2.0).iloc[0]
    assert big["best (validation)"] == "houlsby m=32" and big["runner-up"] == "lora r=16"  # another method
    none = ah.best_under_budget(points, 0.01).iloc[0]
    assert none["best (validation)"] is None and math.isnan(none["dev"])


def test_a_study_that_has_not_run_says_so(tmp_path):
    status = ah.study_status("methods_v3", tmp_path)
    assert status["exists"] is False and status["n_records"] == 0 and status["planned"] == 205
    assert "has not run yet" in ah.status_line(status)
    frame = ah.load_records_frame(["methods_v3", "impl_v3"], tmp_path)
    assert ah.method_points(frame).empty and ah.implementation_dial(frame).empty


def test_study_status_counts_the_records(methods_study):
    status = ah.study_status("methods_v3", methods_study)
    assert status["exists"] and status["n_records"] == 8 and status["n_ok"] == 7


def test_cost_table_reads_the_committed_benchmark():
    data = json.loads(ah.COST_FILE.read_text())
    table = ah.cost_table().set_index("method")
    assert set(table.index) == set(data["step"])
    assert table.loc["full", "step_ratio"] == 1.0
    assert table.loc["lora", "infer_merged_ratio"] == data["infer"]["lora_merged"]["ratio"]
    assert math.isnan(table.loc["houlsby", "infer_merged_ratio"])   # nonlinear: cannot merge
    assert table.loc["houlsby", "memory_ratio"] == data["memory"]["houlsby"]["ratio"]


def test_the_dial_gives_each_variant_its_difference_from_the_paper_with_an_interval(tmp_path):
    runs = tmp_path / "impl_v3" / "runs"
    for lr, val in ((4e-4, 30.0), (1.2e-3, 40.0)):  # the paper: 1.2e-3 chosen
        for seed, dev in enumerate((50.0, 51.0, 52.0) if lr == 1.2e-3 else (60.0,)):
            write(runs, "cola", "houlsby", lr, seed, val, dev, 163_010, adapter_size=16)
    for seed, dev in enumerate((40.0, 41.0, 42.0)):   # LayerNorms frozen: clearly worse
        write(runs, "cola", "houlsby", 1.2e-3, seed, 35.0, dev, 153_026, adapter_size=16, train_layernorm=False)
    for seed, dev in enumerate((49.0, 53.0, 51.0)):   # swish: no clear difference
        write(runs, "cola", "houlsby", 1.2e-3, seed, 39.0, dev, 163_010, adapter_size=16, nonlinearity="swish")
    write(runs, "cola", "houlsby", 1.2e-3, 0, 39.0, 45.0, 163_010, adapter_size=16, init_std=0.001)  # one seed
    dial = ah.implementation_dial(ah.load_records_frame(["impl_v3"], tmp_path)).set_index("variant")
    assert set(dial.index) == {"paper", "LayerNorms frozen", "swish", "adapter-bert"}
    paper, frozen, swish, bert = (dial.loc[v] for v in ("paper", "LayerNorms frozen", "swish", "adapter-bert"))
    assert paper["lr"] == 1.2e-3 and paper["n_seeds"] == 3 and paper["diff"] == 0
    assert paper["dev_low"] >= 50.0 and paper["dev_high"] <= 52.0
    assert frozen["diff"] == pytest.approx(-10.0) and frozen["diff_high"] < 0
    assert swish["diff"] == pytest.approx(0.0) and swish["diff_low"] < 0 < swish["diff_high"]
    assert bert["n_seeds"] == 1 and math.isnan(bert["diff_low"]) and bert["diff"] == pytest.approx(-6.0)
    answer = ah.dial_answer(dial.reset_index())
    assert "**LayerNorms frozen**" in answer and "**adapter-bert**" in answer and "**swish**" in answer


@pytest.mark.parametrize("key, name", [
    (("gelu", 0.01, True), "paper"), (("gelu", 0.001, True), "adapter-bert"),
    (("swish", 0.02, False), "AdapterHub Houlsby"), (("swish", 0.01, True), "swish"),
    (("gelu", 0.02, True), "std 0.02"), (("gelu", 0.01, False), "LayerNorms frozen")])
def test_variant_names(key, name):
    assert ah.variant_name(*key) == name


def test_budget_explorer_and_plots(methods_study):
    pytest.importorskip("ipywidgets")
    points = ah.method_points(ah.load_records_frame(["methods_v3"], methods_study))
    explorer = ah.BudgetExplorer(points, budget_percent=0.2)
    assert explorer.table.iloc[0]["best (validation)"] == "bitfit" and explorer.image.value[:4] == b"\x89PNG"
    explorer.budget.value = max(v for _, v in explorer.budget.options)
    assert explorer.table.iloc[0]["best (validation)"] == "houlsby m=32"
    from adapterlib.course.widgets import FALLBACK_TEXT
    bundle = explorer.widget._repr_mimebundle_()  # before a kernel runs: a static view, not the VBox repr
    assert bundle["text/plain"] == FALLBACK_TEXT and explorer.view.value in bundle["text/html"]
    from adapterlib.plots import plot_costs
    axes = plot_costs(ah.cost_table())
    assert len(axes[0].patches) == 2 * len(ah.cost_table())
