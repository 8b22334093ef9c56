"""Notebooks 04-06 at preset smoke (papermill), and the reference tables they read.

The notebook tests execute each notebook (a minute or so each on 2 CPU cores) and assert on the
numbers it recorded with `record_results`. They read the GLUE copy bundled with adapterlib (or GLUE_DIR if set).
"""
import math
import os
import re
from pathlib import Path

import pytest

from adapterlib import adapter_param_formula
from adapterlib.studies.paper import DATA_DIR, TABLE1_COLUMNS, paper_table, table1_score, with_paper_scores
from adapterlib.vocab import key_of

ROOT = Path(__file__).resolve().parents[1]
PAPER_MD = DATA_DIR / "PAPER.md"  # the paper's facts, shipped with the project (a copy of ../shared/PAPER.md)
SHARED_PAPER_MD = ROOT.parent / "shared" / "PAPER.md"
GLUE = os.environ.get("GLUE_DIR") or None  # None: the GLUE copy bundled with adapterlib


@pytest.mark.committed
def test_shipped_paper_md_is_the_shared_one():
    """The tables below are checked against data/paper/PAPER.md; where the workspace's ../shared/PAPER.md is
    present (the team's copy), the shipped one must equal it byte for byte."""
    assert PAPER_MD.is_file()
    if SHARED_PAPER_MD.is_file():
        assert PAPER_MD.read_bytes() == SHARED_PAPER_MD.read_bytes()


def finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


# ----------------------------------------------------------------------------- reference tables

@pytest.mark.committed
def test_table1_is_papers_table_exactly():
    """Every cell of data/paper/table1.csv equals the Markdown Table 1 in PAPER.md."""
    lines = [ln for ln in PAPER_MD.read_text().splitlines() if ln.startswith("| full fine-tuning") or
             ln.startswith("| adapters (")]
    table = paper_table("table1").set_index("method")
    assert len(lines) == 3 == len(table)
    for line in lines:
        cells = [c.strip() for c in line.strip("|").split("|")]
        method, total, per_task, *scores = cells
        row = table.loc[key_of(method)]   # the paper's names, read as vocab keys
        assert row["total_params_multiple"] == float(total.rstrip("x"))
        assert row["params_per_task_percent"] == float(per_task.rstrip("%"))
        columns = ["CoLA", "SST-2", "MRPC", "STS-B", "QQP", "MNLI-m", "MNLI-mm", "QNLI", "RTE", "Total"]
        assert [row[c] for c in columns] == [float(s) for s in scores]
    assert table["source"].str.contains("Table 1").all()


@pytest.mark.committed
@pytest.mark.parametrize("name", ["table1", "dev_comparisons", "fig6_layer_ablation", "size_robustness"])
def test_every_number_is_stated_in_paper_md(name):
    text = PAPER_MD.read_text()
    df = paper_table(name)
    assert df["source"].notna().all()
    numbers = df.select_dtypes("number").stack().dropna()
    for value in numbers:
        assert any(re.search(rf"(?<![\d.]){re.escape(shown)}(?![\d])", text)
                   for shown in (f"{value:g}", f"{value:.1f}")), (name, value)


@pytest.mark.committed
def test_reference_helpers():
    assert (DATA_DIR / "table1.csv").is_file()
    assert table1_score("SST-2", "full") == 94.9 == table1_score("SST-2", "full fine-tuning")  # a key, or its label
    assert table1_score("rte") == 68.8
    assert set(TABLE1_COLUMNS.values()) <= set(paper_table("table1").columns)
    with pytest.raises(FileNotFoundError, match="known"):
        paper_table("nope")
    with pytest.raises(KeyError):
        table1_score("rte", "lora")


def test_with_paper_scores():
    import pandas as pd

    table = pd.DataFrame({"method": ["full", "adapters_64", "adapters_8_256", "layernorm", "full"],
                          "task": ["rte", "SST-2", "mnli", "rte", "wnli"]})
    out = with_paper_scores(table)["paper (test)"].tolist()
    assert out[:3] == [70.1, 94.2, 84.9] and all(math.isnan(x) for x in out[3:])


