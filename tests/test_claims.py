"""The claim scorecard (adapterlib.course.claims): every rule can give every verdict, the floors leave out what
cannot test a claim, and the committed scorecard's numbers equal a fresh aggregation of the records."""
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from adapterlib.course import claims as cl
from adapterlib.course import verdicts as vd
from adapterlib.paths import RESULTS_DIR
from adapterlib.sweeps import aggregate

H, P, N, U = vd.VERDICTS

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


# ----------------------------------------------------------------------------- the four rules, every outcome

@pytest.mark.parametrize("mean, low, high, expected", [
    (0.2, -0.3, 0.7, H), (-0.4, -1.2, 0.3, P), (-2.0, -2.8, -1.1, N), (math.nan, math.nan, math.nan, U),
    (-0.2, math.nan, math.nan, U), (-0.9, math.nan, math.nan, U),  # one seed: no interval, no verdict
])
def test_gap_rule(mean, low, high, expected):
    assert vd.gap_verdict(mean, low, high, tolerance=0.5) == expected


@pytest.mark.parametrize("passed, expected", [([True, True], H), ([True, False, True], P), ([False], N), ([], U)])
def test_share_rule(passed, expected):
    assert vd.share_verdict(passed) == expected


@pytest.mark.parametrize("spread, expected", [(0.4, H), (1.5, P), (2.5, N), (math.nan, U)])
def test_spread_rule(spread, expected):
    assert vd.spread_verdict(spread, tolerance=1.0) == expected


@pytest.mark.parametrize("ours, expected", [(1.35, H), (1.1, H), (3.0, P), (5.0, N), (math.nan, U)])
def test_storage_rule(ours, expected):
    assert vd.storage_verdict(ours, paper=1.3, full=9.0) == expected


# ----------------------------------------------------------------------------- floors

FLOORS = pd.DataFrame({"metric": ["accuracy", "mcc"], "floor": [52.7, 0.0], "n_dev": [277, 1043]},
                      index=["rte", "cola"])


def test_floor_margin_is_the_standard_error_at_the_floor():
    assert vd.floor_margin(52.7, 277, "accuracy") == pytest.approx(1.96 * 100 * np.sqrt(0.527 * 0.473 / 277))
    assert vd.floor_margin(0.0, 1043, "mcc") == pytest.approx(1.96 * 100 / np.sqrt(1042))
    # RTE: both methods of glue_v2 (53.1, 54.4) sit within it; CoLA's 26 MCC does not
    assert vd.at_floor("rte", 53.07, FLOORS) and vd.at_floor("rte", 54.44, FLOORS)
    assert not vd.at_floor("rte", 60.0, FLOORS) and not vd.at_floor("cola", 26.4, FLOORS)
    assert vd.at_floor("rte", 40.0, FLOORS)        # below the floor is at it
    assert not vd.at_floor("sst2", 50.0, FLOORS)   # no known floor: never


def test_task_floors_read_the_records():
    recs = [{"task": "rte", "metric": "accuracy", "majority": {"dev": {"accuracy": 52.7}},
             "splits": {"sizes": {"dev": 277}}},
            {"task": "rte", "metric": "accuracy", "majority": {"dev": {"accuracy": 99.0}},
             "splits": {"sizes": {"dev": 9}}},
            {"task": "cola", "metric": "mcc"}]  # no floor recorded: left out
    floors = vd.task_floors(recs)
    assert floors.index.tolist() == ["rte"] and floors.loc["rte", "floor"] == 52.7 and floors.loc["rte", "n_dev"] == 277


# ----------------------------------------------------------------------------- claims on synthetic frames

def curve(**scores):
    """A size_curve-like frame: {task_policy: dev_mean}."""
    return pd.DataFrame([{"task": k.split("_")[0], "policy": k.split("_", 1)[1], "dev_mean": v}
                         for k, v in scores.items()])


FIG4 = pd.DataFrame({"method": ["layernorm", "adapter", "top_k"], "task": ["CoLA", "MNLI-m", "MNLI-m"],
                     "score": [math.nan, 83.7, 77.8], "drop_in_points": [3.5, math.nan, math.nan]})


