"""Results as data (issue 27): the pure functions of adapterlib.course.results and its per-notebook companions,
on hand-made records and frames (expected values by hand) and on the committed studies. Every assert is on data."""
import math

import pandas as pd
import pytest

from adapterlib.course import results


def record(**config):
    cfg = {"adapter_size": 64, "epochs": 3, "lr": 1e-3, "seed": 0, "head_input": "pooler", "train_pooler": False,
           "val_fraction": 0.1, "max_train_examples": None, "patience": None, "mixed_precision": "no", **config}
    return {"config": cfg, "splits": {"sizes": {"train": 7696}}, "timing": {"epochs_run": 3},
            "selected": {"epoch": 3.0}}


def run(task="sst2", policy="adapter", score=80.0, floor=50.9, loss=0.5, **config):
    """A run record as train() writes it, reduced to what the results functions read."""
    rec = record(**config)
    rec.update(task=task, policy=policy, dev={"dev": {"accuracy": score}}, majority={"dev": {"accuracy": floor}},
               history=[{"step": 3, "epoch": 1.0, "train_loss": loss}], params={"trainable": 1000},
               timing={"steps": 3, "wall_s": 1.0, "epochs_run": 1})
    return rec


# ---------------------------------------------------------------------------------- floors, one run and seeds

def test_a_run_is_read_against_its_floor():
    check = results.verdict(run(score=52.0, floor=50.9))
    assert (check.score, check.floor, check.metric, check.split) == (52.0, 50.9, "accuracy", "dev")
    assert check.above == pytest.approx(1.1) and check.learned              # more than MARGIN (1 point) above
    assert not results.verdict(run(score=51.5, floor=50.9)).learned
    assert results.verdict(run(), floor=79.5).floor == 79.5                  # a floor loaded for an older record
    table = results.floor_table([run(score=60.0), run(score=50.0)], names=["a", "b"])
    assert table["learned"].tolist() == [True, False] and table["points above"].tolist() == [9.1, -0.9]


@pytest.mark.parametrize("score,sem,status", [(60.0, 1.0, "clearly above"), (52.5, 2.0, "within noise"),
                                              (51.0, float("nan"), "at"), (48.0, 0.5, "below")])
def test_a_mean_over_seeds_needs_two_standard_errors_to_clear_its_floor(score, sem, status):
    check = results.SeedCheck("full", "RTE", score, sem, 3, 50.0, "accuracy")
    assert check.status == status and check.learned is (status == "clearly above")


def selection():
    return pd.DataFrame({"method": ["full fine-tuning", "adapters (64)", "full fine-tuning", "adapters (64)"],
                         "task": ["RTE", "RTE", "MRPC", "MRPC"], "metric": ["accuracy", "accuracy", "f1", "f1"],
                         "dev_mean": [60.0, 62.0, 80.0, 83.0], "dev_sem": [0.5, 0.5, 0.5, float("nan")],
                         "n_seeds": [5, 2, 5, 5], "paper (test)": [70.1, 68.8, 89.3, 89.6],
                         "lr": [1e-4, 3e-3, 1e-4, 1e-3], "lr_edge": ["highest", "", "", "lowest"],
                         "policy": ["full", "adapter", "full", "adapter"], "adapter_size": [None, 64, None, 64]})


def test_sweep_table_gives_each_method_its_floor_status_and_gap_to_full():
    checks = results.seed_checks(selection(), {"RTE": 52.7, "MRPC": 80.5})
    assert [(c.name, c.task, c.status) for c in checks] == [
        ("full", "RTE", "clearly above"), ("adapters_64", "RTE", "clearly above"),   # keys, from labels
        ("full", "MRPC", "at"), ("adapters_64", "MRPC", "clearly above")]
    table = results.sweep_table(selection(), checks)
    assert table.loc[("RTE", "adapters_64"), "gap_to_full"] == pytest.approx(2.0)
    assert table.loc[("RTE", "adapters_64"), "paper_gap_to_full"] == pytest.approx(-1.3)
    assert table.loc[("MRPC", "full"), "floor"] == 80.5
    assert results.seeds_uneven(table) == {"RTE": (2, 5)}    # MRPC: 5 against 5


