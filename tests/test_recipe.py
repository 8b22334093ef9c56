"""Recipe options of the v2 studies: early stopping, the head's input, a trained pooler, the speed path.

Each is a TrainConfig field, recorded in the run's config and part of its run id, while runs made
before the field existed keep their ids (their records are committed under data/results/).
"""
import json
import re
from pathlib import Path

import pytest
import torch

import adapterlib as al
from adapterlib.train import TrainingDiverged, build_model, run_id

ROOT = Path(__file__).resolve().parents[1]


def cfg(tiny_model_dir, tiny_glue_dir, **kw):
    base = dict(task="sst2", model=str(tiny_model_dir), glue_dir=str(tiny_glue_dir), batch_size=8, epochs=2,
                lr=1e-2, max_length=32, max_train_examples=100, adapter_size=4)
    return al.TrainConfig(**{**base, **kw})


@pytest.mark.committed
def test_committed_records_keep_their_run_ids():
    """Every committed v1 record's id is recomputed from its config (new fields take legacy defaults)."""
    files = sorted((ROOT / "data" / "results").glob("*/runs/*.json"))
    checked = 0
    for f in files:
        rec = json.loads(f.read_text())
        if "config" not in rec or rec.get("mode") == "papermill":
            continue
        assert run_id(al.TrainConfig(**rec["config"])) == rec["run_id"], f
        checked += 1
    assert checked >= 100


def test_recipe_fields_enter_the_run_id_only_when_set():
    plain = al.TrainConfig(task="rte")
    assert "patience" not in plain.identity() and "head_input" not in plain.identity()
    ids = {run_id(plain)}
    for change in ({"patience": 3}, {"head_input": "mean"}, {"train_pooler": True}, {"fast": False}):
        cfg_ = al.TrainConfig(task="rte", **change)
        assert cfg_.to_dict()[next(iter(change))] == next(iter(change.values()))  # recorded in the config
        ids.add(run_id(cfg_))
    assert len(ids) == 5
    mean = run_id(al.TrainConfig(task="rte", head_input="mean", patience=3))
    assert mean.startswith("rte-adapter-m64-lr0.0003-s0-mean-es3-")
    bf16 = run_id(al.TrainConfig(task="rte", head_input="mean", patience=3, mixed_precision="bf16"))
    assert bf16.startswith("rte-adapter-m64-lr0.0003-s0-mean-es3-bf16-") and bf16 not in ids  # precision: in the id


@pytest.mark.parametrize("bad,message", [
    ({"lr": float("inf")}, "lr must be a finite number"),
    ({"lr": float("nan")}, "lr must be a finite number"),
    ({"max_grad_norm": -1.0}, "max-grad-norm must be a finite number in (0, 1e+06)"),
    ({"warmup_ratio": 5.0}, "warmup-ratio must be a finite number in [0, 1)"),
    ({"weight_decay": -3.0}, "weight-decay must be a finite number in [0, 1)"),
    ({"adam_eps": 0.0}, "adam-eps"),
    ({"patience": 0}, "patience must be a positive integer"),
    ({"epochs": True}, "epochs must be a positive integer"),
    ({"epochs": 2.5}, "epochs must be a positive integer"),
    ({"seed": -1}, "seed must be a non-negative integer"),
    ({"head_input": "cls"}, "head-input must be 'pooler' or 'mean'"),
    ({"head_input": "mean", "train_pooler": True}, "train-pooler needs head-input 'pooler'"),
    ({"train_pooler": "false"}, "train-pooler must be true or false"),
    ({"fast": 1}, "fast must be true or false"),
    ({"mixed_precision": "fp8"}, "mixed-precision"),
])
def test_every_setting_has_a_validated_range(bad, message):
    with pytest.raises(al.TrainConfigError, match=None) as e:
        al.TrainConfig(task="rte", **bad)
    assert message in str(e.value)


