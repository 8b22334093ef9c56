"""The v3 programme's sweep files (issue 29) and select_then_seeds' seeds_for (other seeds for some groups: 5 for the
Houlsby rows, 3 for the other methods). Planning is tested on hand-written records, as in test_budget_seeds."""
import json
from pathlib import Path

import pytest

from adapterlib.sweeps import driver as sweep
from adapterlib.sweeps.spec import SweepSpecError, expand, load_spec, parse_spec

ROOT = Path(__file__).resolve().parents[1]


def spec_of(seeds_for=None):
    data = {"name": "v3", "base": {"task": "cola", "epochs": 3, "seed": 0},
            "variants": [{"method": ["houlsby"], "adapter_size": [8, 16], "lr": [1e-3, 3e-3]},
                         {"method": ["lora"], "lora_r": [16], "lr": [1e-3, 3e-3]},
                         {"method": ["bitfit"], "lr": [1e-3, 3e-3]}],
            "select_then_seeds": {"by": ["task", "method", "adapter_size", "lora_r"], "seeds": [1, 2]}}
    if seeds_for is not None:
        data["select_then_seeds"]["seeds_for"] = seeds_for
    return parse_spec(data)


def write(runs_dir, run):
    f = run.fields
    val = 30.0 + (f["lr"] == 3e-3)   # 3e-3 wins everywhere
    rec = {"run_id": run.run_id, "status": "ok", "task": f["task"], "policy": f["policy"], "config": f,
           "seed": f["seed"], "timing": {"wall_s": 60.0}, "metric": "mcc", "dev_score": val - 5,
           "selected": {"epoch": 1.0, "validation_mcc": val},
           "params": {"trainable": 1, "frozen": 99, "base": 100, "percent_of_base": 1.0}}
    runs_dir.mkdir(parents=True, exist_ok=True)
    (runs_dir / f"{run.run_id}.json").write_text(json.dumps(rec))


def seeded(runs):
    return sorted((r.fields["method"], r.fields["adapter_size"], r.fields["lr"], r.fields["seed"]) for r in runs)


def test_seeds_for_gives_the_groups_it_matches_their_own_seeds(tmp_path):
    spec, runs_dir = spec_of([{"where": {"method": "houlsby", "adapter_size": [16]}, "seeds": [1, 2, 3, 4]},
                              {"where": {"method": "bitfit"}, "seeds": []}]), tmp_path / "v3" / "runs"
    grid = expand(spec)
    for run in grid:
        write(runs_dir, run)
    assert seeded(sweep.seed_runs(spec, grid, runs_dir)) == [
        ("houlsby", 8, 3e-3, 1), ("houlsby", 8, 3e-3, 2),                         # no match: `seeds`
        *[("houlsby", 16, 3e-3, s) for s in (1, 2, 3, 4)],                        # the first entry
        ("lora", 64, 3e-3, 1), ("lora", 64, 3e-3, 2)]                              # bitfit: none
    plain = spec_of()
    assert len(sweep.seed_runs(plain, expand(plain), runs_dir)) == 4 * 2


def test_status_plans_each_group_s_own_seeds(tmp_path):
    spec = spec_of([{"where": {"method": "houlsby"}, "seeds": [1, 2, 3, 4]}])
    progress = sweep.study_progress(spec, tmp_path)
    assert progress["planned"] == len(expand(spec)) + 2 * 4 + 2 * 2   # two Houlsby groups x 4, lora and bitfit x 2


@pytest.mark.parametrize("entry", [{"where": {"lr": 1e-3}, "seeds": [1]},            # lr is not a group field
                                   {"where": {"method": "houlsby"}, "seeds": "1"},
                                   {"where": {}, "seeds": [1]},
                                   {"where": {"method": "houlsby"}, "seeds": [1], "more": 1}])
def test_a_bad_seeds_for_entry_is_refused_naming_its_place(entry):
    with pytest.raises(SweepSpecError, match=r"seeds_for\[0\]"):
        spec_of([entry])


