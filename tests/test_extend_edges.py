"""extend_edges: a grid whose validation winner sits on its edge gets one more lr past it, before any seeds.

Planning is tested on hand-written records (no training); one sweep on the tiny model checks that the
driver trains the added lr after the grid and before the seeds, and seeds the final winner."""
import json

import pytest
import yaml

from adapterlib.cli import main
from adapterlib.sweeps import driver as sweep
from adapterlib.sweeps.aggregate import load_study, select_best
from adapterlib.sweeps.spec import SweepSpecError, expand, load_spec, parse_spec


def spec_of(grid_lrs=(1e-4, 3e-4, 1e-3), seeds=(0,), steps=1):
    data = {"name": "edges", "base": {"task": "rte", "policy": "adapter", "adapter_size": 8, "epochs": 3},
            "grid": {"seed": list(seeds), "lr": list(grid_lrs)},
            "extend_edges": {"by": ["task", "policy"], "steps": steps},
            "select_then_seeds": {"by": ["task", "policy"], "seeds": [1, 2]}}
    return parse_spec(data)


def write(runs_dir, run, val, status="ok"):
    rec = {"run_id": run.run_id, "status": status, "task": run.fields["task"], "policy": run.fields["policy"],
           "config": run.fields, "seed": run.fields["seed"], "timing": {"wall_s": 60.0}}
    if status == "ok":
        rec.update(metric="accuracy", selected={"epoch": 1.0, "validation_accuracy": val}, dev_score=val - 5,
                   params={"trainable": 10, "frozen": 90, "base": 100, "percent_of_base": 10.0})
    else:
        rec["error"] = "boom"
    runs_dir.mkdir(parents=True, exist_ok=True)
    (runs_dir / f"{run.run_id}.json").write_text(json.dumps(rec))


def by_lr(runs):
    return {r.fields["lr"]: r for r in runs}


def test_a_winner_on_the_top_edge_gets_the_next_lr_before_any_seed(tmp_path):
    spec, runs_dir = spec_of(), tmp_path / "runs"
    grid = by_lr(expand(spec))
    write(runs_dir, grid[1e-4], 60.0)
    write(runs_dir, grid[3e-4], 62.0)
    assert sweep.edge_runs(spec, list(grid.values()), runs_dir) == []      # the grid is not finished yet
    write(runs_dir, grid[1e-3], 65.0)                                         # the winner, on the top edge
    [edge] = sweep.edge_runs(spec, list(grid.values()), runs_dir)
    assert edge.stage == "edge" and edge.fields["lr"] == 3.3e-3 and edge.fields["seed"] == 0  # 1e-3 x (1e-3 / 3e-4)
    assert ({k: v for k, v in edge.fields.items() if k != "lr"}
            == {k: v for k, v in grid[1e-3].fields.items() if k != "lr"})
    assert sweep.seed_runs(spec, list(grid.values()), runs_dir) == []      # the seeds wait for the added lr
    plan = sweep.describe_plan(spec, tmp_path)
    assert "extend_edges" in plan and "1 runs so far" in plan
    assert sweep.study_progress(spec, tmp_path)["planned"] == 4 + 2       # 3 grid + 1 edge, then 2 seeds
    # the added lr loses: no further lr (it is not the winner), and the seeds go to the grid's winner
    write(runs_dir, edge, 50.0)
    assert sweep.edge_runs(spec, list(grid.values()), runs_dir) == [edge]   # still planned (it ran)
    assert {r.fields["lr"] for r in sweep.seed_runs(spec, list(grid.values()), runs_dir)} == {1e-3}


