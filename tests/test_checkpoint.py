"""Adapter-only checkpoints, frozen-base training property, and the real bundled model."""
import json

import pytest
import torch

import adapterlib as al


def logits(model, batch):
    with torch.no_grad():
        return model(**batch).logits


def train_steps(model, batch, steps=3):
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    labels = torch.tensor([0, 1, 1])
    for _ in range(steps):
        opt.zero_grad()
        model(**batch, labels=labels).loss.backward()
        opt.step()
    return model.eval()


def test_frozen_base_bit_identical_after_training(make_tiny, tiny_batch):
    model = al.set_trainable(al.add_adapters(make_tiny(), al.AdapterConfig(size=4)), "adapter")
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    train_steps(model, tiny_batch)
    groups = al.param_groups(model)
    for name, p in model.named_parameters():
        if groups[name] in ("adapter", "layernorm", "head"):
            assert not torch.equal(p, before[name]), name
        else:
            assert torch.equal(p, before[name]), name


def test_save_load_roundtrip_identical_logits(make_tiny, tiny_batch, tmp_path):
    model = al.set_trainable(al.add_adapters(make_tiny(), al.AdapterConfig(size=4)), "adapter")
    train_steps(model, tiny_batch)
    expected = logits(model, tiny_batch)
    al.save_adapter(model, tmp_path / "task")
    fresh = make_tiny()                      # same seed -> same "pre-trained" base
    al.load_adapter(fresh, tmp_path / "task")
    assert torch.equal(logits(fresh, tiny_batch), expected)
    meta = json.loads((tmp_path / "task" / "adapter_config.json").read_text())
    assert meta["adapter_config"]["size"] == 4 and meta["base"]["model_type"] == "bert"


def test_switch_tasks_on_one_base(make_tiny, tiny_batch, tmp_path):
    model = al.set_trainable(al.add_adapters(make_tiny(), al.AdapterConfig(size=4)), "adapter")
    shared = {n: p.detach().clone() for n, p in model.named_parameters()
              if al.param_groups(model)[n] in ("other", "embedding")}
    outs = {}
    for task, seed in (("a", 1), ("b", 2)):
        torch.manual_seed(seed)
        for _, _, slot in al.adapter_slots(model):
            slot.adapter.reset_parameters(0.1)
        train_steps(model, tiny_batch)
        outs[task] = logits(model, tiny_batch)
        al.save_adapter(model, tmp_path / task)
    al.load_adapter(model, tmp_path / "a")
    assert torch.equal(logits(model, tiny_batch), outs["a"])
    al.load_adapter(model, tmp_path / "b")
    assert torch.equal(logits(model, tiny_batch), outs["b"])
    for n, p in model.named_parameters():
        if n in shared:
            assert torch.equal(p, shared[n])


def test_load_refuses_other_architecture(make_tiny, tmp_path):
    al.save_adapter(al.add_adapters(make_tiny(), al.AdapterConfig(size=4)), tmp_path / "h32")
    with pytest.raises(al.CheckpointError, match="hidden_size"):
        al.load_adapter(make_tiny(hidden_size=48), tmp_path / "h32")
    with pytest.raises(al.CheckpointError, match="num_labels"):
        al.load_adapter(make_tiny(num_labels=3), tmp_path / "h32")
    with pytest.raises(al.CheckpointError, match="model_type"):
        al.load_adapter(make_tiny("roberta"), tmp_path / "h32")
    other = al.add_adapters(make_tiny(), al.AdapterConfig(size=8))
    with pytest.raises(al.CheckpointError, match="has adapters"):
        al.load_adapter(other, tmp_path / "h32")


def test_load_refuses_invalid_files(make_tiny, tmp_path):
    with pytest.raises(al.CheckpointError, match="adapterlib checkpoint"):
        al.load_adapter(make_tiny(), tmp_path)
    al.save_adapter(al.add_adapters(make_tiny(), al.AdapterConfig(size=4)), tmp_path / "ok")
    (tmp_path / "ok" / "adapter_model.safetensors").write_bytes(b"\x80\x04 not safetensors, maybe a pickle")
    with pytest.raises(al.CheckpointError, match="valid safetensors"):
        al.load_adapter(make_tiny(), tmp_path / "ok")
    (tmp_path / "ok" / "adapter_config.json").write_text("{nope")
    with pytest.raises(al.CheckpointError, match="not valid JSON"):
        al.load_adapter(make_tiny(), tmp_path / "ok")


def test_real_minilm_identity_roundtrip_and_size(minilm, tmp_path):
    """On the bundled pre-trained MiniLM: exact identity at std 0, small file, exact reload."""
    import copy
    model, tok = minilm
    model = copy.deepcopy(model)
    batch = tok(["The cat sat on the mat.", "Adapters keep the base frozen."], padding=True, return_tensors="pt")
    base = logits(model, batch)
    al.add_adapters(model, al.AdapterConfig(size=64, init_std=0))
    assert torch.equal(logits(model, batch), base)
    for _, _, slot in al.adapter_slots(model):
        slot.adapter.reset_parameters(1e-2)
    near = logits(model, batch)
    assert torch.allclose(near, base, atol=0.05) and not torch.equal(near, base)
    al.set_trainable(model, "adapter")
    report = al.param_report(model)
    assert report.adapter == al.adapter_param_formula(384, 64, 6) == 595_200
    path = al.save_adapter(model, tmp_path / "minilm64")
    size = (path / "adapter_model.safetensors").stat().st_size
    assert size < 0.05 * report.total * 4           # < 5% of the fp32 model
    fresh = copy.deepcopy(minilm[0])
    al.load_adapter(fresh, path)
    assert torch.equal(logits(fresh, batch), near)