def test_mean_pooling_masks_padding_and_drops_the_pooler(tiny_model_dir):
    model, _ = al.load_base_model(str(tiny_model_dir))
    n_before = sum(p.numel() for p in model.parameters())
    pooler_params = sum(p.numel() for p in model.base_model.pooler.parameters())
    al.set_head_input(model, "mean")
    assert isinstance(model.base_model.pooler, al.MeanPooler) and al.head_input(model) == "mean"
    assert sum(p.numel() for p in model.parameters()) == n_before - pooler_params
    model.eval()
    ids = torch.tensor([[2, 5, 6, 3, 0, 0], [2, 7, 8, 9, 10, 3]])
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    with torch.no_grad():
        out = model.base_model(input_ids=ids, attention_mask=mask)
        h = out.last_hidden_state
        assert torch.allclose(out.pooler_output[0], h[0, :4].mean(0), atol=1e-6)  # padding left out
        assert not torch.allclose(out.pooler_output[0], h[0].mean(0), atol=1e-4)
        alone = model.base_model(input_ids=ids[:1, :4], attention_mask=mask[:1, :4]).pooler_output
        assert torch.allclose(alone[0], out.pooler_output[0], atol=1e-5)
    assert model.base_model.pooler.mask is None  # not kept after the forward
    with pytest.raises(ValueError, match="head_input .*'max'"):
        al.set_head_input(model, "max")


def test_train_pooler_is_trained_and_counted(tiny_model_dir, tiny_glue_dir, tmp_path):
    frozen_pooler = build_model(cfg(tiny_model_dir, tiny_glue_dir))[0]
    trained_pooler = build_model(cfg(tiny_model_dir, tiny_glue_dir, train_pooler=True))[0]
    pooler = sum(p.numel() for p in trained_pooler.base_model.pooler.parameters())
    a, b = al.param_report(frozen_pooler), al.param_report(trained_pooler)
    assert a.pooler == 0 and b.pooler == pooler and b.trainable == a.trainable + pooler
    assert "pooler" in str(b) and "pooler" not in str(a)
    with pytest.raises(ValueError, match="no pooler"):
        al.set_trainable(al.set_head_input(al.load_base_model(str(tiny_model_dir))[0], "mean"), "head",
                         train_pooler=True)
    # the checkpoint keeps the trained pooler, and loading it restores it
    record = al.train(cfg(tiny_model_dir, tiny_glue_dir, train_pooler=True), output_dir=tmp_path, progress=False)
    assert record["params"]["pooler"] == pooler
    meta = json.loads((tmp_path / record["checkpoint"] / "adapter_config.json").read_text())
    assert "pooler" in meta["groups"] and any(".pooler." in t for t in meta["tensors"])


@pytest.mark.slow
def test_mean_head_checkpoint_round_trip(tiny_model_dir, tiny_glue_dir, tmp_path):
    tiny_batch = {"input_ids": torch.tensor([[2, 5, 6, 3, 0], [2, 7, 8, 9, 3]]),
                  "attention_mask": torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]])}
    config = cfg(tiny_model_dir, tiny_glue_dir, head_input="mean")
    record = al.train(config, output_dir=tmp_path, progress=False)
    assert record["config"]["head_input"] == "mean" and "-mean-" in record["run_id"]
    trained, _ = build_model(config, fast=False)
    al.load_adapter(trained, tmp_path / record["checkpoint"])
    fresh, _ = al.load_base_model(str(tiny_model_dir))          # reads the pooler until the checkpoint says mean
    al.load_adapter(fresh, tmp_path / record["checkpoint"])
    assert al.head_input(fresh) == "mean"
    with torch.no_grad():
        assert torch.equal(trained.eval()(**tiny_batch).logits, fresh.eval()(**tiny_batch).logits)
    # a pooler checkpoint is refused by a model that already uses mean pooling
    pooled = al.train(cfg(tiny_model_dir, tiny_glue_dir), output_dir=tmp_path, progress=False)
    with pytest.raises(al.CheckpointError, match="reads the pooler"):
        al.load_adapter(fresh, tmp_path / pooled["checkpoint"])


