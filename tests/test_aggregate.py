"""Aggregation of run records into the reproduction's tables, on fake records (pure pandas)."""
import json
import math

import matplotlib
import pandas as pd
import pytest

from adapterlib import TrainConfig, plots
from adapterlib.data import get_task
from adapterlib.sweeps import aggregate
from adapterlib.train import run_id

matplotlib.use("Agg")

BASE, LN, HEAD = 22_713_216, 9_984, 770  # MiniLM-like counts: base model, LayerNorms, 2-class head


def trainable_of(policy, size=64, top_k=None):
    if policy == "full":
        return BASE + HEAD
    if policy == "adapter":
        return 12 * (2 * size * 384 + 384 + size) + LN + HEAD
    if policy == "top_k":
        return top_k * 1_800_000 + HEAD
    return LN + HEAD


def fake_record(task="rte", policy="adapter", size=64, lr=1e-3, seed=0, val=70.0, dev=60.0, epochs=3,
                top_k=None, init_std=None, status="ok"):
    cfg = TrainConfig(task=task, policy=policy, adapter_size=size, lr=lr, seed=seed, epochs=epochs, top_k=top_k,
                      init_std=init_std)
    rec = {"run_id": run_id(cfg), "status": status, "task": task, "policy": policy, "config": cfg.to_dict(),
           "seed": seed, "created": f"2026-01-01T00:00:{seed:02d}Z", "machine": {"cpu_count": 2}}
    if status == "failed":
        return {**rec, "error": "ValueError: boom", "timing": {"wall_s": 1.0}}
    metric = get_task(task).metric
    trainable = trainable_of(policy, size, top_k)
    total = BASE + HEAD + (trainable - LN - HEAD if policy == "adapter" else 0)  # adapters add parameters
    frozen = total - trainable
    return {**rec, "metric": metric,
            "params": {"trainable": trainable, "frozen": frozen, "base": BASE,
                       "percent_of_base": 100 * trainable / BASE},
            "history": [{"epoch": 1.0, f"validation_{metric}": val - 1}, {"epoch": 2.0, f"validation_{metric}": val}],
            "selected": {"epoch": 2.0, f"validation_{metric}": val}, "dev": {"dev": {metric: dev}}, "dev_score": dev,
            "timing": {"wall_s": 100.0, "s_per_step": 0.5}}


def write_study(folder, records):
    runs = folder / "runs"
    runs.mkdir(parents=True)
    for rec in records:
        (runs / f"{rec['run_id']}.json").write_text(json.dumps(rec))
    return folder


def glue_records():
    """Two tasks; full and adapters (8, 64, 256) x 2 lrs at seed 0, then seeds 1-2 at the winners."""
    recs = []
    for task, shift in (("rte", 0.0), ("cola", -10.0)):
        recs += [fake_record(task, "full", lr=2e-5, val=70 + shift, dev=65 + shift),
                 fake_record(task, "full", lr=5e-5, val=72 + shift, dev=64 + shift)]   # best on validation
        for size, val in ((8, 74), (64, 71), (256, 69)):
            recs += [fake_record(task, "adapter", size, lr=1e-3, val=val + shift, dev=60 + shift),
                     fake_record(task, "adapter", size, lr=3e-3, val=val - 5 + shift, dev=90 + shift)]  # dev bait
        for seed, d in ((1, 2.0), (2, -2.0)):  # extra seeds at the winners; their val is lower, choice must hold
            recs.append(fake_record(task, "full", lr=5e-5, seed=seed, val=60 + shift, dev=64 + shift + d))
            for size in (8, 64, 256):
                recs.append(fake_record(task, "adapter", size, lr=1e-3, seed=seed, val=50 + shift, dev=60 + shift + d))
    return recs


def test_load_study_columns_and_effective_values(tmp_path):
    recs = [fake_record("rte", "adapter", 8), fake_record("rte", "adapter", 8, init_std=1e-5, lr=3e-3),
            fake_record("rte", "full", lr=2e-5), fake_record("sst2", "top_k", top_k=2),
            fake_record("mrpc", "adapter", status="failed")]
    df = aggregate.load_study(write_study(tmp_path / "study", recs))
    assert set(aggregate.COLUMNS) <= set(df.columns) and len(df) == 5
    assert list(df["run_id"]) == sorted(df["run_id"])
    by = df.set_index("run_id")
    assert by.loc[recs[0]["run_id"], "init_std"] == 1e-2          # houlsby default
    assert by.loc[recs[1]["run_id"], "init_std"] == 1e-5          # explicit override
    assert math.isnan(by.loc[recs[2]["run_id"], "adapter_size"]) and math.isnan(by.loc[recs[2]["run_id"], "init_std"])
    assert by.loc[recs[3]["run_id"], "top_k"] == 2 and by.loc[recs[3]["run_id"], "metric"] == "accuracy"
    failed = by.loc[recs[4]["run_id"]]
    assert failed["status"] == "failed" and math.isnan(failed["val_score"]) and "boom" in failed["error"]
    assert by.loc[recs[0]["run_id"], "val_score"] == 70 and by.loc[recs[0]["run_id"], "selected_epoch"] == 2