def test_methods_v3_plans_the_matched_budget_comparison_then_the_houlsby_rows():
    spec = load_spec(ROOT / "sweeps" / "methods_v3.yaml")
    grid = expand(spec)
    assert len(grid) == 105 and all(r.fields["mixed_precision"] == "no" for r in grid)
    blocks = sweep.task_blocks(spec, grid)
    assert [task for task, _ in blocks] == ["cola", "sst2", "mrpc", "stsb", "rte"]
    cola = [r.fields for r in blocks[0][1]]
    assert [f["method"] for f in cola[:3]] == ["houlsby"] * 3 and cola[0]["adapter_size"] == 16
    assert {f["method"] for f in cola} == {"houlsby", "pfeiffer", "bitfit", "lora", "ia3", "prefix"}
    assert {f["method"] for _, runs in blocks[4:] for f in (r.fields for r in runs)} == {"houlsby"}
    houlsby = [r for r in grid if r.fields["method"] == "houlsby"]
    assert {r.fields["adapter_size"] for r in houlsby} == {8, 16, 32}
    assert sweep.group_seeds(spec, houlsby[0].fields) == [1, 2, 3, 4]
    assert sweep.group_seeds(spec, cola[3]) == [1, 2]
    for method in ("houlsby", "pfeiffer", "bitfit", "lora", "ia3", "prefix"):   # >= 3 lrs per method and size
        sizes = {}
        for r in grid:
            if r.fields["method"] == method and r.fields["task"] == "cola":
                sizes.setdefault((r.fields["adapter_size"], r.fields["lora_r"], r.fields["prefix_length"]), set()).add(
                    r.fields["lr"])
        assert sizes and all(len(lrs) >= 3 for lrs in sizes.values()), method


def test_methods_v3_core_is_the_first_phase_of_methods_v3():
    """The core file trains part of methods_v3 first: same study, runs the full file plans, fewer seeds per group."""
    full, core = (load_spec(ROOT / "sweeps" / f) for f in ("methods_v3.yaml", "methods_v3_core.yaml"))
    full_ids, grid = {r.run_id for r in expand(full)}, expand(core)
    assert core.name == full.name == "methods_v3" and len(grid) == 4 * 4 * 3
    assert {r.run_id for r in grid} <= full_ids
    assert {r.fields["method"] for r in grid} == {"houlsby", "lora", "pfeiffer", "bitfit"}
    assert {r.fields["task"] for r in grid} == {"cola", "sst2", "mrpc", "stsb"}
    assert (core.select_by, core.extend_by, core.extend_steps) == (full.select_by, full.extend_by, full.extend_steps)
    for r in grid:   # 3 seeds in all for every group; the full file's seeds include them
        assert sweep.group_seeds(core, r.fields) == [1, 2]
        assert set(sweep.group_seeds(core, r.fields)) <= set(sweep.group_seeds(full, r.fields))


def test_impl_v3_reuses_methods_v3_s_paper_runs_and_dials_each_change():
    methods = {r.run_id for r in expand(load_spec(ROOT / "sweeps" / "methods_v3.yaml"))}
    spec = load_spec(ROOT / "sweeps" / "impl_v3.yaml")
    grid = expand(spec)
    assert spec.reuse == ["methods_v3"] and len(grid) == 3 * 6 * 3
    paper = [r for r in grid if r.run_id in methods]
    assert len(paper) == 9 and all(r.fields["nonlinearity"] == "gelu" and r.fields["init_std"] is None
                                   and r.fields["train_layernorm"] is None for r in paper)
    dial = {(r.fields["nonlinearity"], r.fields["init_std"], r.fields["train_layernorm"]) for r in grid}
    assert dial == {("gelu", None, None), ("swish", 0.02, False), ("gelu", None, False), ("gelu", 0.001, None),
                    ("swish", None, None), ("gelu", 0.02, None)}


def test_curve_v3_adds_sizes_and_reuses_methods_v3():
    spec = load_spec(ROOT / "sweeps" / "curve_v3.yaml")
    grid = expand(spec)
    assert spec.reuse == ["methods_v3"] and {r.fields["task"] for r in grid} == {"cola", "sst2"}
    assert len(grid) == 60 and not spec.select_by