def test_edge_flags_name_each_method_chosen_at_the_end_of_its_grid():
    flags = results.edge_flags(selection())
    assert flags == [results.EdgeFlag("full", "RTE", "", 1e-4, "highest"),
                     results.EdgeFlag("adapters_64", "MRPC", "m = 64", 1e-3, "lowest")]
    assert results.edge_table(selection().drop(columns="lr_edge")).empty


def test_average_table_puts_ours_next_to_the_papers_mean_over_the_same_tasks():
    averages = pd.DataFrame({"RTE": [60.0, 62.0], "MRPC": [80.0, 83.0], "average": [70.0, 72.5],
                             "params_per_task_percent": [100.0, 2.7], "total_params_multiple": [2.0, 1.05]},
                            index=["full fine-tuning", "adapters (64)"])
    from adapterlib.studies.paper import paper_table
    table = results.average_table(averages, paper_table("table1"))
    assert table.index.tolist() == ["full", "adapters_64"] and (table["n_tasks"] == 2).all()
    assert table.loc["adapters_64", "ours - full"] == pytest.approx(2.5)
    assert table.loc["adapters_64", "paper, same tasks"] == pytest.approx((68.8 + 89.6) / 2)
    assert table.loc["adapters_64", "paper - full"] == pytest.approx((68.8 + 89.6 - 70.1 - 89.3) / 2)
    assert results.average_table(averages, paper_table("table1"), complete=False).empty   # a study still running


# ---------------------------------------------------------------------------------- why a result did not learn

def history_run(loss_at, chosen, last, patience=3):
    rec = record(epochs=20, patience=patience)
    rec.update(task="cola", selected={"epoch": float(chosen)},
               history=[{"epoch": float(e), "train_loss": loss_at(e)} for e in range(1, last + 1)])
    return rec


def test_fit_check_reads_the_kept_epoch_under_early_stopping():
    one = results.fit_check([history_run(lambda e: 0.7 - 0.05 * e, chosen=4, last=7)], guess=0.608)
    assert one.loss == pytest.approx(0.5) and (one.kept_epochs, one.run_epochs) == ((4.0,), (7.0,))  # not the last
    assert one.max_epochs == 20 and one.under_fit is False        # below the class-frequency loss: it fit somewhat
    two = results.fit_check([history_run(lambda e: 0.62, 1, 4), history_run(lambda e: 0.60, 2, 5)], guess=0.608)
    assert two.n_seeds == 2 and two.loss == pytest.approx(0.61) and two.kept_epochs == (1.0, 2.0)
    assert two.under_fit is True                                   # within 5% of 0.608: it did not fit either
    fixed = results.fit_check([history_run(lambda e: 0.5, chosen=2, last=3, patience=None)], guess=None)
    assert fixed.loss == 0.5 and fixed.kept_epochs == (3.0,) and fixed.under_fit is None   # the last epoch
    assert results.fit_check([record()], guess=0.6) is None      # no history: nothing to say
    assert results.frequency_loss([1, 1]) == pytest.approx(math.log(2))


def test_why_table_has_one_row_per_result_with_what_its_records_show():
    why = results.why_table({("adapters (64)", "CoLA"): [history_run(lambda e: 0.62, 1, 4)],
                             ("full", "RTE"): []}, {"CoLA": 0.608})
    assert why["method"].tolist() == ["adapters_64", "full"] and why["has_history"].tolist() == [True, False]
    assert bool(why.loc[0, "under_fit"]) and bool(why.loc[0, "frozen_pooler"])   # [CLS] through a frozen pooler
    assert math.isnan(why.loc[1, "loss"]) and not why.loc[1, "frozen_pooler"]


# ---------------------------------------------------------------------------------- notebook 02 (init)