def test_load_study_by_name_and_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(aggregate, "RESULTS_DIR", tmp_path)
    write_study(tmp_path / "mystudy", [fake_record()])
    assert len(aggregate.load_study("mystudy")) == 1
    assert len(aggregate.load_study(tmp_path / "mystudy" / "runs")) == 1    # a folder of records works too
    with pytest.raises(FileNotFoundError, match="no run records"):
        aggregate.load_study("nothing-here")


def test_select_best_uses_validation_only_and_shared_seeds():
    df = aggregate.records_frame(glue_records())
    best = aggregate.select_best(df).set_index(["task", "policy", "adapter_size"], drop=False)
    row = best.loc[("rte", "adapter", 8)]
    assert row["lr"] == 1e-3 and row["n_seeds"] == 3 and row["n_candidates"] == 2   # not the dev-bait lr 3e-3
    assert row["dev_mean"] == pytest.approx(60.0) and row["dev_sem"] == pytest.approx(2 / math.sqrt(3))
    assert row["val_mean"] == pytest.approx((74 + 50 + 50) / 3)
    full = best[(best["task"] == "rte") & (best["policy"] == "full")].iloc[0]
    assert full["lr"] == 5e-5 and full["dev_mean"] == pytest.approx(64.0) and math.isnan(full["adapter_size"])
    # shuffling dev scores never changes what is selected
    shuffled = df.assign(dev_score=df["dev_score"].sample(frac=1, random_state=0).to_numpy())
    again = aggregate.select_best(shuffled)
    assert list(again["run_id"]) == list(aggregate.select_best(df)["run_id"])


def test_select_best_single_seed_sem_nan_and_failed_ignored():
    df = aggregate.records_frame([fake_record(lr=1e-3, val=70), fake_record(lr=3e-3, val=80, status="failed")])
    best = aggregate.select_best(df)
    assert len(best) == 1 and best["lr"].iloc[0] == 1e-3 and math.isnan(best["dev_sem"].iloc[0])


def test_glue_table_methods_tasks_average_and_params():
    df = aggregate.records_frame(glue_records())
    table = aggregate.glue_table(df)
    assert list(table.index) == ["full", "adapters_8_256", "adapters_budget", "adapters_64"]
    assert list(table.columns[:3]) == ["CoLA", "RTE", "average"]           # paper's task order
    assert table.loc["full", "RTE"] == pytest.approx(64.0)
    assert table.loc["adapters_8_256", "average"] == pytest.approx((60 + 50) / 2)
    long = aggregate.glue_selection(df)
    assert set(long.loc[long["method"] == "adapters_8_256", "adapter_size"]) == {8}   # best size on validation
    a8, a64 = trainable_of("adapter", 8), trainable_of("adapter", 64)
    assert table.loc["adapters_8_256", "trainable_per_task"] == a8
    assert table.loc["adapters_64", "total_params_multiple"] == pytest.approx((BASE - LN + 2 * a64) / BASE)
    assert table.loc["full", "total_params_multiple"] == pytest.approx(2 * (BASE + HEAD) / BASE)
    sem = aggregate.glue_table(df, "dev_sem")
    assert sem.loc["adapters_64", "average"] == pytest.approx(math.sqrt(2 * (2 / math.sqrt(3)) ** 2) / 2)
    assert aggregate.glue_table(df, "n_seeds").loc["adapters_64", "RTE"] == 3
    one_seed = aggregate.records_frame([r for r in glue_records()
                                        if not (r["task"] == "rte" and r["policy"] == "adapter" and r["seed"] > 0)])
    assert math.isnan(aggregate.glue_table(one_seed, "dev_sem").loc["adapters_64", "average"])  # RTE: 1 seed


def test_glue_table_average_needs_every_task():
    recs = [r for r in glue_records() if not (r["task"] == "cola" and r["policy"] == "full")]
    table = aggregate.glue_table(aggregate.records_frame(recs))
    assert math.isnan(table.loc["full", "average"]) and math.isnan(table.loc["full", "CoLA"])


def size_records():
    recs = []
    for task in ("cola", "sst2"):
        recs += [fake_record(task, "adapter", 2 ** k, val=50 + k, dev=40 + k) for k in range(0, 9)]
        recs += [fake_record(task, "top_k", top_k=k, lr=1e-4, val=40 + k, dev=30 + k) for k in range(1, 7)]
        recs += [fake_record(task, "layernorm", lr=3e-3, val=45, dev=35),
                 fake_record(task, "full", lr=5e-5, val=60, dev=55)]
    return recs


