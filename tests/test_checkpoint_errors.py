"""Checkpoints that are not what they claim: each refusal is a CheckpointError, and a refused load changes no weight."""
from __future__ import annotations

import json

import pytest
import torch

import adapterlib as al
from adapterlib.checkpoint import CONFIG_NAME, WEIGHTS_NAME, CheckpointError, read_adapter_config


def _weights(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


@pytest.fixture
def saved(make_tiny, tmp_path):
    """A checkpoint of size-4 adapters (+ LayerNorms, head) of the tiny BERT, and an edit function for its JSON."""
    torch.manual_seed(3)
    model = al.add_adapters(make_tiny(), al.AdapterConfig(size=4))
    for _, _, slot in al.adapter_slots(model):
        slot.adapter.reset_parameters(0.1)
    folder = al.save_adapter(model, tmp_path / "ckpt")

    def edit(change):
        meta = json.loads((folder / CONFIG_NAME).read_text())
        change(meta)
        (folder / CONFIG_NAME).write_text(json.dumps(meta))
        return folder
    return folder, edit


def test_save_refuses_a_model_without_parameters_in_the_groups(make_tiny, tmp_path):
    with pytest.raises(CheckpointError, match="adapter"):
        al.save_adapter(make_tiny(), tmp_path / "none", groups=("adapter",))   # no adapters were added
    assert list((tmp_path / "none").iterdir()) == []


@pytest.mark.parametrize("key, value", [
    ("format", "peft"),                                # another tool's config
    ("peft", {"method": "adalora"}),                   # a peft method adapterlib does not rebuild
    ("peft", ["lora"]),
    ("adapter_config", {"size": -4}),                  # a known field with an invalid value
    ("adapter_config", {"nonlinearity": "sigmoid"}),
    ("head_input", "cls"),
    ("metadata", ["not", "a", "mapping"]),
])
def test_read_refuses_a_bad_field(saved, key, value):
    folder, edit = saved
    edit(lambda meta: meta.__setitem__(key, value))
    with pytest.raises(CheckpointError) as info:
        read_adapter_config(folder)
    assert str(folder / CONFIG_NAME) in str(info.value) and "\n" not in str(info.value)


def test_read_refuses_a_config_that_is_not_a_mapping(saved):
    folder, _ = saved
    (folder / CONFIG_NAME).write_text("[1, 2]")
    with pytest.raises(CheckpointError, match="format"):
        read_adapter_config(folder)


def test_load_refuses_a_tensor_list_that_is_not_the_file(saved, make_tiny):
    folder, edit = saved
    edit(lambda meta: meta.__setitem__("tensors", meta["tensors"][1:]))   # the config leaves one tensor out
    model = make_tiny()
    before = _weights(model)
    with pytest.raises(CheckpointError, match="does not match"):
        al.load_adapter(model, folder)
    after = _weights(model)
    assert all(torch.equal(after[n], t) for n, t in before.items())


def test_load_refuses_tensors_of_another_shape_before_copying_any(saved, make_tiny):
    folder, edit = saved
    edit(lambda meta: meta["adapter_config"].__setitem__("size", 8))   # the config says 8, the tensors are 4 wide
    model = make_tiny()
    before = _weights(model)
    with pytest.raises(CheckpointError) as info:
        al.load_adapter(model, folder)
    name, _, shapes = str(info.value).partition(": ")
    assert name in json.loads((folder / CONFIG_NAME).read_text())["tensors"]   # names the tensor ...
    assert "(4" in shapes and "(8" in shapes                                     # ... and both widths
    after = _weights(model)
    # every weight the model had is as it was (the new size-8 adapters are the only new tensors)
    assert all(torch.equal(after[n], t) for n, t in before.items())
    assert {n for n in after if n not in before} and all(".adapter" in n for n in after if n not in before)


def test_load_refuses_a_model_with_peft_modules_for_a_checkpoint_without(saved, make_tiny):
    from adapterlib.methods import add_peft
    folder, _ = saved
    model = add_peft(make_tiny(), {"method": "prefix", "num_virtual_tokens": 2})
    with pytest.raises(CheckpointError, match="no peft modules"):
        al.load_adapter(model, folder)


@pytest.mark.parametrize("settings", [
    {"method": "lora", "r": 4, "no_such_option": 1},     # peft's LoraConfig refuses it (TypeError)
    {"method": "lora", "r": 4, "lora_alpha": None},      # peft fails on it (TypeError)
    {"method": "prefix"},                                # no length: was a raw KeyError
    {"method": "prefix", "num_virtual_tokens": -1},      # was torch's RuntimeError (negative dimension)
    {"method": "prefix", "num_virtual_tokens": 10**9},   # was torch's allocator asking for 512 GB
    {"method": "lora", "r": "8"},
    {"method": "lora", "r": 10**7},                      # a rank far beyond the hidden size (32)
])
def test_load_refuses_peft_settings_peft_cannot_build(make_tiny, tmp_path, settings):
    from adapterlib.methods import add_peft
    model = add_peft(make_tiny(), {"method": "prefix", "num_virtual_tokens": 2})
    folder = al.save_adapter(model, tmp_path / "ckpt", groups=("adapter",))
    meta = json.loads((folder / CONFIG_NAME).read_text())
    meta["peft"] = settings
    (folder / CONFIG_NAME).write_text(json.dumps(meta))
    assert (folder / WEIGHTS_NAME).is_file()
    with pytest.raises(CheckpointError, match="cannot rebuild"):
        al.load_adapter(make_tiny(), folder)


@pytest.mark.parametrize("settings", [{"method": "prefix", "num_virtual_tokens": 3}, {"method": "lora", "r": 2},
                                      {"method": "ia3"}])
def test_a_peft_checkpoint_rebuilds_its_modules_on_a_fresh_model(make_tiny, tiny_batch, tmp_path, settings):
    from adapterlib.methods import add_peft, peft_settings
    model = make_tiny()
    full = peft_settings(settings["method"], model, settings.get("r"), settings.get("num_virtual_tokens"))
    add_peft(model, full)
    torch.manual_seed(5)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if al.param_groups(model)[name] == "adapter":
                p.add_(torch.randn_like(p) * 0.2)
    folder = al.save_adapter(model, tmp_path / "ckpt", groups=("adapter", "head"))
    fresh = al.load_adapter(make_tiny(), folder)
    assert fresh.peft_settings == full and fresh.adapterlib_method == settings["method"]
    with torch.no_grad():
        assert torch.equal(fresh(**tiny_batch).logits, model(**tiny_batch).logits)
