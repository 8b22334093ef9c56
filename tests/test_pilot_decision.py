"""The v2 pilot's decision rules (adapterlib.sweeps.pilot), on synthetic records frames."""
import math

import pandas as pd
import pytest

from adapterlib.sweeps.pilot import decide, decision_text


def row(task, policy, val, head="mean", tp=False, lr=None, size=None, precision="no", epochs_run=8, stopped=True,
        wall=600.0):
    lr = lr if lr is not None else (1e-3 if policy == "adapter" else 1e-4)
    size = size if size is not None else (64 if policy == "adapter" else math.nan)
    return {"status": "ok", "task": task, "policy": policy, "adapter_size": size, "lr": lr, "head_input": head,
            "train_pooler": tp, "mixed_precision": precision, "val_score": val, "epochs": 20, "epochs_run": epochs_run,
            "stopped_early": stopped, "selected_epoch": epochs_run - 3, "seed": 0, "wall_s": wall}


def stage1(adapter=(10.0, 20.0, 15.0), full=(30.0, 25.0)):
    """Stage 1 on three tasks: adapter (pooler, mean, pooler trained) and full (pooler, mean) validation scores."""
    rows = []
    for task in ("cola", "mrpc", "rte"):
        rows += [row(task, "adapter", adapter[0], head="pooler"), row(task, "adapter", adapter[1]),
                 row(task, "adapter", adapter[2], head="pooler", tp=True),
                 row(task, "full", full[0], head="pooler"), row(task, "full", full[1])]
    return rows


def stage2(scores=(20.0, 22.0, 21.0, 19.0), twins=(31.0, 32.0)):
    rows = [row("cola", "adapter", v, size=m, lr=lr, precision="bf16", wall=300.0)
            for v, (m, lr) in zip(scores, [(8, 3e-3), (8, 1e-2), (256, 3e-4), (256, 6e-4)], strict=True)]
    rows += [row("cola", "adapter", twins[0], precision="bf16", wall=300.0),
             row("cola", "full", twins[1], precision="bf16", wall=300.0)]
    return rows


def test_incomplete_pilot_decides_nothing_it_cannot():
    d = decide(pd.DataFrame(stage1()[:5]))  # CoLA only
    assert d["A"]["decision"] is None and d["B"]["decision"] is None
    assert d["C"]["decision"] is None and d["D"]["decision"] is None
    assert ": mrpc, rte" in d["B"]["evidence"][0] and "to run" in d["B"]["evidence"][0]
    assert "not decided yet" in decision_text(d)


@pytest.mark.parametrize("adapter,full,expected", [
    ((10.0, 20.0, 15.0), (30.0, 35.0), "mean for both methods (both prefer it)"),
    ((25.0, 20.0, 15.0), (36.0, 35.0), "pooler for both methods (both prefer it)"),
    ((10.0, 20.0, 15.0), (36.0, 35.0), "mean pooling for both methods (the methods disagree"),
    ((10.0, 20.0, 21.0), (30.0, 35.0), "the pooler trained under adapters"),
])
def test_head_input_rule(adapter, full, expected):
    d = decide(pd.DataFrame(stage1(adapter, full) + stage2()))
    assert d["B"]["decision"].startswith(expected)
    assert d["A"]["decision"] == "keep 20 epochs at most, patience 3"


def test_lr_size_precision_and_epochs_rules():
    d = decide(pd.DataFrame(stage1((10.0, 30.0, 15.0), (30.0, 31.5)) + stage2()))
    assert d["C"]["decision"] == "the size-shifted grids stand" and d["D"]["decision"] == "bf16"
    # twins: the same task, policy, size, lr, head input and seed; their cost per epoch side by side
    assert "cola adapter m=64 lr 0.001: bf16 31.0 vs fp32 30.0; 0.62 vs 1.25 min per epoch" in d["D"]["evidence"]
    assert "cola full lr 0.0001: bf16 32.0 vs fp32 31.5; 0.62 vs 1.25 min per epoch" in d["D"]["evidence"]
    assert decide(pd.DataFrame(stage1() + stage2()))["D"]["decision"].startswith("fp32")  # adapters: 31 vs 20
    d = decide(pd.DataFrame(stage1((10.0, 31.0, 15.0), (30.0, 31.5)) + stage2(scores=(0.0, 22.0, 21.0, 0.0))))
    assert d["C"]["decision"] == "halve the grid of size(s) 8, 256" and d["D"]["decision"] == "bf16"
    d = decide(pd.DataFrame(stage1((10.0, 31.0, 15.0), (30.0, 36.0)) + stage2()))   # full: 32 vs 36 > 3 apart
    assert d["D"]["decision"].startswith("fp32")
    rows = stage1() + stage2()
    rows[0] = {**rows[0], "epochs_run": 20, "stopped": False, "stopped_early": False}
    assert decide(pd.DataFrame(rows))["A"]["decision"].startswith("raise the maximum")


def test_pilot_cli_explains_itself_and_fails_clearly(tmp_path, capsys):
    import pytest

    from adapterlib.cli import main
    with pytest.raises(SystemExit) as e:
        main(["pilot", "--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and "pre-registered rules" in out and "D  precision:" in out  # the rules, in --help
    assert main(["pilot", str(tmp_path)]) == 2 and "no run records" in capsys.readouterr().err