def test_size_and_init_curves_and_plots():
    curve = aggregate.size_curve(aggregate.records_frame(size_records()))
    assert len(curve) == 2 * (9 + 6 + 2)
    assert list(curve["task"].unique()) == ["cola", "sst2"]
    cola = curve[curve["task"] == "cola"]
    assert list(cola["method"].unique()) == ["full", "adapter", "top_k", "layernorm"]
    assert cola[cola["method"] == "adapter"]["trainable"].is_monotonic_increasing
    axes = plots.plot_size_curve(curve)
    assert len(axes) == 2 and axes[0].get_xscale() == "log" and "trained parameters" in axes[0].get_xlabel()
    assert "MCC (x100)" in axes[0].get_ylabel()  # plots.metric_label: one convention on every axis

    stds = [1e-7, 1e-5, 1e-3, 1e-1, 1.0]
    recs = [fake_record(t, "adapter", init_std=s, seed=seed, val=70 - 10 * s, dev=60 - 10 * s + seed)
            for t in ("cola", "rte") for s in stds for seed in (0, 1)]
    init = aggregate.init_curve(aggregate.records_frame(recs))
    assert list(init["init_std"]) == stds * 2 and set(init["n_seeds"]) == {2}
    assert init["dev_mean"].iloc[-1] == pytest.approx(50.5)
    axes = plots.plot_init_curve(init, floors={"cola": 0.0})  # one panel per task: MCC and accuracy apart
    assert [a.get_title() for a in axes] == ["CoLA", "RTE"]
    assert all(a.get_xscale() == "log" and "init std" in a.get_xlabel() for a in axes)
    labels = [t.get_text() for t in axes[-1].get_legend().get_texts()]
    assert labels[1:] == ["init: paper (1e-2)", "init: official code (1e-3)"] and "± s.e.m." in labels[0]
    assert "majority class" in axes[0].get_legend_handles_labels()[1]  # CoLA's floor; RTE got none


@pytest.mark.slow
def test_write_tables_is_deterministic_and_removes_stale(tmp_path):
    folder = write_study(tmp_path / "study", glue_records() + size_records())
    mine = folder / "tables" / "old_table.csv"   # not written by aggregate: never removed
    mine.parent.mkdir()
    mine.write_text("x\n")
    written = aggregate.write_tables(folder, plots=True)
    assert mine.read_text() == "x\n"
    assert {"runs", "best", "summary", "glue_selection", "glue_table_dev_mean", "glue_table_dev_sem",
            "size_curve", "size_curve_png"} <= set(written)
    first = {p.name: p.read_bytes() for p in (folder / "tables").glob("*.csv")}
    aggregate.write_tables(folder)
    assert first == {p.name: p.read_bytes() for p in (folder / "tables").glob("*.csv")}
    table = pd.read_csv(written["glue_table_dev_mean"])
    assert list(table["method"]) == ["full", "adapters_8_256", "adapters_budget", "adapters_64"]
    summary = pd.read_csv(written["summary"]).set_index("key")["value"]
    n_runs = len({r["run_id"] for r in glue_records() + size_records()})  # the two share a few runs
    assert summary["runs"] == str(n_runs) and summary["failed"] == "0"


def committed_studies():
    root = aggregate.RESULTS_DIR
    return sorted(p.parent.parent for p in root.glob("*/tables/*.csv")) if root.is_dir() else []


@pytest.mark.committed
@pytest.mark.parametrize("study", sorted(set(committed_studies())) or [None], ids=lambda p: p.name if p else "none")
def test_committed_tables_equal_a_fresh_aggregation(study, tmp_path):
    """Every committed table is exactly what the aggregation code computes from the committed records."""
    if study is None:
        pytest.skip("no committed tables under data/results/ yet")
    fresh = aggregate.write_tables(study, out_dir=tmp_path)
    committed = {p.name: p.read_text() for p in (study / "tables").glob("*.csv")}
    recomputed = {p.name: p.read_text() for p in fresh.values() if p.suffix == ".csv"}
    assert sorted(committed) == sorted(recomputed), "committed tables differ from the set the code writes"
    for name, text in committed.items():
        assert text == recomputed[name], f"{study.name}/tables/{name} is not a fresh aggregation of the records"


@pytest.mark.committed
def test_committed_twin_tables_equal_a_fresh_comparison(tmp_path):
    """data/results/hardware_check/twins/ is exactly what `python sweeps/hardware_check.py` computes from the
    committed records of hardware_check and glue_v2."""
    committed = aggregate.RESULTS_DIR / "hardware_check" / "twins"
    if not committed.is_dir():
        pytest.skip("no committed twin tables")
    pairs = aggregate.twin_pairs("hardware_check", "glue_v2")
    fresh = aggregate.write_twin_tables(pairs, aggregate.twin_differences(pairs), tmp_path)
    assert sorted(p.name for p in committed.glob("*.csv")) == sorted(p.name for p in fresh.values())
    for path in fresh.values():
        assert (committed / path.name).read_text() == path.read_text(), f"{path.name} is not fresh"


