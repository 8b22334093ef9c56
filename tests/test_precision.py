"""bf16 only where it pays, fp16 only where it exists (issue 30, issue 31's fp16 mislabel).

This machine may have native bf16 (AVX512-BF16): a CPU without it is simulated by patching
`adapterlib.precision.cpu_bf16_native`, the one place that asks the hardware.
"""
from __future__ import annotations

import json
import platform
from pathlib import Path

import pytest
import yaml

from adapterlib import precision
from adapterlib.cli import main
from adapterlib.sweeps import driver
from adapterlib.sweeps.overrides import parse_overrides
from adapterlib.sweeps.spec import Run, expand, load_spec


@pytest.fixture
def no_native_bf16(monkeypatch):
    """A CPU-only machine without native bf16 (an AVX2-only AMD EPYC, as in issue 30)."""
    monkeypatch.setattr(precision, "cpu_bf16_native", lambda: False)
    monkeypatch.setattr(precision, "on_gpu", lambda: False)


def _train(tiny_model_dir, tiny_glue_dir, out, *extra):
    return ["train", "--task", "rte", "--model", str(tiny_model_dir), "--glue-dir", str(tiny_glue_dir),
            "--max-steps", "2", "--max-train-examples", "32", "--max-eval-examples", "16", "--max-length", "32",
            "--batch-size", "16", "--quiet", "--output-dir", str(out), "--no-checkpoint", *extra]


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.skipif(platform.system() != "Linux" or platform.machine() != "x86_64", reason="reads /proc/cpuinfo")
def test_detection_agrees_with_the_cpu_flags():
    flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")).split()
    assert precision.cpu_bf16_native() == ("avx512_bf16" in flags or "amx_bf16" in flags)


@pytest.mark.parametrize("kind, key", [("bf16", "32.8x"), ("fp16", "needs a GPU")])
def test_train_refuses_and_writes_nothing(kind, key, no_native_bf16, tiny_model_dir, tiny_glue_dir, tmp_path, capsys):
    before = _files(tmp_path)
    rc = main(_train(tiny_model_dir, tiny_glue_dir, tmp_path / "runs", "--mixed-precision", kind))
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and key in err and "--mixed-precision no" in err
    assert (kind != "bf16") or "--allow-slow-bf16" in err
    assert _files(tmp_path) == before   # no output folder, no record, no snapshot


def test_library_train_refuses_fp16_on_a_cpu(no_native_bf16, tmp_path):
    import adapterlib as al
    with pytest.raises(precision.PrecisionError):
        al.train(al.TrainConfig(task="rte", mixed_precision="fp16"), output_dir=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


def test_allow_slow_bf16_trains_anyway(no_native_bf16, tiny_model_dir, tiny_glue_dir, tmp_path, capsys):
    rc = main(_train(tiny_model_dir, tiny_glue_dir, tmp_path / "runs", "--mixed-precision", "bf16",
                     "--allow-slow-bf16"))
    assert rc == 0, capsys.readouterr().err
    (record,) = [json.loads(p.read_text()) for p in (tmp_path / "runs").glob("*.json")]
    assert record["config"]["mixed_precision"] == "bf16"
    assert record["machine"]["cpu_bf16_native"] is False  # as detected


def _bf16_sweep(tmp_path, tiny_model_dir, tiny_glue_dir) -> Path:
    data = {"name": "b", "base": {"task": "rte", "epochs": 1, "max_steps": 1, "batch_size": 16, "max_length": 32,
                                  "max_train_examples": 32, "max_eval_examples": 16, "model": str(tiny_model_dir),
                                  "glue_dir": str(tiny_glue_dir), "mixed_precision": "bf16"},
            "grid": {"lr": [1e-3, 3e-3]}}
    path = tmp_path / "b.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_sweep_refuses_bf16_before_writing(no_native_bf16, tmp_path, tiny_model_dir, tiny_glue_dir, capsys):
    spec = _bf16_sweep(tmp_path, tiny_model_dir, tiny_glue_dir)
    before = _files(tmp_path)
    rc = main(["sweep", str(spec), "--output-dir", str(tmp_path / "study"), "--workers", "1", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "2 run(s)" in err and "mixed_precision=no" in err
    assert _files(tmp_path) == before


def test_set_mixed_precision_no_reruns_the_plan_in_fp32(tmp_path, tiny_model_dir, tiny_glue_dir, no_native_bf16):
    assert parse_overrides(["mixed_precision=no", "fast=false", "lr=0.5"]) == \
        {"mixed_precision": "no", "fast": False, "lr": 0.5}
    path = _bf16_sweep(tmp_path, tiny_model_dir, tiny_glue_dir)
    bf16, fp32 = expand(load_spec(path)), expand(load_spec(path, parse_overrides(["mixed_precision=no"])))
    assert [r.fields["lr"] for r in bf16] == [r.fields["lr"] for r in fp32]             # the same plan
    assert {r.fields["mixed_precision"] for r in fp32} == {"no"}
    assert not {r.run_id for r in bf16} & {r.run_id for r in fp32}                     # under new run ids
    driver.check_run_precision(load_spec(path, {"mixed_precision": "no"}), tmp_path / "study")  # not refused


def test_estimate_prices_bf16_for_the_machine_that_runs_it():
    costs = {("rte", "adapter", None, "no"): {"core_min_per_epoch": [2.0], "epochs_run_with_patience": []},
             ("rte", "adapter", None, "bf16"): {"core_min_per_epoch": [1.0], "epochs_run_with_patience": []}}
    run = Run("r", {"task": "rte", "policy": "adapter", "epochs": 3, "mixed_precision": "bf16"})
    assert driver.estimate_hours([run], costs, bf16_native=True)[0] == pytest.approx(1.0 * 3 / 60)
    assert driver.estimate_hours([run], costs, bf16_native=False)[0] == \
        pytest.approx(2.0 * precision.BF16_SLOWDOWN_FACTOR * 3 / 60)


def test_pilot_precision_decision_names_its_machine():
    import pandas as pd

    from adapterlib.sweeps.pilot import decide
    rows = [dict(status="ok", task="cola", policy=p, adapter_size=64.0 if p == "adapter" else float("nan"), lr=lr,
                 head_input="mean", train_pooler=False, seed=0, mixed_precision=mp, val_score=30.0, epochs=20,
                 epochs_run=5, stopped_early=True, selected_epoch=2.0, wall_s=600.0, machine=machine)
            for p, lr in (("adapter", 1e-3), ("full", 1e-4))
            for mp, machine in (("bf16", "CPU (AMD EPYC, 2 cores, native bf16)"), ("no", "CPU (2 cores)"))]
    d = decide(pd.DataFrame(rows))["D"]
    assert d["decision"] == "bf16"
    assert d["machines"] == ["CPU (2 cores)", "CPU (AMD EPYC, 2 cores, native bf16)"]
