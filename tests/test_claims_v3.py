"""The scorecard's notebook-07 rows (adapterlib.course.claims_v3) on hand-written records of the v3 studies' shape:
Houlsby vs Pfeiffer at the nearest matched budget, the init std and the LayerNorms from the implementation dial;
each verdict, the floor exclusion, one seed, and the studies that have not run."""
import json
import math

import numpy as np
import pandas as pd
import pytest

from adapterlib.config import TrainConfig
from adapterlib.course import claims_v3 as v3
from adapterlib.course import verdicts as vd
from adapterlib.sweeps.aggregate import records_frame
from adapterlib.train import run_id

H, P, N, U = vd.VERDICTS
BASE = 22_565_376
SIZES = {("houlsby", 16): 163_010, ("houlsby", 32): 310_658, ("pfeiffer", 32): 150_722}
FLOORS = pd.DataFrame({"metric": ["accuracy", "mcc"], "floor": [52.7, 0.0], "n_dev": [277, 1043]},
                      index=["rte", "cola"])


def record(task, method, size, seed, dev, val=50.0, lr=1.2e-3, metric="mcc", **options):
    """One ok run record (as train writes it) with the trained-parameter count of `method` at `size`."""
    cfg = TrainConfig(task=task, method=method, adapter_size=size, lr=lr, seed=seed, epochs=20, patience=3,
                      head_input="mean", **options).to_dict()
    trainable = SIZES[(method, size)] - (9_984 if options.get("train_layernorm") is False else 0)
    return {"run_id": run_id(TrainConfig(**cfg)), "status": "ok", "task": task, "policy": cfg["policy"],
            "config": cfg, "seed": seed, "metric": metric, "selected": {"epoch": 3.0, f"validation_{metric}": val},
            "dev_score": dev, "timing": {"wall_s": 60.0, "epochs_run": 5},
            "params": {"trainable": trainable, "frozen": BASE, "base": BASE, "percent_of_base": 100 * trainable / BASE}}


def methods(**tasks):
    """A methods_v3 frame: per task, (Houlsby m=16 seeds, Pfeiffer m=32 seeds); Houlsby m=32 (seed 0 only, far
    better on dev) is there too, so a match by the wrong size would show."""
    recs = []
    for task, (houlsby, pfeiffer) in tasks.items():
        metric = "accuracy" if task in ("rte", "sst2") else "mcc"
        recs += [record(task, "houlsby", 16, s, d, metric=metric) for s, d in enumerate(houlsby)]
        recs += [record(task, "pfeiffer", 32, s, d, metric=metric) for s, d in enumerate(pfeiffer)]
        recs.append(record(task, "houlsby", 32, 0, houlsby[0] + 20, metric=metric))
    return records_frame(recs)


def impl(paper, **variants):
    """An impl_v3 frame on CoLA: the paper's seeds, and each variant's ({'bert': ..., 'frozen': ...})."""
    options = {"bert": {"init_std": 1e-3}, "frozen": {"train_layernorm": False}}
    recs = [record("cola", "houlsby", 16, s, d) for s, d in enumerate(paper)]
    for name, seeds in variants.items():
        recs += [record("cola", "houlsby", 16, s, d, **options[name]) for s, d in enumerate(seeds)]
    return records_frame(recs)


TIGHT = (50.0, 50.1, 50.2)


# ----------------------------------------------------------------------------- Houlsby vs Pfeiffer

@pytest.mark.parametrize("tasks, expected, gap", [
    ({"cola": (TIGHT, (49.9, 50.0, 50.1))}, H, 0.1),                             # within 0.5, whole interval
    ({"cola": (TIGHT, (53.0, 53.1, 53.2))}, N, -3.0),                            # Pfeiffer clearly better
    ({"cola": ((47.0, 50.0, 53.0), (50.2, 50.3, 50.4))}, P, -0.3),               # the interval straddles -0.5
])
def test_placement_claim_verdicts(tasks, expected, gap):
    comp = v3.placement_comparisons(methods(**tasks), FLOORS)
    assert comp[["houlsby", "pfeiffer"]].values.tolist() == [["houlsby m=16", "pfeiffer m=32"]]  # nearest budget
    c = v3.placement_claim(methods(**tasks), FLOORS)
    assert (c.verdict, c.notebook) == (expected, "07") and c.value == pytest.approx(gap)
    assert c.low <= c.value <= c.high and c.low == pytest.approx(v3.mean_gap_interval(comp.attrs["seeds"])[0])


def test_placement_leaves_out_tasks_at_their_floor():
    at_chance = ((53.0, 53.5, 52.9), (53.1, 52.8, 53.3))   # RTE: majority 52.7, both within 1.96 s.e.
    c = v3.placement_claim(methods(cola=(TIGHT, (49.9, 50.0, 50.1)), rte=at_chance), FLOORS)
    assert c.verdict == H and c.value == pytest.approx(0.1) and "RTE" in c.floor
    alone = v3.placement_claim(methods(rte=at_chance), FLOORS)
    assert alone.verdict == U and math.isnan(alone.value) and "RTE" in alone.floor


def test_one_seed_has_no_interval_and_no_verdict():
    c = v3.placement_claim(methods(cola=((48.0,), (50.0,)), sst2=((90.0,), (90.0,))), FLOORS)
    assert math.isnan(c.low) and math.isnan(c.high) and c.value == pytest.approx(-1.0) and c.verdict == U


