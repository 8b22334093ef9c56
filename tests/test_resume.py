"""A run stopped mid-training resumes at its last finished epoch and ends exactly as an uninterrupted run
(adapterlib.resume), on the tiny model: same history, validation choice, dev scores and trained weights."""
import sys

import pytest
import torch

import adapterlib as al
import adapterlib.train  # the module (the attribute `adapterlib.train` is the function)
from adapterlib import resume
from adapterlib.train import run_id

train_module = sys.modules["adapterlib.train"]


def cfg(tiny_model_dir, tiny_glue_dir, **kw):
    base = {"task": "sst2", "model": str(tiny_model_dir), "glue_dir": str(tiny_glue_dir), "batch_size": 8, "epochs": 4,
            "lr": 3e-3, "max_length": 32, "max_train_examples": 64, "seed": 3}
    return al.TrainConfig(**{**base, **kw})


class Killed(BaseException):
    """Stands for the SIGKILL / end of session that stops a sweep worker."""


def interrupted(monkeypatch, after_steps: int):
    """Make the next training run die at its step `after_steps + 1`."""
    real, calls = train_module._train_step, {"n": 0}

    def step(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > after_steps:
            raise Killed()
        return real(*args, **kwargs)
    monkeypatch.setattr(train_module, "_train_step", step)


def trained_weights(record, tmp_path, tiny_model_dir):
    model, _ = al.load_base_model(str(tiny_model_dir))
    al.load_adapter(model, tmp_path / record["checkpoint"])
    return {n: p.detach().clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("policy,precision", [("adapter", "no"), ("layernorm", "bf16")])
def test_a_killed_run_resumes_at_its_last_epoch_and_ends_as_if_never_stopped(tiny_model_dir, tiny_glue_dir, tmp_path,
                                                                               monkeypatch, policy, precision):
    config = cfg(tiny_model_dir, tiny_glue_dir, policy=policy, adapter_size=4, mixed_precision=precision)
    whole = al.train(config, output_dir=tmp_path / "whole", progress=False)
    assert not resume.snapshot_path(tmp_path / "whole", whole["run_id"]).exists()   # removed with the record
    assert "resumed_at_epochs" not in whole["timing"] and "earlier_segments" not in whole

    out = tmp_path / "stopped"
    interrupted(monkeypatch, after_steps=2 * 8 + 3)   # 64 examples / 8 = 8 steps an epoch: dies in epoch 3
    with pytest.raises(Killed):
        al.train(config, output_dir=out, progress=False)
    snapshot = resume.snapshot_path(out, run_id(config))
    assert snapshot.is_file() and not (out / f"{run_id(config)}.json").exists()
    monkeypatch.undo()
    again = al.train(config, output_dir=out, progress=False)
    assert again["timing"]["resumed_at_epochs"] == [2]
    [earlier] = again["earlier_segments"]   # what trained epochs 1-2: here the same code and libraries
    assert earlier["until_epoch"] == 2 and earlier["git"] == again["git"] and earlier["versions"] == again["versions"]
    assert again["history"] == whole["history"] and again["selected"] == whole["selected"]
    assert again["dev"] == whole["dev"] and again["timing"]["steps"] == whole["timing"]["steps"]
    assert not snapshot.exists()
    a, b = trained_weights(whole, tmp_path / "whole", tiny_model_dir), trained_weights(again, out, tiny_model_dir)
    assert all(torch.equal(a[n], b[n]) for n in a)                  # bit for bit
    assert again["timing"]["wall_s"] > 0


def test_full_fine_tuning_resumes_too(tiny_model_dir, tiny_glue_dir, tmp_path, monkeypatch):
    config = cfg(tiny_model_dir, tiny_glue_dir, policy="full", epochs=3)
    whole = al.train(config, output_dir=tmp_path / "whole", progress=False)
    interrupted(monkeypatch, after_steps=8 + 1)
    with pytest.raises(Killed):
        al.train(config, output_dir=tmp_path / "stopped", progress=False)
    monkeypatch.undo()
    again = al.train(config, output_dir=tmp_path / "stopped", progress=False)
    assert again["timing"]["resumed_at_epochs"] == [1]
    assert again["history"] == whole["history"] and again["dev"] == whole["dev"]


def test_a_snapshot_of_another_run_is_ignored(tiny_model_dir, tiny_glue_dir, tmp_path, monkeypatch):
    first, second = (cfg(tiny_model_dir, tiny_glue_dir, policy="adapter", adapter_size=4, lr=lr) for lr in (3e-3, 1e-2))
    interrupted(monkeypatch, after_steps=8 + 1)
    with pytest.raises(Killed):
        al.train(first, output_dir=tmp_path, progress=False)
    monkeypatch.undo()
    resume.snapshot_path(tmp_path, run_id(first)).rename(resume.snapshot_path(tmp_path, run_id(second)))
    with pytest.warns(UserWarning, match="another run"):
        record = al.train(second, output_dir=tmp_path, progress=False)
    assert "resumed_at_epochs" not in record["timing"]
    assert record["history"] == al.train(second, progress=False)["history"]   # as a fresh run
    resume.snapshot_path(tmp_path, "broken").write_bytes(b"not a safetensors file")
    with pytest.warns(UserWarning, match="starts from scratch"):
        assert resume.load(resume.snapshot_path(tmp_path, "broken"), "broken", None, None, None, None) is None


def test_status_names_the_runs_that_would_resume(tiny_model_dir, tiny_glue_dir, tmp_path, monkeypatch, capsys):
    from adapterlib.cli import main
    config = cfg(tiny_model_dir, tiny_glue_dir, policy="adapter", adapter_size=4)
    study = tmp_path / "results" / "resumable"
    interrupted(monkeypatch, after_steps=2 * 8 + 1)
    with pytest.raises(Killed):
        al.train(config, output_dir=study / "runs", progress=False)
    monkeypatch.undo()
    [snap] = resume.pending(study / "runs")
    assert snap["run_id"] == run_id(config) and snap["epochs"] == 2 and snap["wall_s"] > 0
    spec = tmp_path / "resumable.yaml"
    spec.write_text("name: resumable\n"
                    f"base: {{task: sst2, policy: adapter, adapter_size: 4, model: '{tiny_model_dir}'}}\n"
                    "grid: {lr: [1.0e-3]}\n")
    for module in ("adapterlib.sweeps.progress", "adapterlib.sweeps.aggregate"):
        monkeypatch.setattr(f"{module}.RESULTS_DIR", tmp_path / "results")
    assert main(["status", str(spec)]) == 0
    assert f"resumable: {run_id(config)} has 2 epoch(s) done" in capsys.readouterr().out


def test_a_snapshot_from_before_earlier_segments_still_resumes(tiny_model_dir, tiny_glue_dir, tmp_path, monkeypatch):
    """Snapshots of the first resume format listed the epochs resumed at ("resumed") and no writer: they resume."""
    import json

    from safetensors.torch import load_file, safe_open, save_file
    config = cfg(tiny_model_dir, tiny_glue_dir, policy="adapter", adapter_size=4, epochs=3)
    interrupted(monkeypatch, after_steps=8 + 1)
    with pytest.raises(Killed):
        al.train(config, output_dir=tmp_path, progress=False)
    monkeypatch.undo()
    path = resume.snapshot_path(tmp_path, run_id(config))
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["adapterlib_resume"])
    for key in ("writer", "segments"):
        meta["loop"].pop(key)
    meta["loop"]["resumed"] = []
    save_file(load_file(str(path)), str(path), metadata={"adapterlib_resume": json.dumps(meta)})
    record = al.train(config, output_dir=tmp_path, progress=False)
    assert record["timing"]["resumed_at_epochs"] == [1] and record["earlier_segments"] == [{"until_epoch": 1}]