def test_best_size_is_chosen_on_the_seed_means_of_each_sizes_winner():
    recs = glue_records()
    for rec in recs:  # size 64 wins on seeds 1-2 by far: its 3-seed validation mean beats size 8's
        if rec["task"] == "rte" and rec["config"]["adapter_size"] == 64 and rec["seed"] > 0:
            rec["selected"]["validation_accuracy"] = 80.0
    long = aggregate.glue_selection(aggregate.records_frame(recs)).set_index(["method", "task"])
    assert long.loc[("adapters_8_256", "rte"), "adapter_size"] == 64
    assert long.loc[("adapters_8_256", "rte"), "lr"] == 1e-3 and long.loc[("adapters_8_256", "rte"), "n_seeds"] == 3
    assert long.loc[("adapters_8_256", "cola"), "adapter_size"] == 8


def test_recipe_options_are_columns_and_keep_variants_apart(tmp_path):
    """Records before the recipe options read as the legacy recipe; head-input variants stay separate in `best`."""
    old = fake_record("cola", "adapter", 64)
    old["config"] = {k: v for k, v in old["config"].items()
                     if k not in ("patience", "head_input", "train_pooler", "fast")}  # a v1 record
    mean = fake_record("cola", "adapter", 64, val=80.0)
    cfg = TrainConfig(task="cola", adapter_size=64, lr=1e-3, head_input="mean", patience=3, epochs=20)
    mean.update(run_id=run_id(cfg), config=cfg.to_dict())
    mean["timing"].update(epochs_run=12, stopped_early=True)
    df = aggregate.load_study(write_study(tmp_path / "study", [old, mean])).set_index("run_id")
    assert df.loc[old["run_id"], "head_input"] == "pooler" and not df.loc[old["run_id"], "train_pooler"]
    assert math.isnan(df.loc[old["run_id"], "patience"])
    assert df.loc[mean["run_id"], "head_input"] == "mean" and df.loc[mean["run_id"], "patience"] == 3
    assert df.loc[mean["run_id"], "epochs_run"] == 12 and df.loc[mean["run_id"], "stopped_early"]
    best = aggregate.build_tables(df.reset_index(), [old, mean])["best"]
    assert sorted(best["head_input"]) == ["mean", "pooler"]  # one row each, not the better of the two


def two_seed_gap_records():
    """RTE and MRPC, full fine-tuning and adapters (64), seeds 0-1, as (validation, dev) pairs:
    RTE full (70, 60), (71, 62), adapters (69, 58), (68, 61);
    MRPC full (85, 80), (84, 84), adapters (86, 83), (83, 81)."""
    recs = []
    for task, full, adapter in (("rte", [(70, 60), (71, 62)], [(69, 58), (68, 61)]),
                                ("mrpc", [(85, 80), (84, 84)], [(86, 83), (83, 81)])):
        recs += [fake_record(task, "full", lr=1e-4, seed=s, val=v, dev=d) for s, (v, d) in enumerate(full)]
        recs += [fake_record(task, "adapter", 64, lr=1e-3, seed=s, val=v, dev=d) for s, (v, d) in enumerate(adapter)]
    return recs


def test_best_of_seeds_and_the_seed_bootstrap_of_the_average_gap():
    """Hand-computed: RTE full dev (60, 62), adapters (58, 61); MRPC full (80, 84), adapters (83, 81).
    Gaps of the means: RTE 59.5 - 61 = -1.5, MRPC 82 - 82 = 0, average -0.75. Best of seeds on validation
    (the paper's way): the seed with the higher validation score."""
    recs = two_seed_gap_records()
    df = aggregate.records_frame(recs)
    long = aggregate.glue_selection(df).set_index(["method", "task"])
    assert long.loc[("full", "rte"), "dev_best_of_seeds"] == 62      # seed 1: validation 71 > 70
    assert long.loc[("adapters_64", "rte"), "dev_best_of_seeds"] == 58         # seed 0: validation 69 > 68
    assert long.loc[("adapters_64", "mrpc"), "dev_best_of_seeds"] == 83
    gap = aggregate.glue_gap(df, n_boot=4000, seed=1).set_index("method").loc["adapters_64"]
    assert gap["gap_rte"] == pytest.approx(-1.5) and gap["gap_mrpc"] == pytest.approx(0.0)
    assert gap["gap_mean"] == pytest.approx(-0.75)
    assert gap["gap_best_of_seeds"] == pytest.approx(((58 - 62) + (83 - 80)) / 2)  # -0.5
    lo, hi = gap["gap_low_95%"], gap["gap_high_95%"]
    # the extremes a resample can reach: RTE (58-62) .. (61-60), MRPC (81-84) .. (83-80), averaged
    assert -3.5 <= lo < gap["gap_mean"] < hi <= 2.0 and gap["n_seeds_min"] == 2
    # each task's own interval, within what its resamples can reach: RTE -4 .. +1, MRPC -3 .. +3
    assert -4 <= gap["gap_rte_low_95%"] < -1.5 < gap["gap_rte_high_95%"] <= 1
    assert -3 <= gap["gap_mrpc_low_95%"] < 0 < gap["gap_mrpc_high_95%"] <= 3
    # a cell with one seed: its seed noise is not measured, so there is no interval (NaN), only the mean
    one = aggregate.glue_gap(df[df["seed"] == 0]).set_index("method").loc["adapters_64"]
    assert math.isnan(one["gap_low_95%"]) and math.isnan(one["gap_high_95%"]) and one["n_seeds_min"] == 1
    assert one["gap_mean"] == pytest.approx(((58 - 60) + (83 - 80)) / 2)
    mixed = aggregate.glue_gap(df[(df["seed"] == 0) | (df["task"] == "rte")]).set_index("method").loc["adapters_64"]
    assert math.isnan(mixed["gap_low_95%"]) and mixed["n_seeds_min"] == 1   # MRPC has one seed
    assert math.isnan(mixed["gap_mrpc_low_95%"]) and not math.isnan(mixed["gap_rte_low_95%"])  # RTE has two


