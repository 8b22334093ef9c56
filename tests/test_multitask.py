"""Many tasks on one frozen base: AdapterBank training, switching, storage accounting (tiny model)."""
import matplotlib

matplotlib.use("Agg")

import pytest
import torch

from adapterlib import AdapterConfig, TrainConfig, add_adapters, param_report, set_trainable
from adapterlib.checkpoint import read_adapter_config
from adapterlib.fast import ExactDropout
from adapterlib.plots import plot_storage
from adapterlib.studies.multitask import (AdapterBank, checkpoint_bytes, checkpoint_contents, frozen_fingerprint,
                                          probe_batch, storage_cost, task_logits)


@pytest.fixture
def glue_dir(tiny_glue_dir, tmp_path, monkeypatch):
    """The shared synthetic GLUE folder (SST-2 and CoLA: two binary tasks) and a private tokenisation cache."""
    monkeypatch.setenv("ADAPTERLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GLUE_DIR", raising=False)
    return tiny_glue_dir


@pytest.fixture
def bank(make_tiny):
    model = make_tiny()
    add_adapters(model, AdapterConfig(size=4))
    return AdapterBank(set_trainable(model, "adapter"))


def cfg(task, glue_dir):
    return TrainConfig(task=task, lr=1e-2, max_steps=4, batch_size=8, glue_dir=str(glue_dir), eval_every=2)


def test_train_tasks_in_turn_on_one_base(bank, glue_dir, word_tokenizer, tiny_batch, tmp_path):
    model = bank.model
    shared_before = frozen_fingerprint(model)
    start = {n: p.detach().clone() for n, p in model.named_parameters()}

    assert not any(isinstance(m, ExactDropout) for m in model.modules())
    rec_a = bank.train_task(cfg("sst2", glue_dir), word_tokenizer, tmp_path / "ckpt" / "sst2")
    assert rec_a["speedups"]["fast_modules"] and any(isinstance(m, ExactDropout) for m in model.modules())
    model.eval()
    logits_a = model(**tiny_batch).logits
    ln_a = model.bert.encoder.layer[0].output.LayerNorm.weight.detach().clone()
    rec_b = bank.train_task(cfg("cola", glue_dir), word_tokenizer, tmp_path / "ckpt" / "cola")

    assert bank.names == ["sst2", "cola"] and bank.active == "cola"
    assert rec_a.timing.steps == rec_b.timing.steps == 4 and 0 <= rec_a["dev_score"] <= 100
    assert rec_b["metric"] == "mcc" and len(rec_a["history"]) == 2
    assert frozen_fingerprint(model) == shared_before  # the shared base was never written
    for name, p in model.named_parameters():
        if not p.requires_grad:
            assert torch.equal(p, start[name]), name
    model.eval()
    assert not torch.equal(model(**tiny_batch).logits, logits_a)
    bank.activate("sst2")
    assert torch.equal(model(**tiny_batch).logits, logits_a)  # task A bit-for-bit after training task B
    assert torch.equal(model.bert.encoder.layer[0].output.LayerNorm.weight, ln_a)  # LayerNorms swap too
    meta = read_adapter_config(tmp_path / "ckpt" / "cola")
    assert any("LayerNorm" in t for t in meta["tensors"]) and any("classifier" in t for t in meta["tensors"])
    assert meta["metadata"]["task"] == "cola"


def test_reset_and_errors(bank, glue_dir, word_tokenizer, tmp_path, make_tiny):
    start = {n: p.detach().clone() for n, p in bank.model.named_parameters()}
    with torch.no_grad():
        for p in bank.model.parameters():
            if p.requires_grad:
                p.add_(1.0)
    bank.reset()
    assert all(torch.equal(p, start[n]) for n, p in bank.model.named_parameters())
    with pytest.raises(KeyError, match="no checkpoint"):
        bank.activate("rte")
    with pytest.raises(ValueError, match="policy 'adapter'"):
        bank.train_task(TrainConfig(task="sst2", policy="full"), word_tokenizer, tmp_path / "x")
    with pytest.raises(ValueError, match="labels"):
        bank.train_task(TrainConfig(task="stsb"), word_tokenizer, tmp_path / "x")
    with pytest.raises(ValueError, match="no adapters"):
        AdapterBank(make_tiny())


def test_add_existing_checkpoint(bank, make_tiny, tiny_batch, tmp_path):
    with torch.no_grad():
        for p in bank.model.parameters():
            if p.requires_grad:
                p.add_(0.1)
    bank.save("a", tmp_path / "a")
    other = make_tiny()
    add_adapters(other, AdapterConfig(size=4))
    other_bank = AdapterBank(set_trainable(other, "adapter"))
    other_bank.add("a", tmp_path / "a")
    other_bank.activate("a").eval()
    assert torch.equal(other(**tiny_batch).logits, bank.model.eval()(**tiny_batch).logits)
    with pytest.raises(ValueError):
        other_bank.add("b", tmp_path / "missing")


def test_storage_cost_arithmetic(bank, tmp_path):
    paths = {name: bank.save(name, tmp_path / name) for name in ("a", "b", "c")}
    df = storage_cost(bank.model, paths)
    report = param_report(bank.model)
    ad = df[df["setup"].str.startswith("adapters")].set_index("n_tasks")
    ft = df[df["setup"].str.startswith("full")].set_index("n_tasks")
    assert list(ad.index) == [1, 2, 3]
    assert ad.loc[3, "params"] == report.frozen + 3 * report.trainable
    assert ft.loc[3, "params"] == 3 * (report.base + report.head)
    assert ad.loc[3, "multiple_of_base"] == pytest.approx(report.total_multiple(3))
    assert ft.loc[3, "multiple_of_base"] == pytest.approx(3 * (report.base + report.head) / report.base)
    assert report.total_multiple(3) == pytest.approx((report.frozen + 3 * report.trainable) / report.base)
    assert ad.loc[2, "per_task_bytes"] == checkpoint_bytes(paths["a"]) + checkpoint_bytes(paths["b"])
    assert ft.loc[3, "total_bytes"] == 3 * ft.loc[1, "total_bytes"] >= 3 * 4 * (report.base + report.head)
    assert ad.loc[1, "shared_bytes"] >= 4 * (report.base - 0)
    ax = plot_storage(df)
    assert ax.get_ylabel() == "storage on disk (MB)" and len(ax.patches) == 9


def test_probe_batch_logits_and_checkpoint_contents(bank, glue_dir, word_tokenizer, tmp_path):
    batch = probe_batch("cola", word_tokenizer, n=5, glue_dir=glue_dir)
    assert set(batch) == {"input_ids", "token_type_ids", "attention_mask"} and batch["input_ids"].shape[0] == 5
    logits = task_logits(bank.model, batch)
    assert logits.shape == (5, 2) and not bank.model.training
    assert torch.equal(logits, task_logits(bank.model, batch))
    bank.save("a", tmp_path / "a")
    contents = checkpoint_contents(bank.model, tmp_path / "a").set_index("group")
    report = param_report(bank.model)
    assert list(contents.index) == ["adapter", "layernorm", "head"]
    assert contents["params"].to_dict() == {"adapter": report.adapter, "layernorm": report.layernorm, "head": report.head}
    assert contents.loc["adapter", "tensors"] == 2 * 2 * 4  # 2 layers x 2 adapters x (2 weights + 2 biases)