def test_an_added_lr_that_wins_is_seeded_and_steps_bound_the_extension(tmp_path):
    spec, runs_dir = spec_of(steps=1), tmp_path / "runs"
    grid = by_lr(expand(spec))
    for lr, val in ((1e-4, 60.0), (3e-4, 62.0), (1e-3, 65.0)):
        write(runs_dir, grid[lr], val)
    [edge] = sweep.edge_runs(spec, list(grid.values()), runs_dir)
    write(runs_dir, edge, 70.0)                                   # wins again, on the new edge: steps=1 stops here
    assert sweep.edge_runs(spec, list(grid.values()), runs_dir) == [edge]
    seeds = sweep.seed_runs(spec, list(grid.values()), runs_dir)
    assert [(r.fields["lr"], r.fields["seed"]) for r in seeds] == [(3.3e-3, 1), (3.3e-3, 2)]
    # a seed an older sweep ran at the grid's winner is off the plan now: its time still counts, as spent
    from adapterlib.sweeps.spec import make_run
    write(runs_dir, make_run(spec, {**grid[1e-3].fields, "seed": 1}, stage="seeds"), 64.0)
    progress = sweep.study_progress(spec, tmp_path)
    assert (progress["finished"], progress["planned"], progress["off_plan"]) == (4, 6, 1)
    assert progress["wall_h"] == pytest.approx(5 * 60 / 3600)
    # with steps=2 the sweep goes one more step (3.3e-3 x 3.3e-3 / 1e-3 = 1.1e-2), and the seeds wait again
    spec2 = spec_of(steps=2)
    edges = sweep.edge_runs(spec2, expand(spec2), runs_dir)
    assert [r.fields["lr"] for r in edges] == [3.3e-3, 1.1e-2]
    assert sweep.seed_runs(spec2, expand(spec2), runs_dir) == []


def test_the_bottom_edge_a_middle_winner_and_the_grid_seeds(tmp_path):
    # two seeds in the grid (as RTE and MRPC in glue_v2): the added lr runs at both, below the bottom edge
    spec, runs_dir = spec_of(grid_lrs=(3e-5, 1e-4, 3e-4), seeds=(0, 1)), tmp_path / "a" / "runs"
    grid = expand(spec)
    for run in grid:
        write(runs_dir, run, {3e-5: 70.0, 1e-4: 66.0, 3e-4: 60.0}[run.fields["lr"]] + run.fields["seed"])
    edges = sweep.edge_runs(spec, grid, runs_dir)
    assert sorted((r.fields["lr"], r.fields["seed"]) for r in edges) == [(9e-6, 0), (9e-6, 1)]   # 3e-5 x 0.3
    # a winner inside the grid: nothing added, the seeds are planned at once
    spec, runs_dir = spec_of(), tmp_path / "b" / "runs"
    grid = by_lr(expand(spec))
    for lr, val in ((1e-4, 60.0), (3e-4, 66.0), (1e-3, 50.0)):
        write(runs_dir, grid[lr], val)
    assert sweep.edge_runs(spec, list(grid.values()), runs_dir) == []
    assert {r.fields["lr"] for r in sweep.seed_runs(spec, list(grid.values()), runs_dir)} == {3e-4}
    # a failed run counts as finished; a group with one lr has no edge to pass
    spec, runs_dir = spec_of(grid_lrs=(1e-3,)), tmp_path / "c" / "runs"
    write(runs_dir, expand(spec)[0], 65.0)
    assert sweep.edge_runs(spec, expand(spec), runs_dir) == []


def test_the_edge_is_judged_at_the_winning_adapter_size(tmp_path):
    # groups are (task, policy): the winner is m=64 at 1e-3, the top of m=64's grid; m=8's edges do not count
    spec = parse_spec({"name": "sizes", "base": {"task": "rte", "policy": "adapter", "epochs": 3},
                       "grid": {"seed": [0]},
                       "variants": [{"adapter_size": [8], "lr": [5e-4, 1.5e-3]},
                                    {"adapter_size": [64], "lr": [3e-4, 1e-3]}],
                       "extend_edges": {"steps": 1, "by": ["task", "policy"]}})
    runs_dir = tmp_path / "runs"
    for run in expand(spec):
        write(runs_dir, run, {(8, 5e-4): 61.0, (8, 1.5e-3): 50.0, (64, 3e-4): 62.0, (64, 1e-3): 64.0}[
            (run.fields["adapter_size"], run.fields["lr"])])
    [edge] = sweep.edge_runs(spec, expand(spec), runs_dir)
    assert (edge.fields["adapter_size"], edge.fields["lr"]) == (64, 3.3e-3)