def fake_study(folder: Path, tasks=(("rte", "accuracy"),)) -> Path:
    """Run records in the shape `adapterlib.train` writes, per task: two full and three adapter runs."""
    import json

    runs = [("full", None, 2e-5, 60.0, 61.0), ("full", None, 1e-4, 70.0, 65.0), ("adapter", 64, 1e-3, 72.0, 66.0),
            ("adapter", 64, 3e-3, 71.0, 99.0), ("adapter", 8, 1e-3, 75.0, 67.0)]
    folder.mkdir(parents=True)
    for task, metric in tasks:
        for i, (policy, size, lr, val, dev) in enumerate(runs):
            rec = {"run_id": f"{task}-{i}", "status": "ok", "task": task, "policy": policy, "metric": metric,
                   "config": {"task": task, "policy": policy, "adapter_size": size or 64, "lr": lr, "epochs": 3,
                              "seed": 0},
                   "selected": {f"validation_{metric}": val, "epoch": 1}, "dev_score": dev,
                   "params": {"trainable": 1000 if policy == "adapter" else 22_000_000, "percent_of_base": 1.0,
                              "frozen": 21_000_000, "base": 22_000_000}, "timing": {"wall_s": 1.0}}
            (folder / f"{task}-{i}.json").write_text(json.dumps(rec))
    return folder


def fake_study_v2(folder: Path) -> Path:
    """Run records shaped like glue_v2 (issue 14) on RTE and MRPC: 3 lrs per method and size, seeds 0-1 on the
    grid and 0-4 at each method's chosen setting, mean pooling, early stopping with a history.

    Chosen on validation: full fine-tuning at 1e-4, adapters m=8 at 3e-3 (m=64's best, 1e-3, is worse on
    validation). MRPC's m=64 stays below MRPC's majority-class F1 (81.2), so its why-bullet reads the history."""
    import json

    folder.mkdir(parents=True)
    grid = [("full", None, lr) for lr in (3e-5, 1e-4, 3e-4)] + [
        ("adapter", m, lr) for m, lrs in ((8, (1e-3, 3e-3, 1e-2)), (64, (3e-4, 1e-3, 2e-3)), (256, (1e-4, 3e-4, 6e-4)))
        for lr in lrs]
    chosen = {("full", None, 1e-4), ("adapter", 8, 3e-3)}
    base = {"rte": 70.0, "mrpc": 86.0}
    for task, metric in (("rte", "accuracy"), ("mrpc", "f1")):
        for policy, size, lr in grid:
            val = base[task] + (2.0 if (policy, size, lr) in chosen else 1.0 if (size, lr) == (64, 1e-3) else 0.0)
            for seed in (range(5) if (policy, size, lr) in chosen else range(2)):
                dev = val - 1.0 + seed * 0.2 - (10.0 if (task, size) == ("mrpc", 64) else 0.0)
                cfg = {"task": task, "policy": policy, "adapter_size": size or 64, "lr": lr, "epochs": 20,
                       "patience": 3, "head_input": "mean", "mixed_precision": "bf16", "seed": seed}
                history = [{"step": 10 * e, "epoch": float(e), "train_loss": 0.70 - 0.01 * e,
                            f"validation_{metric}": val - (4 - e if e <= 4 else e - 4)} for e in range(1, 8)]
                run_id = f"{task}-{policy}-m{size}-lr{lr:g}-s{seed}"
                rec = {"run_id": run_id, "status": "ok", "task": task, "policy": policy, "metric": metric,
                       "config": cfg, "history": history, "selected": {f"validation_{metric}": val, "epoch": 4.0},
                       "dev_score": dev,
                       "params": {"trainable": 72_962 if size == 8 else 605_954 if size == 64 else 2_377_730
                                  if size == 256 else 22_566_146, "percent_of_base": 1.0,
                                  "percent_of_base_no_embedding": 2.0, "frozen": 21_000_000, "base": 22_565_376},
                       "timing": {"wall_s": 1.0, "epochs_run": 7, "stopped_early": True}}
                (folder / f"{run_id}.json").write_text(json.dumps(rec))
    return folder