def test_aggregate_command_prints_the_interval_or_says_why_there_is_none(tmp_path, capsys):
    """`adapterlib aggregate` prints the average gap with its interval; where a cell has one seed there is no
    interval (glue_gap gives NaN), and the line says so instead of printing "+nan .. +nan"."""
    from adapterlib.cli import main
    recs = two_seed_gap_records()
    two = write_study(tmp_path / "two_seeds", recs)
    one = write_study(tmp_path / "one_seed", [r for r in recs if r["seed"] == 0])
    assert main(["aggregate", str(two), "--out-dir", str(tmp_path / "t2")]) == 0
    out = capsys.readouterr().out
    assert "average gap -0.75" in out and "2 tasks (95%" in out and "validation -0.50" in out and "nan" not in out
    assert main(["aggregate", str(one), "--out-dir", str(tmp_path / "t1")]) == 0
    out = capsys.readouterr().out
    assert "gap +0.50" in out and "(no interval" in out and "1 seed" in out and "nan" not in out


# ---------------------------------------------------------------- the Table 1 claim, from the gap table

def _gap_row(mean, lo, hi, n_seeds=3, method="adapters_8_256"):
    import pandas as pd
    return pd.DataFrame([{"method": method, "baseline": "full", "n_tasks": 2, "tasks": "rte cola",
                          "gap_rte": mean - 0.5, "gap_cola": mean + 0.5, "gap_mean": mean, "gap_low_95%": lo,
                          "gap_high_95%": hi, "gap_best_of_seeds": mean + 0.3, "n_seeds_min": n_seeds}])


def _averages(pct, pct_ne, method="adapters_8_256"):
    import pandas as pd
    return pd.DataFrame({"params_per_task_percent": [pct], "params_per_task_percent_no_embedding": [pct_ne]},
                        index=[method])


@pytest.mark.parametrize("mean,lo,hi,n_seeds,status", [
    (-0.2, -0.4, 0.1, 5, "holds"),               # the whole interval above -0.5
    (-2.0, -3.0, -1.0, 5, "does not hold"),      # the whole interval below it
    (-0.3, -1.2, 0.4, 5, "partly"),              # straddles it, the mean within
    (-0.9, -1.5, -0.2, 5, "partly"),             # straddles it, the mean beyond
    (-0.1, -0.1, -0.1, 1, "untestable here"),    # one seed: no interval
])
def test_glue_claim_verdict_reads_the_interval(mean, lo, hi, n_seeds, status):
    from adapterlib.course.results import claim_check, task_gap_table
    claim = claim_check(_gap_row(mean, lo, hi, n_seeds), _averages(2.6, 5.5))
    assert claim.method == "adapters_8_256" and claim.status == status
    assert (claim.gap.mean, claim.gap.low, claim.gap.high) == (mean, lo, hi) and claim.gap.n_tasks == 2
    assert claim.gap.best_of_seeds == pytest.approx(mean + 0.3) and claim.gap.n_seeds == n_seeds
    assert (claim.percent, claim.percent_no_embedding) == (2.6, 5.5)
    assert claim.budget_met == (True, False)      # 2.6 <= 4 < 5.5: as a share of the whole model only
    per_task = task_gap_table(_gap_row(mean, lo, hi, n_seeds).assign(**{
        "gap_rte_low_95%": mean - 1.5, "gap_rte_high_95%": mean + 0.5})).set_index("task")
    assert per_task.loc["rte", ["gap", "low", "high"]].tolist() == pytest.approx([mean - 0.5, mean - 1.5, mean + 0.5])
    assert math.isnan(per_task.loc["cola", "low"])   # no interval for that task