@pytest.mark.parametrize("scores, expected", [
    ({"cola_full": 30, "cola_layernorm": 20, "rte_full": 70, "rte_layernorm": 60}, H),
    ({"cola_full": 30, "cola_layernorm": 20, "rte_full": 70, "rte_layernorm": 70}, P),
    ({"cola_full": 30, "cola_layernorm": 30.5}, N),
    ({"rte_full": 53, "rte_layernorm": 52}, U),   # both at RTE's floor: nothing left to test
])
def test_layernorm_claim(scores, expected):
    c = cl.layernorm_claim(curve(**scores), FLOORS, FIG4)
    assert c.verdict == expected
    if expected == U:
        assert "rte" in c.floor.lower()


def span_table(none, single, lower, upper, n_layers=6):
    """An ablation span table: nothing removed, each single layer, the two halves."""
    half = n_layers // 2
    rows = [{"first": np.nan, "last": np.nan, "n_removed": 0, "score": none, "metric": "mcc"}]
    rows += [{"first": i, "last": i, "n_removed": 1, "score": none - d, "metric": "mcc"} for i, d in enumerate(single)]
    rows += [{"first": 0, "last": half - 1, "n_removed": half, "score": lower, "metric": "mcc"},
             {"first": half, "last": n_layers - 1, "n_removed": half, "score": upper, "metric": "mcc"},
             {"first": 0, "last": n_layers - 1, "n_removed": n_layers, "score": 0.0, "metric": "mcc"}]
    return pd.DataFrame(rows)


FIG6 = pd.DataFrame({"quantity": ["largest drop from removing one layer's adapters"], "value": [2.0]})


@pytest.mark.parametrize("tables, single, halves", [
    ({"cola": span_table(30, [0.5] * 6, 28, 15)}, H, H),
    ({"cola": span_table(30, [0.5] * 6, 28, 15), "sst2": span_table(80, [9] + [0] * 5, 60, 75)}, P, P),
    ({"cola": span_table(30, [9] + [0] * 5, 10, 25)}, N, N),
    ({"cola": span_table(2, [0.5] * 6, 1, 1)}, U, U),        # the trained model itself at the floor
    ({"cola": span_table(30, [0.5] * 6, 1, 2)}, H, U),       # both halves removed fall to the floor
    ({"cola": span_table(30, [0.5] * 6, 1, 25)}, H, N),      # one half at the floor: the other still tells
])
def test_ablation_claims(tables, single, halves):
    floors = pd.concat([FLOORS, pd.DataFrame({"metric": ["accuracy"], "floor": [50.9], "n_dev": [872]},
                                             index=["sst2"])])
    one, lower = cl.ablation_claims(tables, floors, FIG6)
    assert (one.verdict, lower.verdict) == (single, halves)


def test_init_claim_and_topk_claim_on_synthetic_curves():
    init = pd.DataFrame({"task": "cola", "init_std": [1e-6, 1e-4, 1e-2, 1.0], "dev_mean": [30, 30.5, 30.2, 0.0],
                         "dev_sem": [0.5, 0.5, 0.5, 0.0]})
    assert cl.init_claim(init, FLOORS).verdict == H
    assert cl.init_claim(init.assign(dev_mean=[30, 20, 30.2, 29.9]), FLOORS).verdict == N  # not flat, no worse above
    assert cl.init_claim(init.assign(dev_mean=[30, 20, 30.2, 0.0]), FLOORS).verdict == P
    assert cl.init_claim(init.assign(task="rte", dev_mean=[50, 51, 52, 40]), FLOORS).verdict == U
    size = pd.DataFrame({"task": "cola", "policy": ["adapter", "adapter", "adapter", "top_k", "top_k"],
                         "adapter_size": [8, 64, 256, np.nan, np.nan], "top_k": [np.nan, np.nan, np.nan, 1, 2],
                         "trainable": [1e5, 6e5, 3e6, 2e6, 4e6], "val_mean": [20, 30, 35, 25, 28],
                         "dev_mean": [20, 28, 25, 10, 30]})
    comp = cl.topk_comparisons(size, FLOORS)
    # the size chosen on validation among the adapters within each k's parameters (m=256 does not fit k=1):
    # m=64 +18 against k=1, m=256 -5 against k=2
    assert comp["adapter_size"].tolist() == [64, 256] and comp["difference"].tolist() == [18, -5]
    assert cl.topk_claim(size, FLOORS, FIG4).verdict == P
    assert cl.topk_claim(size.assign(dev_mean=[20, 28, 25, 10, 25.5]), FLOORS, FIG4).verdict == H
    assert cl.topk_claim(size.assign(dev_mean=[20, 28, 25, 40, 30]), FLOORS, FIG4).verdict == N
    assert cl.topk_claim(size.assign(task="rte", dev_mean=[50, 51, 52, 53, 50]), FLOORS, FIG4).verdict == U