@pytest.mark.parametrize("value,message", [({"steps": 0, "by": ["task"]}, "steps must be an integer"),
                                           ({"by": ["task", "lr"]}, "other than lr and seed"),
                                           ({"steps": 1}, "needs `by:`"),          # no select_then_seeds to default to
                                           ({"by": ["task"], "patience": 2}, "needs `by:`")])
def test_extend_edges_is_checked(value, message):
    with pytest.raises(SweepSpecError, match=message):
        parse_spec({"name": "t", "grid": {"lr": [1e-3, 3e-3]}, "extend_edges": value})


def test_the_v2_table_1_sweep_extends_its_edges():
    from pathlib import Path
    spec = load_spec(Path(__file__).resolve().parents[1] / "sweeps" / "glue_v2.yaml")
    assert spec.extend_by == spec.select_by == ["task", "policy"] and spec.extend_steps == 1


@pytest.mark.slow
def test_a_sweep_trains_the_added_lr_after_the_grid_and_seeds_the_final_winner(tiny_model_dir, tiny_glue_dir, tmp_path):
    # two lrs: the winner is always on an edge, so the sweep must add one lr, then seed the best of the three
    data = {"name": "edgy", "base": {"task": "rte", "epochs": 1, "batch_size": 16, "max_length": 32,
                                     "max_train_examples": 64, "max_eval_examples": 16, "policy": "adapter",
                                     "adapter_size": 4},
            "grid": {"seed": [0], "lr": [1e-3, 3e-3]},
            "select_then_seeds": {"by": ["task", "policy"], "seeds": [1]},
            "extend_edges": {"steps": 1}}
    path = tmp_path / "edgy.yaml"
    path.write_text(yaml.safe_dump(data))
    folder = tmp_path / "study"
    assert main(["sweep", str(path), "--output-dir", str(folder), "--set", f"model={tiny_model_dir}", "--set",
                 f"glue_dir={tiny_glue_dir}", "--threads-per-run", "1", "--workers", "1", "--quiet"]) == 0
    df = load_study(folder)
    assert len(df) == 4 and (df["status"] == "ok").all()
    added = set(df["lr"]) - {1e-3, 3e-3}
    assert added in ({9e-3}, {3.3e-4})                           # one step past whichever edge won
    grid = df[df["seed"] == 0]
    best = select_best(grid, by=["task", "policy"]).iloc[0]
    assert df[df["seed"] == 1]["lr"].tolist() == [best["lr"]]    # the seed went to the best of all three
    spec = load_spec(path, {"model": str(tiny_model_dir), "glue_dir": str(tiny_glue_dir)})
    assert sweep.study_progress(spec, folder)["finished"] == sweep.study_progress(spec, folder)["planned"] == 4


def test_the_estimate_names_the_seed_runs_its_grids_have_not_chosen_yet(tmp_path):
    spec, runs_dir = spec_of(), tmp_path / "runs"
    grid = by_lr(expand(spec))
    write(runs_dir, grid[1e-4], 60.0)
    write(runs_dir, grid[3e-4], 66.0)
    rows = sweep.plan(spec, tmp_path)
    later = sweep.study_progress(spec, tmp_path)["planned"] - len(rows)
    line = sweep.describe_estimate(spec, [r for s, r in rows if s == "todo"], tmp_path, cores=2, later=later)
    assert line.startswith("estimated cost of edges:") and line.split(": ", 1)[1].startswith("1 runs")
    assert "2 seed runs" in line
    write(runs_dir, grid[1e-3], 50.0)                   # the grid chose 3e-4: its seeds are in the plan now
    rows = sweep.plan(spec, tmp_path)
    assert sweep.study_progress(spec, tmp_path)["planned"] == len(rows) == 5
    assert "seed runs" not in sweep.describe_estimate(spec, [r for s, r in rows if s == "todo"], tmp_path, cores=2)