def test_glue_claim_budget_and_missing_inputs():
    from adapterlib.course.results import claim_check, claim_table
    assert claim_check(_gap_row(0, -0.1, 0.1), _averages(1.0, 2.0)).budget_met == (True, True)
    assert claim_check(_gap_row(0, -0.1, 0.1), _averages(10.0, 22.0)).budget_met == (False, False)
    no_cost = claim_check(_gap_row(0, -0.1, 0.1), None)
    assert math.isnan(no_cost.percent) and no_cost.status == "holds"
    missing = claim_check(_gap_row(0, -0.1, 0.1, method="adapters_64"), None)   # no adapters (8-256) gap
    assert missing.gap is None and missing.status == "untestable here"
    table = claim_table(_gap_row(0, -0.1, 0.1), _averages(1.0, 2.0))
    assert table.loc["adapters_8_256", "status"] == "holds" and table.loc["adapters_budget", "n_tasks"] == 0


@pytest.mark.committed
def test_a_choice_on_the_edge_of_its_lr_grid_is_flagged():
    """v1's finding (issue 14): full fine-tuning chose the top of its grid (1e-4) on 4 of 5 tasks."""
    from adapterlib.course import evidence, results
    from adapterlib.studies.paper import with_paper_scores
    runs = aggregate.load_study("glue_cpu")
    chosen = aggregate.glue_selection(runs).set_index(["method", "task"])
    full = chosen.loc["full"]
    assert full["lr_edge"].to_dict() == {"cola": "highest", "sst2": "highest", "mrpc": "highest", "stsb": "",
                                         "rte": "highest"}
    assert (full.loc[full["lr_edge"] == "highest", "lr"] == 1e-4).all() and full.loc["stsb", "lr"] == 5e-5
    assert chosen.loc[("adapters_64", "rte"), "lr_edge"] == "highest"             # 3e-3 of 3e-4 .. 3e-3
    # the adapters (8-256) row chose m=256 at 1e-3 on RTE: the middle of m=256's grid, whatever other sizes did
    assert chosen.loc[("adapters_8_256", "rte"), ["adapter_size", "lr", "lr_edge"]].tolist() == [256, 1e-3, ""]
    # one or two lrs tried: no edge to speak of (of two, one is always the winner)
    for lrs in ([1e-4], [5e-5, 1e-4]):
        some = runs[(runs["policy"] == "full") & runs["lr"].isin(lrs)]
        assert set(aggregate.select_best(some, by=("task",))["lr_edge"]) == {""}
    comparison = with_paper_scores(aggregate.glue_selection(runs))
    comparison["task"] = [get_task(t).display for t in comparison["task"]]
    records = evidence.sweep_records(comparison, runs, "glue_cpu")
    checks = results.seed_checks(comparison, evidence.sweep_floors(comparison, records))
    # issue 15 (notebook 04 showed glue_cpu until 2026-12-04): v1's RTE adapters (64) sit on RTE's majority class;
    # the why table says what the records show
    [rte64] = [c for c in checks if (c.name, c.task) == ("adapters_64", "RTE")]
    assert rte64.status == "at" and not rte64.learned
    named = {(c.name, c.task): r for c, r in zip(checks, records, strict=True) if not c.learned}
    why = results.why_table(named, {"RTE": evidence.class_frequency_loss("rte")}).set_index(["method", "task"])
    row = why.loc[("adapters_64", "RTE")]
    assert round(row["loss"], 2) == 0.69 and row["run_epochs"] == (3.0,) and bool(row["under_fit"])
    assert bool(row["frozen_pooler"])   # v1 read [CLS] through the frozen pooler
    flagged = {(f.method, f.task): (f.lr, f.edge) for f in results.edge_flags(comparison)}
    assert flagged == {**{("full", t): (1e-4, "highest") for t in ("CoLA", "SST-2", "MRPC", "RTE")},
                       **{(m, "RTE"): (3e-3, "highest") for m in ("adapters_budget", "adapters_64")}}
    # size_cpu has one lr per point: nothing is on an edge
    size_cpu = aggregate.size_curve(aggregate.load_study("size_cpu"))
    assert results.edge_flags(size_cpu) == []
    curve = size_cpu.assign(lr_edge="")
    curve.loc[(curve["policy"] == "top_k") & (curve["top_k"] == 2) & (curve["task"] == "cola"), "lr_edge"] = "lowest"
    assert results.edge_flags(curve) == [results.EdgeFlag("top_k", "cola", "top-2", 1e-4, "lowest")]