# ----------------------------------------------------------------------------- the committed scorecard

@pytest.fixture(scope="module")
def evidence():
    return cl.load_evidence()


@pytest.fixture(scope="module")
def card(evidence):
    return cl.scorecard(evidence)


@pytest.mark.committed
def test_scorecard_shape(card):
    assert len(card) >= 8 and card.index.is_unique
    assert list(card.columns[:len(cl.COLUMNS)]) == cl.COLUMNS
    assert set(card["verdict"]) <= set(vd.VERDICTS)
    assert {"table1_budget_whole", "table1_budget_paper", "adapters64_vs_full", "adapters_vs_topk", "size_robust",
            "init_robust", "ablation_single_layer", "ablation_lower_layers", "layernorm_worse",
            "many_tasks_unchanged", "many_tasks_storage"} <= set(card.index)
    # notebook 07's rows (claims_v3) come last
    assert card.index[-3:].tolist() == ["houlsby_vs_pfeiffer", "init_std_adapter_bert", "layernorms_frozen"]
    assert card["notebook"].isin(["02", "03", "04", "05", "06", "07"]).all()


@pytest.mark.committed
def test_rte_is_at_chance_and_left_out_of_table1(evidence, card):
    assert cl.glue_excluded(evidence.glue, evidence.floors) == ["rte"]
    assert card.loc["table1_rte", "verdict"] == U and math.isnan(card.loc["table1_rte", "value"])
    committed = pd.read_csv(RESULTS_DIR / "glue_v2" / "tables" / "glue_gap.csv").set_index("method")
    for key, method in (("table1_budget_whole", "adapters_budget"), ("adapters64_vs_full", "adapters_64")):
        # the per-task gaps of the committed table, averaged without RTE
        gaps = committed.loc[method, ["gap_cola", "gap_sst2", "gap_mrpc", "gap_stsb"]]
        assert card.loc[key, "value"] == pytest.approx(gaps.mean(), abs=1e-5)


@pytest.mark.committed
def test_table1_intervals_equal_a_fresh_bootstrap(evidence, card):
    fresh = aggregate.glue_gap(evidence.glue[evidence.glue["task"] != "rte"]).set_index("method")
    row = fresh.loc["adapters_budget"]
    assert (card.loc["table1_budget_whole", "low"], card.loc["table1_budget_whole", "high"]) == \
        (row["gap_low_95%"], row["gap_high_95%"])
    assert card.loc["table1_budget_whole", "verdict"] == vd.gap_verdict(row["gap_mean"], row["gap_low_95%"],
                                                                         row["gap_high_95%"])
    # the paper's convention: only sizes within 4% of the base without embeddings (m=8 on MiniLM)
    small = evidence.glue[(evidence.glue["task"] != "rte") & ((evidence.glue["policy"] == "full") | (
        evidence.glue["percent_of_base_no_embedding"] <= aggregate.BUDGET_PERCENT))]
    assert set(small.loc[small["policy"] == "adapter", "adapter_size"]) == {8}
    assert card.loc["table1_budget_paper", "value"] == pytest.approx(
        aggregate.glue_gap(small).set_index("method").loc["adapters_8_256", "gap_mean"])


@pytest.mark.committed
def test_storage_equals_the_committed_selection(card):
    chosen = pd.read_csv(RESULTS_DIR / "glue_v2" / "tables" / "glue_selection.csv")
    rows = chosen[chosen["method"] == "adapters_8_256"]
    nine = (rows["frozen"].mean() + 9 * rows["trainable"].mean()) / rows["base"].mean()
    assert card.loc["many_tasks_storage", "value"] == pytest.approx(nine, rel=1e-5)
    assert card.loc["many_tasks_storage", "verdict"] == vd.storage_verdict(nine, 1.3, 9.0)