# ----------------------------------------------------------------------------- notebooks (papermill, smoke)

@pytest.fixture(autouse=True)
def _glue_env(monkeypatch):
    if GLUE:  # notebook kernels run in notebooks/, so a GLUE_DIR must be absolute
        monkeypatch.setenv("GLUE_DIR", str(Path(GLUE).expanduser().resolve()))


def assert_floor_explained(r):
    """Every sweep result of notebook 04 beats its floor, or the why table has a row for it (and only then)."""
    why = {(w["method"], w["task"]) for w in r["why"] or []}
    table = {(t["task"], t["method"]): t for t in r["sweep_table"]}
    for c in r["sweep_checks"]:
        assert c["learned"] is (c["status"] == "clearly above") and finite(c["floor"]), c
        assert (c["score"] - c["floor"] > 1.0) is (c["status"] in ("clearly above", "within noise")), c
        assert ((c["name"], c["task"]) in why) is (not c["learned"]), c
        assert table[(c["task"], c["name"])]["floor"] == pytest.approx(c["floor"])


@pytest.mark.slow
@pytest.mark.committed
def test_notebook_04_glue_reproduction(tmp_path):
    from nbtools import run_notebook

    r = run_notebook("04", tmp_path)
    assert r["preset"] == "smoke" and r["task"] == "sst2" and r["metric"] == "accuracy"
    assert {run["policy"] for run in r["runs"]} == {"adapter", "full"}
    from adapterlib.course import train_scale
    from adapterlib.data import majority_floor
    for run in r["runs"]:  # the course's shared single-task scale (notebooks 02-04), so runs are shared
        assert finite(run["train_loss"]) and run["train_loss"] > 0
        assert 0 <= run["validation"] <= 100 and 0 <= run["dev"] <= 100
        assert run["steps"] == train_scale("smoke")["max_steps"]
    floor = majority_floor("sst2", "dev", GLUE, train_scale("smoke")["max_eval_examples"])["accuracy"]
    assert r["majority"] == pytest.approx(floor)  # read from the run records: the dev examples scored
    assert {c["method"] for c in r["live_checks"]} == set(r["selected"])
    assert all(c["floor"] == pytest.approx(floor) for c in r["live_checks"])
    large64 = r["cost"]["bert-large adapters (64)"]
    head = 2 * 1024 + 2
    assert large64["trainable"] == adapter_param_formula(1024, 64, 24) + (2 * 24 + 1) * 2 * 1024 + head
    assert round(large64["percent_no_embedding"], 1) == 2.1 and round(large64["multiple_9"], 1) == 1.2
    assert round(r["cost"]["bert-large full fine-tuning"]["multiple_9"], 2) == 9.0  # + the classifier head
    assert r["cost"]["minilm adapters (64)"]["trainable"] == adapter_param_formula(384, 64, 6) + 13 * 2 * 384 + 770
    assert set(r["selected"]) == {"adapters (64)", "full fine-tuning"} and 0 < r["majority"] < 100
    assert r["table1_rows"] == 3 and isinstance(r["sweep_available"], bool)
    # the committed study's records (the notebook's `study`): it says which tasks are complete, from the study's
    # sweep file
    from adapterlib.data import get_task
    from adapterlib.sweeps.aggregate import RESULTS_DIR
    from adapterlib.sweeps.driver import load_spec, study_progress
    folder = RESULTS_DIR / r["study"]
    assert r["sweep_available"] is (folder / "runs").is_dir()
    if r["sweep_available"]:
        assert r["sweep_progress"] == study_progress(load_spec(folder / "sweep.yaml"), folder)
        assert r["sweep_progress"]["finished"] == len(list((folder / "runs").glob("*.json")))
        assert {t["task"] for t in r["sweep_table"]} == {rec["task"] for rec in r["sweep"]}  # every task with records
        assert {get_task(t).display for t in r["sweep_progress"]["tasks"]} >= {t["task"] for t in r["sweep_table"]}
        complete = r["sweep_progress"]["tasks_complete"] == r["sweep_progress"]["tasks"]
        assert_floor_explained(r)
        assert bool(r["average"]) is complete and (r["claims"] is not None) is complete
        # "Does the machine change the numbers?": the committed hardware check against the notebook's study
        from adapterlib.sweeps.aggregate import twin_pairs
        try:
            pairs = twin_pairs("hardware_check", r["study"])
        except FileNotFoundError:
            pairs = []
        if len(pairs):
            assert sum(d["n_seeds"] for d in r["hardware_check"]) == len(pairs)
            assert {d["policy"] for d in r["hardware_check"]} == set(pairs["policy"])
        else:
            assert r["hardware_check"] is None