def test_init_floor_table_names_the_cause_of_each_run_that_did_not_learn():
    from adapterlib.course.init_results import DESTROYING, ZERO_GRADIENTS, init_floor_table, init_summary
    stds = [0.0, 1e-4, 1e-2, 1.0]
    table = init_floor_table([run(score=s) for s in (50.0, 77.0, 78.0, 50.5)], stds, {0.0: 0.0, 1e-3: 1e-4,
                                                                                      1e-2: 0.011, 1.0: 2.0})
    assert table["learned"].tolist() == [False, True, True, False]
    assert table["why not"].tolist() == [ZERO_GRADIENTS, "", "", DESTROYING]
    assert table["below best robust std"].tolist() == [28.0, 1.0, 0.0, 27.5]
    s = init_summary(table, {0.0: 0.0, 1e-3: 1e-4, 1e-2: 0.011})
    assert (s.robust_low, s.robust_high, s.robust_spread, s.robust_all_learned) == (77.0, 78.0, 1.0, True)
    assert s.growth == pytest.approx(110) and s.drift_zero == 0.0


def test_init_study_table_gives_the_robust_range_the_stds_above_it_and_hidden_seeds():
    from adapterlib.course.init_results import init_study_table
    curve = pd.DataFrame({"task": ["cola"] * 4, "metric": "mcc", "lr": 1e-3, "n_seeds": 3,
                          "init_std": [1e-4, 1e-2, 0.1, 1.0], "dev_mean": [20.0, 26.0, 0.0, 0.5],
                          "dev_sem": [1.0, 1.0, 0.0, 0.2], "dev_min": [0.0, 25.0, 0.0, 0.0]})
    row = init_study_table(curve, {"cola": 0.0}).loc["cola"]
    assert (row["robust low"], row["robust high"], row["seeds"]) == (20.0, 26.0, 3)
    assert (row["std 0.1"], row["std 1"], row["std 1 s.e.m."]) == (0.0, 0.5, 0.2)
    assert row["at the floor"] == "0.1, 1" and row["a seed at the floor"] == "1e-4"   # the mean hides a seed


# ---------------------------------------------------------------------------------- notebook 03 (size)

def test_live_vs_full_counts_cheaper_adapters_that_beat_top_k():
    from adapterlib.course.size_results import live_vs_full
    live = pd.DataFrame({"method": ["adapter", "adapter", "top_k", "full"], "label": ["m=8", "m=64", "k=1", ""],
                         "trainable": [100, 1000, 2000, 10000], "dev_score": [78.0, 75.0, 76.0, 80.0],
                         "floor": 50.9, "learned": True})
    table = live_vs_full(live).set_index("label")
    assert table.loc["k=1", "cheaper adapters higher"] == "1 of 2" and table.loc["m=8", "vs full"] == -2.0
    assert table.loc["k=1", "% of full's parameters"] == 20.0


@pytest.mark.committed
def test_size_study_table_says_which_points_stayed_at_their_floor():
    """issue 14: size_v2 tunes each point's lr so that no point is a recipe failure (size_cpu: CoLA's m=1, top-1
    and LayerNorm-only stayed at the majority class, with one lr per method and one seed)."""
    from adapterlib.course.size_results import size_study_table
    from adapterlib.sweeps.aggregate import load_study, size_curve
    v1 = size_study_table(size_curve(load_study("size_cpu")), {"cola": 0.0, "sst2": 50.92}).loc["cola"]
    assert (v1["seeds"], v1["lrs per point (max)"]) == (1, 1) and "k = 1" in v1["not above floor"].split(", ")
    curve = size_curve(load_study("size_v2"))
    v2 = size_study_table(curve, {"cola": 0.0, "sst2": 50.92}).loc["cola"]
    cola = curve[curve["task"] == "cola"]
    low = cola.loc[cola["dev_mean"].idxmin()]
    assert low["policy"] == "top_k" and v2["lowest point"] == f"k = {low['top_k']:g}" and v2["not above floor"] == ""
    assert v2["lowest above floor"] == pytest.approx(low["dev_mean"]) and v2["lrs per point (max)"] > 1
    best = cola[cola["policy"] == "adapter"].loc[lambda d: d["val_mean"].idxmax()]
    assert v2["chosen m"] == best["adapter_size"] and v2["chosen m score"] == best["dev_mean"]


# ---------------------------------------------------------------------------------- notebook 05 (ablation)