@pytest.mark.slow
def test_bf16_trains_in_bf16_and_keeps_float32_weights(tiny_model_dir, tiny_glue_dir, tmp_path, monkeypatch):
    """mixed_precision bf16 (the v2 sweeps' setting): the training forward runs under bf16 autocast (with the
    fast path on), the trained weights and the checkpoint stay float32, and the record names the precision."""
    import sys

    from safetensors.torch import load_file
    T = sys.modules["adapterlib.train"]  # the module (the package's `train` attribute is the function)
    seen = []
    real_step = T._train_step

    def spy(model, batch, *args, **kwargs):
        layer = next(m for m in model.modules() if isinstance(m, torch.nn.Linear))
        handle = layer.register_forward_hook(lambda mod, inp, out: seen.append(out.dtype))
        try:
            return real_step(model, batch, *args, **kwargs)
        finally:
            handle.remove()

    al.train(cfg(tiny_model_dir, tiny_glue_dir, head_input="mean"), progress=False)  # fp32 first, in the same process:
    # accelerate's process-wide state must not pin the precision (a sweep worker runs both kinds one after the other)
    monkeypatch.setattr(T, "_train_step", spy)
    record = al.train(cfg(tiny_model_dir, tiny_glue_dir, head_input="mean", mixed_precision="bf16"),
                      output_dir=tmp_path, progress=False)
    assert seen and set(seen) == {torch.bfloat16}
    assert record["config"]["mixed_precision"] == "bf16" and record["run_id"].split("-")[-2] == "bf16"
    assert all(torch.isfinite(torch.tensor(h["train_loss"])) for h in record["history"])
    weights = load_file(next((tmp_path / record["checkpoint"]).glob("*.safetensors")))
    assert weights and {w.dtype for w in weights.values()} == {torch.float32}
    seen.clear()
    monkeypatch.setattr(T, "_train_step", spy)
    al.train(cfg(tiny_model_dir, tiny_glue_dir, head_input="mean"), progress=False)   # and back to fp32
    assert seen and set(seen) == {torch.float32}


@pytest.mark.slow
def test_early_stopping_stops_after_patience_and_restores_the_best(tiny_model_dir, tiny_glue_dir, monkeypatch):
    """Validation scores are scripted: best at the 2nd evaluation, then 2 worse ones -> stop at the 4th."""
    import importlib
    T = importlib.import_module("adapterlib.train")
    scripted = iter([50.0, 80.0, 70.0, 60.0, 90.0, 95.0])
    real = T.evaluate
    states = []

    def fake_evaluate(model, loader, task, progress=False, desc="eval"):
        scores = real(model, loader, task, progress, desc)
        if desc == "validation":
            states.append({n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad})
            return {**scores, "accuracy": next(scripted)}
        return scores

    monkeypatch.setattr(T, "evaluate", fake_evaluate)
    config = cfg(tiny_model_dir, tiny_glue_dir, epochs=6, patience=2)
    result = T.fit(*build_model(config), config, progress=False)
    assert [h["validation_accuracy"] for h in result.history] == [50.0, 80.0, 70.0, 60.0]
    assert result.stopped_early and result.epochs_run == 4 and result.selected["epoch"] == 2
    restored = {n: p for n, p in result.model.named_parameters() if p.requires_grad}
    assert all(torch.equal(restored[n], states[1][n]) for n in restored)      # the best epoch, not the last
    assert not all(torch.equal(restored[n], states[3][n]) for n in restored)


def test_without_patience_every_epoch_runs(tiny_model_dir, tiny_glue_dir):
    record = al.train(cfg(tiny_model_dir, tiny_glue_dir, epochs=3), progress=False)
    assert len(record["history"]) == 3 and record["timing"]["stopped_early"] is False
    assert record["timing"]["planned_steps"] == record["timing"]["steps"]