@pytest.mark.slow
@pytest.mark.committed
def test_notebook_05_layer_ablation(tmp_path):
    from nbtools import run_notebook

    from adapterlib.course import train_scale
    from adapterlib.data import majority_floor

    r = run_notebook("05", tmp_path)
    n_dev = train_scale("smoke")["max_eval_examples"]  # the course's shared scale: the run can be reused
    assert all(finite(x) for x in r["train_losses"]) and 0 <= r["dev_score"] <= 100
    assert r["trainable"] == adapter_param_formula(384, 64, 6) + 13 * 2 * 384 + 770
    assert r["n_layers"] == 6 and r["n_spans"] == 21 and r["n_examples"] == n_dev
    assert len(r["scores"]) == 22 and all(0 <= s <= 100 for s in r["scores"])
    assert r["none_removed"] == r["scores"][0] and r["all_removed"] in r["scores"]
    assert r["none_removed"] == pytest.approx(r["dev_score"])  # the ablation scores the record's dev examples
    assert set(r["single_layer_scores"]) == {str(i) for i in range(6)}
    assert r["max_single_layer_drop"] == pytest.approx(
        max(r["none_removed"] - s for s in r["single_layer_scores"].values()))
    # the floor comes from the run record: the majority class of exactly the dev examples scored
    assert r["majority"] == pytest.approx(majority_floor("sst2", "dev", GLUE, n_dev)["accuracy"])
    assert r["learned"] is (r["dev_score"] - r["majority"] > 1.0)
    assert r["paper_max_single_drop"] == 2.0  # data/paper/fig6_layer_ablation.csv
    live = r["live_check"]  # the notebook's own ablation against the paper's findings, as data
    assert live["nothing removed"] == pytest.approx(r["none_removed"]) and live["metric"] == "accuracy"
    assert live["max one-layer drop"] == pytest.approx(r["max_single_layer_drop"])
    assert live["majority class"] == pytest.approx(r["majority"]) and live["all removed"] == r["all_removed"]
    assert live["lower layers matter less"] is (r["lower_half_removed"] > r["upper_half_removed"] + 1.0)
    # "full results" reads the committed layer-ablation study (records + CSVs of the notebook's `study`)
    import pandas as pd

    from adapterlib.studies.ablation import span_summary
    from adapterlib.sweeps.aggregate import RESULTS_DIR
    assert r["study_tasks"] == ["cola", "sst2"]
    checks = {(c["task"], c["metric"]): c for c in r["study_checks"]}
    assert set(checks) == {("CoLA", "mcc"), ("CoLA", "accuracy"), ("SST-2", "accuracy")}  # CoLA in accuracy too
    for task, label in (("cola", "CoLA"), ("sst2", "SST-2")):
        s = span_summary(pd.read_csv(RESULTS_DIR / r["study"] / "layer_ablation" / f"layer_ablation_{task}.csv"))
        c = checks[(label, s["metric"])]
        assert c["nothing removed"] == pytest.approx(s["none_removed"]) and c["layers"] == 6
        assert c["max one-layer drop"] == pytest.approx(s["max_single_layer_drop"])
        assert (c["worst layer"], c["least layer"]) == (s["most_important_layer"], s["least_important_layer"])
        assert c[f"lower half ({s['halves'][0]}) removed"] == pytest.approx(s["lower_half_removed"])
        assert c[f"upper half ({s['halves'][1]}) removed"] == pytest.approx(s["upper_half_removed"])