@pytest.mark.committed
def test_size_and_ablation_numbers_equal_the_committed_tables(card):
    best = pd.read_csv(RESULTS_DIR / "glue_v2" / "tables" / "best.csv")
    means = best[(best["policy"] == "adapter") & (best["task"] != "rte")].groupby("adapter_size")["dev_mean"].mean()
    assert card.loc["size_robust", "value"] == pytest.approx(means.max() - means.min(), abs=1e-4)
    cola = pd.read_csv(RESULTS_DIR / "ablation_v2" / "layer_ablation" / "layer_ablation_cola.csv")
    single = cola[cola["n_removed"] == 1]
    assert card.loc["ablation_single_layer", "value"] == pytest.approx(single["drop"].max(), abs=1e-4)


# ----------------------------------------------------------------------------- the command line

def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "adapterlib", "claims", *args], capture_output=True, text=True,
                          timeout=300)


@pytest.mark.slow
@pytest.mark.committed
def test_cli_prints_the_scorecard(card):
    out = run_cli()
    assert out.returncode == 0, out.stderr
    rows = [line for line in out.stdout.splitlines() if line.startswith("| ") and not line.startswith("| claim")]
    assert len(rows) == len(card) >= 8
    assert [line.rstrip(" |").split(" | ")[-2] for line in rows] == card["verdict"].tolist()


@pytest.mark.parametrize("args", [("--format", "xml"), ("--results-dir", "/nonexistent/results"), ("extra",)])
def test_cli_bad_arguments_exit_2_with_one_line(args):
    out = run_cli(*args)
    assert out.returncode == 2 and out.stdout == "" and len(out.stderr.strip().splitlines()) == 1, out.stderr


# ----------------------------------------------------------------------------- the site's page

@pytest.mark.committed
def test_the_sites_scorecard_page_is_current(card):
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[1]
    page = (root / "book" / "scorecard.md").read_text()
    block = page.split(cl.SCORECARD_BEGIN, 1)[1].split(cl.SCORECARD_END, 1)[0].strip()
    assert block == cl.scorecard_block(card), "stale: python -m adapterlib claims --update book/scorecard.md"
    toc = yaml.safe_load((root / "book" / "_toc.yml").read_text())
    assert toc["parts"][0]["chapters"][0]["file"] == "book/scorecard"  # the site opens with it, after the intro


@pytest.mark.committed
def test_update_replaces_only_the_block(card):
    text = f"intro\n{cl.SCORECARD_BEGIN}\nold\n{cl.SCORECARD_END}\nafter\n"
    assert cl.replace_scorecard_block(text, card) == (f"intro\n{cl.SCORECARD_BEGIN}\n{cl.scorecard_block(card)}\n"
                                                      f"{cl.SCORECARD_END}\nafter\n")
    with pytest.raises(cl.ClaimsError):
        cl.replace_scorecard_block("no markers", card)


@pytest.mark.committed
def test_the_readmes_headline_is_current(card):
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    lines = readme.splitlines()
    begin = lines.index(cl.HEADLINE_BEGIN)
    assert begin < 40 and lines[begin + 1] == cl.headline(card) and lines[begin + 2] == cl.HEADLINE_END  # first screen


@pytest.mark.parametrize("recorded, expected", [
    ({k: True for k in cl.UNCHANGED_CHECKS}, H),
    ({**{k: True for k in cl.UNCHANGED_CHECKS}, "frozen_identical": False}, P),
    ({k: False for k in cl.UNCHANGED_CHECKS}, N), (None, U)])
def test_unchanged_claim(recorded, expected):
    assert cl.unchanged_claim(recorded).verdict == expected


@pytest.mark.committed
def test_many_tasks_checks_come_from_notebook_06s_record(evidence, card):
    assert set(cl.UNCHANGED_CHECKS) <= set(evidence.many_tasks)  # committed: data/results/many_tasks/results.json
    passed = [evidence.many_tasks[k] for k in cl.UNCHANGED_CHECKS]
    assert card.loc["many_tasks_unchanged", "value"] == sum(passed) / len(passed)
    assert card.loc["many_tasks_unchanged", "verdict"] == vd.share_verdict(passed)


@pytest.mark.slow
def test_cli_update_without_markers_changes_nothing(tmp_path):
    page = tmp_path / "page.md"
    page.write_bytes(b"# A page\n\nno scorecard markers here\n")
    for target in (page, tmp_path / "missing.md"):
        out = run_cli("--update", str(target))
        assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert str(target.name) in out.stderr or "block" in out.stderr
    assert page.read_bytes() == b"# A page\n\nno scorecard markers here\n" and not (tmp_path / "missing.md").exists()