def test_non_finite_loss_stops_the_run(tiny_model_dir, tiny_glue_dir, tmp_path, monkeypatch):
    """A NaN weight makes the 3rd step's loss NaN: the run raises (a sweep records it failed), writes nothing."""
    import importlib
    T = importlib.import_module("adapterlib.train")
    real_step, calls = T._train_step, []

    def poisoned_step(model, batch, *args):
        calls.append(1)
        if len(calls) == 3:
            with torch.no_grad():
                next(p for p in model.parameters() if p.requires_grad).fill_(float("nan"))
        return real_step(model, batch, *args)

    monkeypatch.setattr(T, "_train_step", poisoned_step)
    with pytest.raises(TrainingDiverged, match="nan at step 3"):
        al.train(cfg(tiny_model_dir, tiny_glue_dir), output_dir=tmp_path, progress=False)
    assert len(calls) == 3 and not list(tmp_path.iterdir())  # stopped at once; no record, no checkpoint


def test_output_dir_is_checked_before_training(tiny_model_dir, tiny_glue_dir, tmp_path, monkeypatch):
    import importlib
    T = importlib.import_module("adapterlib.train")
    trained = []
    monkeypatch.setattr(T, "fit", lambda *a, **k: trained.append(1))
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(T.OutputWriteError, match=re.escape(str(a_file))):
        al.train(cfg(tiny_model_dir, tiny_glue_dir), output_dir=a_file, progress=False)
    read_only = tmp_path / "ro"
    read_only.mkdir()
    read_only.chmod(0o500)
    try:
        import os
        if os.geteuid() != 0:  # root may write anywhere
            with pytest.raises(T.OutputWriteError, match="not writable"):
                al.train(cfg(tiny_model_dir, tiny_glue_dir), output_dir=read_only, progress=False)
    finally:
        read_only.chmod(0o700)
    assert not trained and a_file.read_text() == "x"


def test_a_failed_final_write_keeps_the_scores_on_screen(tiny_model_dir, tiny_glue_dir, tmp_path, monkeypatch):
    import importlib
    T = importlib.import_module("adapterlib.train")

    def disk_full(path, obj):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(T.records, "write_json_atomic", disk_full)
    with pytest.raises(T.OutputWriteError, match=r"No space left.*\(not saved\): dev [\d.]+ accuracy"):
        al.train(cfg(tiny_model_dir, tiny_glue_dir), output_dir=tmp_path, progress=False)


@pytest.mark.parametrize("bad,message", [
    ({"init_std": float("inf")}, "init_std must be a finite number >= 0"),
    ({"init_std": float("nan")}, "init_std must be a finite number >= 0"),
    ({"init_std": -1e-3}, "init_std must be a finite number >= 0"),
    ({"positions": ("ffn", "ffn")}, "without repeats"),
    ({"layers": "11"}, "layers must be a list of integer layer indices"),
    ({"layers": [1.5]}, "layers must be a list of integer layer indices"),
])
def test_adapter_config_rejects_what_would_silently_go_wrong(bad, message):
    with pytest.raises(al.AdapterConfigError) as e:
        al.AdapterConfig(**bad)
    assert message in str(e.value)


def test_adapter_config_layers_accept_integers_of_any_kind():
    import numpy as np
    assert al.AdapterConfig(layers=[np.int64(3), 1, 3]).layers == [1, 3]


@pytest.mark.slow
def test_patience_counts_only_validations_after_the_warm_up(tiny_model_dir, tiny_glue_dir, monkeypatch):
    """13 steps per epoch, 6 epochs, warm-up 50% = 39 steps: the validations at steps 26 and 39 do not count,
    so with patience 2 the run stops at the 5th validation (without the rule it would stop at the 3rd)."""
    import importlib
    T = importlib.import_module("adapterlib.train")
    scripted = iter([80.0, 70.0, 60.0, 50.0, 40.0, 30.0])
    real = T.evaluate

    def fake_evaluate(model, loader, task, progress=False, desc="eval"):
        scores = real(model, loader, task, progress, desc)
        return {**scores, "accuracy": next(scripted)} if desc == "validation" else scores

    monkeypatch.setattr(T, "evaluate", fake_evaluate)
    config = cfg(tiny_model_dir, tiny_glue_dir, epochs=6, patience=2, warmup_ratio=0.5)
    result = T.fit(*build_model(config), config, progress=False)
    assert [h["step"] for h in result.history] == [13, 26, 39, 52, 65]
    assert result.stopped_early and result.selected["step"] == 13
