"""Notebook 07 (After Houlsby) at preset smoke (papermill): what it recorded, checked against the closed-form parameter
counts, the committed cost benchmark and the v3 studies' records (or their absence)."""
import json

import pytest

from adapterlib import adapter_param_formula
from adapterlib.course.after_houlsby import COST_FILE, study_status

D, L, FF, HEAD = 384, 6, 1536, 2 * 384 + 2   # MiniLM; the binary head reads the token mean


@pytest.mark.slow
def test_notebook_07_after_houlsby(tmp_path):
    from nbtools import run_notebook

    # the live runs go to the session's course-runs folder (conftest.py): nbval's run of 07 trains them or reads them
    r = run_notebook("07", tmp_path)
    assert r["preset"] == "smoke" and r["live_task"] == "sst2"
    ln = (2 * L + 1) * 2 * D
    assert r["trained"] == {
        "houlsby": adapter_param_formula(D, 16, L) + ln + HEAD,
        "pfeiffer": adapter_param_formula(D, 32, L, per_layer=1) + HEAD,
        "lora": L * 2 * 16 * (D + D) + HEAD,              # r (d_in + d_out) on query and value
        "prefix": 30 * L * 2 * D + HEAD,                  # a key and a value vector per token and layer
        "bitfit": 26_498, "ia3": L * (D + D + D + FF) + HEAD}
    assert all(0.5 <= r["percent_of_base"][m] <= 1.0 for m in ("houlsby", "pfeiffer", "lora", "prefix"))
    # the studies: what the records say, and nothing shown where there are none
    for name, s in r["studies"].items():
        assert s == {k: v for k, v in study_status(name).items() if k in s}
    if not r["studies"]["methods_v3"]["exists"] and not r["studies"]["curve_v3"]["exists"]:
        assert r["study_points"] == 0 and r["study_labels"] == [] and "live miniature" in r["budget_source"]
    if not r["studies"]["impl_v3"]["exists"]:
        assert r["dial_rows"] == 0
    # the live miniature: one run per method, counted as in section 1, its Pareto front recomputed from its points
    live = r["live"]
    assert set(live) == {"houlsby m=16", "pfeiffer m=32", "lora r=16", "prefix 30", "bitfit", "ia3"}
    assert r["live_steps"] == {m: 3 for m in r["trained"]}
    assert {v["trainable"] for v in live.values()} == set(r["trained"].values())
    for label, v in live.items():
        beaten = any(o["trainable"] <= v["trainable"] and o["dev"] > v["dev"] for o in live.values())
        assert v["pareto"] is not beaten and 0 <= v["dev"] <= 100, label
    best = r["budget_table"][0]
    assert best["best (validation)"] in live and best["% of base"] <= 1.0 + 1e-9
    assert set(r["live_dial"]) == {"paper", "AdapterHub Houlsby", "LayerNorms frozen"}
    assert all(v["n_seeds"] == 1 for v in r["live_dial"].values())
    assert r["live_dial"]["paper"]["dev"] == pytest.approx(live["houlsby m=16"]["dev"])  # the same run, reused
    # the cost panels read the committed benchmark
    bench = json.loads(COST_FILE.read_text())
    assert set(r["costs"]) == set(bench["step"])
    for method, c in r["costs"].items():
        assert c["step_ratio"] == bench["step"][method]["ratio"]
        assert c["infer_merged_ratio"] == bench["infer"].get(f"{method}_merged", {}).get("ratio")
