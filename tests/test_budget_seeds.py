"""select_then_seeds' budget_percent and Table 1's "adapters (within 4%)" row (issue 14's goal: adapters at
no more than 4% of the base model's parameters per task). Planning is tested on hand-written records."""
import json
import math

import pytest

from adapterlib.sweeps import aggregate
from adapterlib.sweeps import driver as sweep
from adapterlib.sweeps.spec import SweepSpecError, expand, parse_spec

PERCENT = {8: 0.4, 64: 2.7, 256: 10.5}   # MiniLM's adapters: % of the base trained per task


def spec_of(budget=4, extend=False):
    data = {"name": "budget", "base": {"task": "cola", "policy": "adapter", "epochs": 3},
            "grid": {"seed": [0]},
            "variants": [{"adapter_size": [8], "lr": [5e-4, 1.5e-3, 5e-3]},
                         {"adapter_size": [64], "lr": [3e-4, 1e-3, 2e-3]},
                         {"adapter_size": [256], "lr": [1e-4, 3e-4, 6e-4]},
                         {"policy": ["full"], "adapter_size": [64], "lr": [3e-5, 1e-4, 3e-4]}],
            "select_then_seeds": {"by": ["task", "policy"], "seeds": [1, 2]}}
    if budget is not None:
        data["select_then_seeds"]["budget_percent"] = budget
    if extend:
        data["extend_edges"] = {"by": ["task", "policy"], "steps": 1}
    return parse_spec(data)


def write(runs_dir, run, val):
    f = run.fields
    pct = 100.0 if f["policy"] == "full" else PERCENT[f["adapter_size"]]
    rec = {"run_id": run.run_id, "status": "ok", "task": f["task"], "policy": f["policy"], "config": f,
           "seed": f["seed"], "timing": {"wall_s": 60.0}, "metric": "mcc", "dev_score": val - 5,
           "selected": {"epoch": 1.0, "validation_mcc": val},
           "params": {"trainable": pct, "frozen": 100 - pct, "base": 100, "percent_of_base": pct}}
    runs_dir.mkdir(parents=True, exist_ok=True)
    (runs_dir / f"{run.run_id}.json").write_text(json.dumps(rec))


VAL = {(8, 5e-4): 28.0, (8, 1.5e-3): 29.0, (8, 5e-3): 20.0, (64, 3e-4): 31.0, (64, 1e-3): 33.3, (64, 2e-3): 30.0,
       (256, 1e-4): 30.0, (256, 3e-4): 33.0, (256, 6e-4): 34.4}   # CoLA's shape: m=256 wins, m=64 close behind


def val_of(run):
    f = run.fields
    return {3e-5: 30.0, 1e-4: 33.0, 3e-4: 20.0}[f["lr"]] if f["policy"] == "full" else VAL[(f["adapter_size"], f["lr"])]


def seeded(runs):
    return sorted((r.fields["policy"], r.fields["adapter_size"], r.fields["lr"], r.fields["seed"]) for r in runs)


def test_the_best_setting_within_the_budget_gets_seeds_too(tmp_path):
    spec, runs_dir = spec_of(), tmp_path / "runs"
    grid = expand(spec)
    for run in grid:
        write(runs_dir, run, val_of(run))
    # the group's winner (m=256 at 6e-4) and the best within 4% (m=64 at 1e-3); full fine-tuning has none within
    assert seeded(sweep.seed_runs(spec, grid, runs_dir)) == [
        ("adapter", 64, 1e-3, 1), ("adapter", 64, 1e-3, 2), ("adapter", 256, 6e-4, 1), ("adapter", 256, 6e-4, 2),
        ("full", 64, 1e-4, 1), ("full", 64, 1e-4, 2)]
    assert "within 4%" in sweep.describe_plan(spec, tmp_path)
    # without budget_percent only the winners are seeded
    plain = spec_of(budget=None)
    assert seeded(sweep.seed_runs(plain, expand(plain), runs_dir)) == [
        ("adapter", 256, 6e-4, 1), ("adapter", 256, 6e-4, 2), ("full", 64, 1e-4, 1), ("full", 64, 1e-4, 2)]