@pytest.mark.slow
def test_notebook_06_many_tasks_one_model(tmp_path):
    from nbtools import run_notebook

    r = run_notebook("06", tmp_path, output_dir=str(tmp_path / "ckpt"))
    assert r["tasks"] == ["sst2", "cola"] and r["head_input"] == "mean"
    assert r["unchanged_after_later_tasks"] is True and r["n_checks"] == 1  # sst2 after cola
    assert r["dev_identical_after_all"] is True  # every task's dev scores, bit for bit, after the later tasks
    assert r["frozen_identical"] is True and r["fresh_base_identical"] is True
    assert r["fresh_reload_identical"] is True and r["layernorm_swapped"] is True
    assert all(finite(x) for x in r["train_losses"].values())
    assert all(-100 <= x <= 100 for x in r["dev"].values())  # CoLA's MCC can be negative
    # mean pooling replaces the pooler: its 147,840 unused parameters leave the count
    assert r["trainable"] == adapter_param_formula(384, 64, 6) + 13 * 2 * 384 + 770
    assert set(r["checkpoint_bytes"]) == {"SST-2", "CoLA"}
    for size in r["checkpoint_bytes"].values():
        assert 4 * r["trainable"] < size < 4 * r["trainable"] + 200_000  # float32 tensors + header + JSON
    assert (tmp_path / "ckpt" / "cola" / "adapter_model.safetensors").is_file()
    adapters, full = (r["storage_MB"][k] for k in ("adapters: one base + n checkpoints", "full fine-tuning: n models"))
    n = len(r["tasks"])
    assert adapters < full / n + 3 * n  # one base (a full model's size) + n checkpoints under 3 MB each
    assert_tasks_against_floors(r, n_dev=32)


def assert_tasks_against_floors(r, n_dev):
    """Notebook 06: each task's floor is its dev examples' majority class, and the findings say learned or why not."""
    from adapterlib.data import get_task, majority_floor

    checks = {row["task"]: row for row in r["task_checks"]}
    for task in r["tasks"]:
        spec = get_task(task)
        name = spec.display
        assert r["floors"][name] == pytest.approx(majority_floor(task, "dev", GLUE, n_dev)[spec.metric])
        assert r["learned"][name] is (r["dev"][name] - r["floors"][name] > 1.0)
        row = checks[name]
        assert (row["dev"], row["majority class"]) == (pytest.approx(r["dev"][name]), pytest.approx(r["floors"][name]))
        assert row["learned"] is r["learned"][name] and row["steps"] == r["steps"][name]
        assert finite(row["train loss"]) and (row["signal"] == "" or not row["learned"])   # why not: the record
    assert sum(row["learned"] for row in checks.values()) == sum(r["learned"].values())