@pytest.mark.committed
def test_a_run_trained_again_in_another_study_has_the_same_record():
    """ablation_v2 trains two of glue_v2's runs again (same run id, for their checkpoints): on this CPU training is
    deterministic, so the committed records agree to the last digit (not copies: neither is `reused_from`).
    Only pairs trained the same way compare: as many torch threads (the order of float sums) and the same speed
    path (`adapterlib.fast` draws dropout masks from other random bits; ablation_cpu's runs predate it), on
    the same kind of machine (hardware_check trains CPU runs again on a GPU to measure that difference)."""
    from adapterlib.records import load_records
    root = aggregate.RESULTS_DIR
    by_study = {p.parent.name: {r["run_id"]: r for r in load_records(p) if r.get("status") == "ok"}
                for p in sorted(root.glob("*/runs"))} if root.is_dir() else {}
    pairs = [(a[i], b[i]) for s, a in by_study.items() for t, b in by_study.items() if s < t
             for i in set(a) & set(b) if not a[i].get("reused_from") and not b[i].get("reused_from")
             and a[i]["machine"].get("torch_threads") == b[i]["machine"].get("torch_threads")
             and a[i]["machine"].get("gpu") == b[i]["machine"].get("gpu")
             and (a[i].get("speedups") or {}).get("fast_modules") == (b[i].get("speedups") or {}).get("fast_modules")]
    if not pairs:
        pytest.skip("no run trained in two committed studies")
    for a, b in pairs:
        assert a["history"] == b["history"] and a["dev"] == b["dev"] and a["selected"] == b["selected"], a["run_id"]


def test_twin_runs_trained_on_two_machines_are_paired_and_compared(tmp_path, capsys):
    """sweeps/hardware_check.py: runs with the same run id in two studies are paired (copies and failed runs are
    not), and each setting's mean dev difference gets a seed bootstrap interval."""
    import importlib.util
    from pathlib import Path

    def write(study, run_id, seed, dev, val, gpu=None, **extra):
        folder = tmp_path / study / "runs"
        folder.mkdir(parents=True, exist_ok=True)
        machine = {"cpu_count": 2, "torch_threads": 1, **({"gpu": gpu} if gpu else {})}
        (folder / f"{run_id}.json").write_text(json.dumps({
            "run_id": run_id, "status": "ok", "task": "cola", "policy": "adapter", "metric": "mcc",
            "config": {"task": "cola", "policy": "adapter", "adapter_size": 256, "lr": 6e-4, "seed": seed},
            "params": {"trainable": 1}, "machine": machine, "selected": {"epoch": 3.0, "validation_mcc": val},
            "dev_score": dev, "timing": {"wall_s": 1.0, "epochs_run": 5}, **extra,
            # epoch by epoch: the GPU's losses 0.01 lower and its validation 1 point higher, one epoch fewer
            "history": [{"epoch": e + 1.0, "train_loss": 0.6 - 0.1 * e - (0.01 if gpu else 0.0),
                         "validation_mcc": val - 2 + e + (1 if gpu else 0)} for e in range(2 if gpu else 3)]}))

    for seed, (gpu_dev, cpu_dev) in enumerate([(30.0, 28.0), (29.0, 28.0), (31.0, 28.0)]):
        write("gpu", f"r{seed}", seed, gpu_dev, 40.0, gpu="NVIDIA H200")
        write("cpu", f"r{seed}", seed, cpu_dev, 39.0)
    write("gpu", "only-here", 7, 50.0, 50.0, gpu="NVIDIA H200")                       # no twin
    write("cpu", "copied", 8, 10.0, 10.0)
    write("gpu", "copied", 8, 10.0, 10.0, reused_from={"study": "cpu", "sha256": "0"})  # a copy is no twin
    write("gpu", "r9", 9, 20.0, 20.0, gpu="NVIDIA H200")
    write("cpu", "r9", 9, 20.0, 20.0, gpu="NVIDIA H200", reused_from={"study": "gpu", "sha256": "0"})  # itself
    write("gpu", "p3", 3, 31.0, 40.0, gpu="NVIDIA H200")
    write("cpu", "p3", 3, 28.0, 39.0, reused_from={"study": "pilot", "sha256": "0"})  # trained by an earlier study
    pairs = aggregate.twin_pairs(tmp_path / "gpu", tmp_path / "cpu")
    assert list(pairs["run_id"]) == ["p3", "r0", "r1", "r2"]
    pairs = pairs[pairs["run_id"] != "p3"]
    assert set(pairs["machine"]) == {"NVIDIA H200"} and set(pairs["reference_machine"]) == {"CPU (2 cores)"}
    diffs = aggregate.twin_differences(pairs, n_boot=2000)
    (d,) = diffs.to_dict("records")
    assert d["n_seeds"] == 3 and d["dev_diff"] == pytest.approx(2.0) and d["val_diff"] == pytest.approx(1.0)
    assert 1.0 <= d["dev_diff_low"] <= 2.0 <= d["dev_diff_high"] <= 3.0      # the mean of resampled 1, 1 and 3
    assert d["val_diff_low"] == d["val_diff_high"] == pytest.approx(1.0)      # every seed's validation: +1
    assert d["epochs_run"] == d["reference_epochs_run"] == 5
    # epoch by epoch over the 2 epochs both ran: GPU validation (40 - 2 + e + 1) against CPU (39 - 2 + e): +2
    assert set(pairs["same_epochs"]) == {2} and d["val_same_epochs_diff"] == pytest.approx(2.0)
    assert d["train_loss_max_abs_diff"] == pytest.approx(0.01)
    (one,) = aggregate.twin_differences(pairs.iloc[:1]).to_dict("records")  # one seed: no spread, no interval
    assert one["dev_diff"] == pytest.approx(2.0) and pd.isna(one["dev_diff_low"]) and pd.isna(one["dev_diff_high"])
    repo = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("hardware_check", repo / "sweeps" / "hardware_check.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--study", str(tmp_path / "gpu"), "--reference", str(tmp_path / "cpu")]) == 0
    out = capsys.readouterr().out
    assert "NVIDIA H200 - CPU (2 cores) = +2.25" in out and "excludes 0: systematic" in out
    assert "validation +1.00 (95% +1.00 .. +1.00, excludes 0)" in out and "epochs run 5.0 vs 5.0" in out
    assert "validation +2.00" in out and "within 0.010" in out   # at the epochs both ran; training loss
    assert (tmp_path / "gpu" / "twins" / "twin_differences.csv").is_file()
    assert (tmp_path / "gpu" / "twins" / "twin_pairs.png").read_bytes()[:4] == b"\x89PNG"
    assert script.main(["--study", str(tmp_path / "cpu"), "--reference", str(tmp_path / "nothing")]) == 1