def test_a_winner_within_the_budget_is_seeded_once(tmp_path):
    spec, runs_dir = spec_of(), tmp_path / "runs"
    grid = expand(spec)
    for run in grid:
        write(runs_dir, run, val_of(run) + (10 if run.fields["adapter_size"] == 64 and run.fields["lr"] == 1e-3 else 0))
    adapters = [r for r in sweep.seed_runs(spec, grid, runs_dir) if r.fields["policy"] == "adapter"]
    assert seeded(adapters) == [("adapter", 64, 1e-3, 1), ("adapter", 64, 1e-3, 2)]


def test_the_budget_winner_on_its_grid_edge_gets_an_lr_past_it(tmp_path):
    spec, runs_dir = spec_of(extend=True), tmp_path / "runs"
    grid = expand(spec)
    for run in grid:   # m=64 peaks at 2e-3, the top of its grid; the overall winner m=256 at 3e-4 is inside its grid
        f = run.fields
        write(runs_dir, run, {(64, 2e-3): 33.9, (64, 1e-3): 33.3, (256, 6e-4): 33.0, (256, 3e-4): 34.4}.get(
            (f["adapter_size"], f["lr"]), val_of(run)) if f["policy"] == "adapter" else val_of(run))
    edges = sweep.edge_runs(spec, grid, runs_dir)
    assert [(r.fields["adapter_size"], r.fields["lr"]) for r in edges] == [(64, 4e-3)]   # 2e-3 x (2e-3 / 1e-3)
    waiting = [r for r in sweep.seed_runs(spec, grid, runs_dir) if r.fields["policy"] == "adapter"]
    assert waiting == []                                     # the adapter group's seeds wait for the added lr


@pytest.mark.parametrize("value", [0, 100, "4%", True])
def test_budget_percent_must_be_a_percentage(value):
    with pytest.raises(SweepSpecError, match="budget_percent .* 0 and 100"):
        parse_spec({"name": "x", "base": {"task": "cola"}, "grid": {"lr": [1e-3]},
                    "select_then_seeds": {"by": ["task"], "seeds": [1], "budget_percent": value}})


def test_table_1_gets_a_row_whose_size_is_chosen_within_the_budget(tmp_path):
    spec, runs_dir = spec_of(), tmp_path / "study" / "runs"
    grid = expand(spec)
    for run in grid + sweep.seed_runs(spec, grid, runs_dir):
        write(runs_dir, run, val_of(run))
    for run in sweep.seed_runs(spec, grid, runs_dir):
        write(runs_dir, run, val_of(run) - 1)
    df = aggregate.load_study(runs_dir)
    long = aggregate.glue_selection(df).set_index("method")
    assert list(long.index) == ["full", "adapters_8_256", "adapters_budget", "adapters_64"]
    widest = long.loc["adapters_8_256"]
    assert (widest["adapter_size"], widest["percent_of_base"]) == (256, 10.5)
    within = long.loc["adapters_budget"]
    assert (within["adapter_size"], within["lr"], within["n_seeds"]) == (64, 1e-3, 3)
    assert within["percent_of_base"] == pytest.approx(2.7)
    assert within["n_candidates"] == 6                     # m=8 and m=64's grids: m=256 is over the budget
    table = aggregate.glue_table(df)
    assert table.loc["adapters_budget", "params_per_task_percent"] == pytest.approx(2.7)
    gap = aggregate.glue_gap(df, n_boot=500).set_index("method")
    assert "adapters_budget" in gap.index and gap.loc["adapters_budget", "n_seeds_min"] == 3
    assert not math.isnan(gap.loc["adapters_budget", "gap_low_95%"])
    # rows that chose the same runs (here within 4% and 64) get the same interval, whatever rows come before
    same = ["gap_mean", "gap_low_95%", "gap_high_95%", "gap_cola_low_95%", "gap_cola_high_95%"]
    assert gap.loc["adapters_budget", same].tolist() == gap.loc["adapters_64", same].tolist()


def test_the_estimate_counts_a_second_winner_for_groups_still_waiting(tmp_path):
    spec = spec_of()
    progress = sweep.study_progress(spec, tmp_path)     # nothing has run: 9 adapter + 3 full grid runs
    assert progress["planned"] == 12 + 2 + 2             # one winner per group, 2 seeds each
    assert progress["planned_max"] == 12 + 2 * 2 + 2     # the adapter group may seed its best within 4% too
    plain = spec_of(budget=None)
    assert sweep.study_progress(plain, tmp_path)["planned_max"] == 12 + 2 + 2