@pytest.mark.slow
def test_notebook_04_with_sweep_results(tmp_path):
    """The "full results" branch: selection on validation (never dev) next to the paper's numbers."""
    from nbtools import run_notebook

    from adapterlib.sweeps.aggregate import glue_table, load_study

    study = fake_study(tmp_path / "study", (("rte", "accuracy"), ("mrpc", "f1")))
    r = run_notebook("04", tmp_path, study=str(study))
    assert r["sweep_available"] is True
    got = {(row["method"], row["task"]): (row["n_seeds"], row["dev_mean"], row["paper (test)"]) for row in r["sweep"]}
    # every adapter here trains 1% of the base: the budget row is 8-256's choice, not in Table 1
    for task in ("RTE", "MRPC"):
        n, dev, paper = got.pop(("adapters_budget", task))
        assert (n, dev) == (1, 67.0) and math.isnan(paper)
    assert got == {("full", "RTE"): (1, 65.0, 70.1), ("adapters_64", "RTE"): (1, 66.0, 68.8),
                   ("adapters_8_256", "RTE"): (1, 67.0, 71.5), ("full", "MRPC"): (1, 65.0, 89.3),
                   ("adapters_64", "MRPC"): (1, 66.0, 89.6), ("adapters_8_256", "MRPC"): (1, 67.0, 89.5)}
    # ours: the mean over the two tasks of the chosen dev scores; paper: Table 1's mean over the same two columns
    average = {a["method"]: a for a in r["average"]}
    full = glue_table(load_study(study)).loc["full"]
    assert average["full"]["ours"] == pytest.approx(65.0) and average["full"]["n_tasks"] == 2
    assert average["full"]["% of base per task"] == pytest.approx(full["params_per_task_percent"])
    assert average["full"]["x base for all tasks"] == pytest.approx(full["total_params_multiple"])
    assert average["full"]["paper, same tasks"] == pytest.approx((70.1 + 89.3) / 2)
    assert average["adapters_8_256"]["ours"] == pytest.approx(67.0)
    assert average["adapters_8_256"]["paper, same tasks"] == pytest.approx((71.5 + 89.5) / 2)
    assert average["adapters_8_256"]["ours - full"] == pytest.approx(2.0)
    assert average["adapters_8_256"]["paper - full"] == pytest.approx(0.8)
    assert average["adapters_64"]["ours - full"] == pytest.approx(1.0)
    assert average["adapters_64"]["paper - full"] == pytest.approx(-0.5)
    assert average["adapters_budget"]["ours - full"] == pytest.approx(2.0)
    assert math.isnan(average["adapters_budget"]["paper - full"])   # no paper number for a row Table 1 lacks
    claims = {c["method"]: c for c in r["claims"]}
    for method in ("adapters_8_256", "adapters_budget"):   # 1 seed each: no interval, so untestable here
        assert claims[method]["gap_mean"] == pytest.approx(2.0) and claims[method]["n_tasks"] == 2
        assert claims[method]["n_seeds"] == 1 and claims[method]["status"] == "untestable here"
    from adapterlib.data import load_glue
    from adapterlib.metrics import majority_baseline
    dev = {t: load_glue(t, GLUE, splits=["dev"])["dev"]["label"] for t in ("rte", "mrpc")}
    assert r["sweep_majority"] == {"RTE": pytest.approx(majority_baseline("rte", dev["rte"])["accuracy"]),
                                   "MRPC": pytest.approx(majority_baseline("mrpc", dev["mrpc"])["f1"])}
    assert 50 < r["sweep_majority"]["RTE"] < 55  # RTE dev: 146 of 277 pairs are "entailment"
    # the fake study's MRPC runs (F1 65-67) are below MRPC's floor (81.2, all "paraphrase"): said, with no history
    # to explain
    assert_floor_explained(r)
    status = {(c["name"], c["task"]): c["status"] for c in r["sweep_checks"]}
    assert status[("full", "RTE")] == "clearly above" and status[("adapters_64", "MRPC")] == "below"
    assert any(not w["has_history"] for w in r["why"])   # the fake records hold no history to say why


@pytest.mark.course_scale
def test_notebook_04_course_scale(tmp_path):
    """Notebook 04 at preset course: the live SST-2 runs beat their floor; every sweep result beats its floor
    or the findings say it does not, and why as far as the records show."""
    from nbtools import run_notebook

    from adapterlib.course import train_scale
    from adapterlib.data import majority_floor

    r = run_notebook("04", tmp_path, preset="course")
    assert r["preset"] == "course" and r["task"] == "sst2"
    floor = majority_floor("sst2", "dev", GLUE, train_scale("course")["max_eval_examples"])["accuracy"]
    assert r["majority"] == pytest.approx(floor) and 50 < floor < 52  # all 872 dev sentences, 444 positive
    assert {c["method"] for c in r["live_checks"]} == {"adapters (64)", "full fine-tuning"}
    for c in r["live_checks"]:
        assert c["learned"] and c["dev"] > c["floor"] + 10, c  # SST-2 at course scale learns, clearly
    assert r["live_gap"] == pytest.approx(r["selected"]["adapters (64)"] - r["selected"]["full fine-tuning"])
    if r["sweep_available"]:
        assert_floor_explained(r)