def span_table(scores: dict, metric="accuracy"):
    """A 2-layer span table: (first, last) -> score, the nothing-removed row first."""
    rows = [{"first": None, "last": None, "n_removed": 0, "score": scores[None], "metric": metric}]
    rows += [{"first": k[0], "last": k[1], "n_removed": k[1] - k[0] + 1, "score": v, "metric": metric}
             for k, v in scores.items() if k is not None]
    table = pd.DataFrame(rows)
    table["accuracy"] = table["score"]
    for col in ("first", "last"):
        table[col] = table[col].astype("Int64")
    return table


def test_an_ablation_is_checked_against_the_papers_three_findings():
    from adapterlib.course.ablation_results import MORE, SLIGHTLY, WITHIN, ablation_check
    table = span_table({None: 80.0, (0, 0): 79.0, (1, 1): 77.5, (0, 1): 51.0})
    c = ablation_check(table, floor=50.9, paper_max_drop=2.0, task="SST-2")
    assert (c.max_drop, c.worst_layer, c.least_layer, c.n_layers) == (2.5, 1, 0, 2)
    assert c.one_layer == SLIGHTLY and c.lower_matter_less and c.all_at_floor and not c.contradicts
    assert ablation_check(span_table({None: 80.0, (0, 0): 79.0, (1, 1): 79.5, (0, 1): 60.0}), 50.9,
                          2.0).one_layer == WITHIN
    worse = ablation_check(span_table({None: 80.0, (0, 0): 70.0, (1, 1): 79.5, (0, 1): 60.0}), 50.9, 2.0)
    assert worse.one_layer == MORE and not worse.lower_matter_less and worse.contradicts


@pytest.mark.committed
def test_v1_layer_ablation_contradicts_the_paper_in_mcc_not_in_accuracy():
    """issue 15 (notebook 05 showed ablation_cpu until 2026-12-04): v1's CoLA MCC drops contradict the paper's 2;
    in accuracy (the paper's CoLA panel) one layer costs less than 2."""
    from adapterlib.course.ablation_results import study_checks
    from adapterlib.paths import RESULTS_DIR
    from adapterlib.studies.ablation import load_study, span_summary
    study = load_study(RESULTS_DIR / "ablation_cpu")
    from adapterlib.course.evidence import ablation_floors
    checks = {(c.task, c.metric): c for c in study_checks(study, 2.0, ablation_floors(study))}
    mcc, accuracy = checks[("CoLA", "mcc")], checks[("CoLA", "accuracy")]
    s = span_summary(study["cola"][0])
    assert mcc.max_drop == s["max_single_layer_drop"] > 2 and mcc.contradicts and mcc.one_layer == "more"
    assert (mcc.worst_layer, mcc.least_layer) == (s["most_important_layer"], s["least_important_layer"])
    assert mcc.lower == mcc.upper == 0.0 and mcc.halves_at_floor          # either half alone drops to the floor
    assert round(accuracy.max_drop, 1) <= 2 and accuracy.one_layer == "within"


def test_setup_table_says_what_each_run_trained_from_its_record():
    from adapterlib.course.ablation_results import setup_table
    v1 = setup_table({"cola": (None, record())}).loc["CoLA"]
    assert (v1["adapter size"], v1["train examples"], v1["validation hold-out"]) == (64, 7696, 0.1)
    assert (v1["epochs run"], v1["early stopping"], v1["head input"], v1["pooler trained"]) == (3, False, "pooler",
                                                                                                 False)
    v2 = record(epochs=20, patience=3, head_input="mean", val_fraction=0.03, max_train_examples=8000,
                mixed_precision="bf16")
    v2.update(timing={"epochs_run": 11}, selected={"epoch": 8.0})
    row = setup_table({"sst2": (None, v2)}).loc["SST-2"]
    assert (row["epochs run"], row["epochs at most"], row["epoch kept"]) == (11, 20, 8.0)
    assert row["subset of train.tsv"] and row["head input"] == "mean" and row["precision"] == "bf16"


# ---------------------------------------------------------------------------------- notebook 06 (many tasks)