def test_the_interval_averages_the_tasks_draws():
    seeds = {"a": (np.array([1.0, 1.0]), np.array([0.0, 0.0])), "b": (np.array([0.0, 0.0]), np.array([0.0, 0.0]))}
    assert v3.mean_gap_interval(seeds) == pytest.approx((0.5, 0.5))   # no spread: the mean of the two gaps


# ----------------------------------------------------------------------------- the implementation dial

@pytest.mark.parametrize("mean, low, high, expected", [
    (0.1, -0.3, 0.4, H), (3.0, 2.5, 3.5, N), (-3.0, -3.5, -2.5, N), (0.3, -0.2, 0.9, P), (math.nan, 0, 0, U)])
def test_both_ways_verdict(mean, low, high, expected):
    assert v3.both_ways_verdict(mean, low, high, tolerance=0.5) == expected


@pytest.mark.parametrize("bert, init_verdict, frozen, ln_verdict", [
    ((50.0, 50.2, 50.1), H, (49.9, 50.1, 50.0), H),
    ((53.0, 53.2, 53.1), N, (40.0, 40.2, 40.1), N),   # 1e-3 clearly better: the std does matter (both ways)
    ((47.0, 50.0, 53.5), P, (47.0, 50.0, 53.5), P),
])
def test_dial_claims(bert, init_verdict, frozen, ln_verdict):
    init, ln = v3.dial_claims(impl(TIGHT, bert=bert, frozen=frozen), FLOORS)
    assert (init.key, init.verdict, ln.key, ln.verdict) == ("init_std_adapter_bert", init_verdict,
                                                             "layernorms_frozen", ln_verdict)
    assert init.value == pytest.approx(np.mean(bert) - np.mean(TIGHT))
    assert ln.value == pytest.approx(np.mean(frozen) - np.mean(TIGHT)) and ln.low <= ln.value <= ln.high


def test_dial_with_one_seed_on_a_side_has_no_interval_and_no_verdict():
    init, ln = v3.dial_claims(impl(TIGHT, bert=(50.0,), frozen=(49.9,)), FLOORS)
    assert init.value == pytest.approx(50.0 - np.mean(TIGHT)) and math.isnan(init.low) and math.isnan(ln.high)
    assert init.verdict == ln.verdict == U


def test_dial_leaves_out_a_task_at_its_floor():
    # CoLA's floor is 0 MCC give or take 1.96 / sqrt(1042) = 6.1 points: every variant at chance
    init, ln = v3.dial_claims(impl((1.0, 2.0, 1.5), bert=(0.5, 1.0, 1.5), frozen=(0.0, 0.5, 1.0)), FLOORS)
    assert init.verdict == ln.verdict == U and "CoLA" in init.floor and math.isnan(ln.value)


def test_a_study_in_progress_is_not_read_as_tasks_at_their_floor():
    # Houlsby's runs only (Pfeiffer's not trained yet), and the dial's paper variant alone: nothing is compared,
    # and nothing is called at its floor (CoLA's 50 MCC is far above it)
    only_houlsby = records_frame([record("cola", "houlsby", 16, s, d) for s, d in enumerate(TIGHT)])
    rows = [v3.placement_claim(only_houlsby, FLOORS), *v3.dial_claims(impl(TIGHT), FLOORS)]
    assert all(c.verdict == U and math.isnan(c.value) and c.interval == "none" for c in rows)
    assert all(c.floor.startswith("n/a") and "CoLA" not in c.floor for c in rows)
    assert all(not c.ours.startswith(v3.DASH) for c in rows)   # records exist: not the "not run" row


# ----------------------------------------------------------------------------- no records yet

def test_no_records_gives_every_row_untestable(tmp_path):
    loaded = v3.load_v3(tmp_path)                     # no study folder at all: empty frames, no error
    assert set(loaded) == {"methods", "impl"} and all(f.empty for f in loaded.values())
    for rows in (v3.v3_claims(loaded, FLOORS), v3.v3_claims({}, FLOORS)):
        assert [c.key for c in rows] == ["houlsby_vs_pfeiffer", "init_std_adapter_bert", "layernorms_frozen"]
        assert all(c.verdict == U and math.isnan(c.value) and c.notebook == "07" for c in rows)
        assert [c.ours.startswith(v3.DASH) for c in rows] == [True] * 3
        assert ["methods_v3" in rows[0].ours, "impl_v3" in rows[1].ours, "impl_v3" in rows[2].ours] == [True] * 3


def test_load_v3_reads_the_study_folders(tmp_path):
    runs = tmp_path / "methods_v3" / "runs"
    runs.mkdir(parents=True)
    for rec in [record("cola", method, size, seed, score) for method, size, score in
                (("houlsby", 16, 50.0), ("pfeiffer", 32, 49.0)) for seed in (0, 1)]:   # two seeds: an interval
        (runs / f"{rec['run_id']}.json").write_text(json.dumps(rec))
    loaded = v3.load_v3(tmp_path)
    assert len(loaded["methods"]) == 4 and loaded["impl"].empty
    rows = v3.v3_claims(loaded, FLOORS)
    assert (rows[0].verdict, rows[0].value) == (H, pytest.approx(1.0)) and rows[1].verdict == U