@pytest.mark.course_scale
def test_notebook_05_course_scale(tmp_path):
    """Notebook 05 at preset course: the SST-2 adapters it ablates beat their majority floor on all 872 dev
    sentences, and the findings say so; the ablation scores the same examples."""
    from nbtools import run_notebook

    from adapterlib.course import train_scale
    from adapterlib.data import majority_floor

    r = run_notebook("05", tmp_path, preset="course")
    assert r["preset"] == "course" and r["task"] == "sst2" and r["n_examples"] == 872
    floor = majority_floor("sst2", "dev", GLUE, train_scale("course")["max_eval_examples"])["accuracy"]
    assert r["majority"] == pytest.approx(floor) and 50 < floor < 52
    assert r["learned"] is True and r["dev_score"] > floor + 10, r["live_check"]
    assert r["live_check"]["majority class"] == pytest.approx(floor)
    assert r["none_removed"] == pytest.approx(r["dev_score"])


@pytest.mark.course_scale
def test_notebook_06_course_scale(tmp_path):
    """Notebook 06 at preset course: every task beats its majority floor (the lesson, "switching adapters leaves the
    other tasks unchanged", needs tasks that learned something), and its dev scores are unchanged bit for bit."""
    from nbtools import run_notebook

    r = run_notebook("06", tmp_path, preset="course", output_dir=str(tmp_path / "ckpt"))
    assert r["preset"] == "course" and r["tasks"] == ["sst2", "cola"]
    assert all(r["learned"].values()), r["dev"]
    assert_tasks_against_floors(r, n_dev=500)
    assert r["unchanged_after_later_tasks"] is True and r["fresh_reload_identical"] is True
    assert r["dev_identical_after_all"] is True


@pytest.mark.slow
def test_notebook_04_with_a_v2_shaped_study(tmp_path):
    """glue_v2's shape: lr grids per size, 2 grid seeds, 5 at the chosen settings, mean pooling, early stopping.
    The table gives each method's seed count and the chosen size; the claim gets its bootstrap interval; a result
    under its floor is explained from the kept epoch; the classifier input is said once, for both methods."""
    from nbtools import run_notebook

    r = run_notebook("04", tmp_path, study=str(fake_study_v2(tmp_path / "study")))
    got = {(row["method"], row["task"]): (row["n_seeds"], row["adapter_size"], row["lr"]) for row in r["sweep"]}
    for task in ("RTE", "MRPC"):
        assert got[("full", task)][0] == 5 and got[("full", task)][2] == pytest.approx(1e-4)
        assert got[("adapters_8_256", task)] == (5, 8, pytest.approx(3e-3))
        assert got[("adapters_64", task)] == (2, 64, pytest.approx(1e-3))   # only the grid's two seeds
        assert got[("adapters_budget", task)] == (5, 8, pytest.approx(3e-3))  # every size at 1% here
    assert_floor_explained(r)
    why = {(w["method"], w["task"]): w for w in r["why"]}[("adapters_64", "MRPC")]
    assert why["n_seeds"] == 2 and why["kept_epochs"] == [4] and why["run_epochs"] == [7]
    assert why["max_epochs"] == 20 and round(why["loss"], 3) == 0.660
    assert not any(w["frozen_pooler"] for w in r["why"])   # mean pooling here: no pooler to blame
    shown = (tmp_path / "04_out.ipynb").read_text()  # the study's recipe, printed from its records
    assert "**How `study` trained**" in shown and "up to 20 epochs" in shown
    rte = {t["method"]: t for t in r["sweep_table"] if t["task"] == "RTE"}
    assert (rte["adapters_64"]["n_seeds"], rte["full"]["n_seeds"]) == (2, 5)
    assert finite(rte["adapters_64"]["gap_to_full"])
    claim = {c["method"]: c for c in r["claims"]}["adapters_8_256"]
    # adapters (8-256) and full fine-tuning have the same val and seed offsets: the gap is 0 with a real interval
    assert claim["gap_mean"] == pytest.approx(0.0, abs=1e-9) and claim["low"] <= 0 <= claim["high"]
    assert claim["n_seeds"] >= 2 and claim["status"] == "holds"