def test_task_floor_table_reads_the_training_loss_against_the_class_frequency_loss():
    from adapterlib.course.multitask_results import FITS_A_LITTLE, NO_SIGNAL, task_floor_table
    stuck = run(score=51.0, loss=0.70)
    stuck["majority"]["validation"] = {"accuracy": 50.0}                # prior ln 2 = 0.693
    fitting = run(task="cola", score=51.0, loss=0.60)
    fitting["majority"]["validation"] = {"accuracy": 50.0}
    fitting["dev"] = {"dev": {"mcc": 0.5}}
    fitting["majority"]["dev"] = {"mcc": 0.0}
    table = task_floor_table({"sst2": stuck, "cola": fitting, "rte": run(task="rte", score=70.0, floor=52.7)})
    assert table["learned"].tolist() == [False, False, True]
    assert table.loc["SST-2", "class-frequency loss"] == pytest.approx(math.log(2))
    assert table["signal"].tolist() == [NO_SIGNAL, FITS_A_LITTLE, ""] and table.loc["SST-2", "steps"] == 3


@pytest.mark.committed
def test_study_recipe_is_read_from_the_records():
    """The recipe a notebook prints beside a stored study: every item from the committed records."""
    import pandas as pd

    from adapterlib.course.recipe import study_recipe
    from adapterlib.sweeps.aggregate import load_study

    glue = study_recipe(load_study("glue_cpu"), "glue_cpu")
    n_ok = int((load_study("glue_cpu")["status"] == "ok").sum())   # the committed records, counted
    assert glue.startswith("**How `glue_cpu` trained**") and f"its {n_ok} finished" in glue.split("\n")[0]
    assert "- **Full fine-tuning**: lr 2e-5, 5e-5, 1e-4.\n" in glue
    assert "- **Adapters**: " + "; ".join(f"m={m}: lr 3e-4, 1e-3, 3e-3" for m in (8, 64, 256)) + ".\n" in glue
    assert "SST-2: a seeded 10% of train.tsv" in glue and "seeded 8,000-example subset" in glue
    assert "- **Seeds**: seeds 0-2; 20 settings" in glue and "with 3 seeds, 40" in glue
    assert "- **Epochs**: 3 epochs;" in glue
    classifier = next(line for line in glue.split("\n") if line.startswith("- **Classifier**"))
    assert classifier.count("[CLS] through") == 2 and "frozen, untrained pooler" in classifier   # both methods
    assert "full precision (fp32); batch 32," in glue and "128 tokens" in glue
    pilot = study_recipe(load_study("pilot_v2"), "pilot_v2")
    assert ("(patience 3)" in pilot and "after 5-15 epochs" in pilot and "up to 20 epochs" in pilot
            and "bf16 autocast and full precision (fp32)" in pilot and "m=8: lr 3e-3, 0.01;" in pilot)
    # an lr only some tasks have (one added past the edge of a grid) names them; pilot_v2 ran m=64 at 1e-3 on
    # CoLA, MRPC and RTE; dropping RTE's leaves 1e-3 to the other two
    runs = load_study("pilot_v2")
    cut = runs[~((runs["task"] == "rte") & (runs["policy"] == "full"))]
    assert "lr 1e-4 (1e-4 on" not in study_recipe(runs)
    grids = study_recipe(pd.concat([cut, runs[(runs["task"] == "rte") & (runs["policy"] == "full")].assign(lr=9e-6)]))
    assert "- **Full fine-tuning**: lr 9e-6, 1e-4 (9e-6 on RTE only; 1e-4 on CoLA, MRPC" in grids
    init = study_recipe(load_study("init_cpu"))
    assert "init std 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 0.01, 0.1, 1." in init and "**How the stored" in init
    assert "no finished run" in study_recipe(pd.DataFrame({"status": ["failed"], "task": ["rte"]}))
    assert glue.endswith("\n- **Machine**: CPU (2 cores), every run.")   # where the runs trained, from the records
    mixed = study_recipe(runs.assign(machine=runs["machine"].where(runs["task"] != "rte", "NVIDIA H200")))
    n_rte = int((runs["task"] == "rte").sum())
    assert (f"- **Machines**: CPU (2 cores): {len(runs) - n_rte} runs (CoLA, MRPC); NVIDIA H200: {n_rte} runs (RTE)"
            in mixed)