@pytest.mark.committed
def test_ledger_states_the_hardware_check_as_measured():
    """The reproduction ledger's (book/reproduction.md) figures for CPU vs GPU are the committed records' twin
    differences, not typed from memory."""
    from pathlib import Path
    if not (aggregate.RESULTS_DIR / "hardware_check" / "runs").is_dir():
        pytest.skip("no hardware_check records")
    pairs = aggregate.twin_pairs("hardware_check", "glue_v2")
    diffs = aggregate.twin_differences(pairs).set_index("policy")
    adapters = pairs[pairs["policy"] == "adapter"]
    lower = int((adapters["val_score"] < adapters["reference_val_score"]).sum())
    assert lower == len(adapters) == 5  # the ledger's "all 5 pairs" and its sign test
    sign_p = 2 * 0.5 ** len(adapters)
    readme = " ".join((Path(__file__).resolve().parents[1] / "book" / "reproduction.md").read_text().split())
    a, f = diffs.loc["adapter"], diffs.loc["full"]
    for text in (f"{a['dev_diff']:+.2f} for adapters m=256 (95% seed bootstrap {a['dev_diff_low']:+.2f} .. "
                 f"{a['dev_diff_high']:+.2f})",
                 f"{f['dev_diff']:+.2f} for full fine-tuning ({f['dev_diff_low']:+.2f} .. {f['dev_diff_high']:+.2f})",
                 f"over {a['n_seeds']} seeds each",
                 f"({a['val_diff']:+.2f}, 95% {a['val_diff_low']:+.2f} .. {a['val_diff_high']:+.2f})",
                 f"({a['epochs_run']:.1f} vs {a['reference_epochs_run']:.1f} epochs on average)",
                 f"validation differs by {f['val_diff']:+.2f} ({f['val_diff_low']:+.2f} .. {f['val_diff_high']:+.2f})",
                 f"lower on the GPU in all {lower} pairs", f"{lower} of {lower} with one sign has a",
                 f"two-sided sign-test p of {sign_p:.2f}",
                 f"losses differ by at most {a['train_loss_max_abs_diff']:.3f} for adapters "
                 f"({f['train_loss_max_abs_diff']:.3f} for full fine-tuning)",
                 f"validation scores by {a['val_same_epochs_diff']:+.2f} on average for adapters "
                 f"({f['val_same_epochs_diff']:+.2f} for full fine-tuning)"):
        assert text in readme, text


@pytest.mark.committed
def test_a_gpu_run_repeated_on_the_gpu_is_the_same_run():
    """The reproduction ledger (hardware check) and size_v2/set_aside/README.md say a run repeats exactly on one
    machine: the set-aside H200 record and the H200 record of the same run id in size_v2/runs (another session,
    another commit, 15 runs at a time instead of 7) agree in every epoch and every score."""
    import json
    name = "cola-adapter-m16-lr0.0012-s0-mean-es3-bf16-3b10e222.json"
    first = json.loads((aggregate.RESULTS_DIR / "size_v2" / "set_aside" / name).read_text())
    again = json.loads((aggregate.RESULTS_DIR / "size_v2" / "runs" / name).read_text())
    assert first["machine"]["gpu"] == again["machine"]["gpu"] == "NVIDIA H200"
    assert first["created"] != again["created"] and first["git"]["commit"] != again["git"]["commit"]
    assert len(first["history"]) == first["timing"]["epochs_run"] == 8
    for key in ("history", "selected", "dev", "dev_score", "config"):
        assert first[key] == again[key], key
