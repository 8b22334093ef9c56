"""Adapter module, injection, policies and parameter accounting."""
import pytest
import torch

import adapterlib as al
from adapterlib.modules import Adapter, AdapterSlot


def logits(model, batch):
    with torch.no_grad():
        return model(**batch).logits


@pytest.mark.parametrize("model_type", ["bert", "roberta", "distilbert", "electra"])
def test_zero_init_is_exact_identity(make_tiny, tiny_batch, model_type):
    model = make_tiny(model_type)
    before = logits(model, tiny_batch)
    al.add_adapters(model, al.AdapterConfig(size=8, init_std=0))
    assert len(al.adapter_slots(model)) == 2 * 2
    assert torch.equal(logits(model, tiny_batch), before)


def test_houlsby_init_is_near_identity_and_truncated(make_tiny, tiny_batch):
    model = make_tiny()
    before = logits(model, tiny_batch)
    al.add_adapters(model, al.AdapterConfig(size=8))  # houlsby: std 1e-2
    after = logits(model, tiny_batch)
    assert not torch.equal(after, before)
    assert torch.allclose(after, before, atol=1e-2)
    w = torch.cat([s.adapter.down.weight.flatten() for _, _, s in al.adapter_slots(model)])
    assert w.abs().max() <= 2e-2 + 1e-7          # truncated at 2 std
    assert 0.5e-2 < w.std() < 1e-2               # truncation shrinks the std a little
    assert all(s.adapter.up.bias.abs().sum() == 0 for _, _, s in al.adapter_slots(model))


def test_named_init_schemes_and_override():
    assert al.AdapterConfig(init="adapter-bert").std == 1e-3
    assert al.AdapterConfig(init="houlsby").std == 1e-2
    assert al.AdapterConfig(init_std=0.3).std == 0.3
    torch.manual_seed(0)
    a = Adapter(64, al.AdapterConfig(size=16, init_std=1.0))
    assert 0.7 < a.down.weight.std() < 1.0 and a.down.weight.abs().max() <= 2.0


def test_adapter_forward_formula():
    torch.manual_seed(0)
    a = Adapter(6, al.AdapterConfig(size=3, init_std=0.5, nonlinearity="relu"))
    h = torch.randn(2, 4, 6)
    expected = h + torch.relu(h @ a.down.weight.T + a.down.bias) @ a.up.weight.T + a.up.bias
    assert torch.allclose(a(h), expected, atol=1e-6)
    assert sum(p.numel() for p in a.parameters()) == 2 * 3 * 6 + 6 + 3
    # the in-place skip add computes the same bits and gradients as the out-of-place h + up(...)
    h1, h2 = h.clone().requires_grad_(), h.clone().requires_grad_()
    out1, out2 = a(h1), h2 + a.up(a.act(a.down(h2)))
    assert torch.equal(out1, out2) and torch.equal(h1.detach(), h)  # the input is not modified
    weights = torch.randn_like(out1)
    g1 = torch.autograd.grad((out1 * weights).sum(), [h1, *a.parameters()])
    g2 = torch.autograd.grad((out2 * weights).sum(), [h2, *a.parameters()])
    assert all(torch.equal(x, y) for x, y in zip(g1, g2, strict=True))


def test_inference_writes_into_the_sublayer_output_with_the_same_result(make_tiny):
    """Without autograd, AdapterSlot lets the adapter add into the sub-layer's output (one pass less):
    the same numbers up to floating-point order, a direct Adapter call never touches its input."""
    torch.manual_seed(0)
    a = Adapter(6, al.AdapterConfig(size=3, init_std=0.5))
    h = torch.randn(2, 4, 6)
    with torch.no_grad():
        kept = h.clone()
        assert torch.equal(a(h), a(kept.clone(), overwrite_input=False)) and torch.equal(h, kept)
        slot_out = a(h, overwrite_input=True)
        assert slot_out.data_ptr() == h.data_ptr()  # written into h
        assert torch.allclose(slot_out, kept + a.up(a.act(a.down(kept))), atol=1e-6)
    model = al.add_adapters(make_tiny(), al.AdapterConfig(size=4, init_std=0.3)).eval()
    ids = torch.randint(5, 100, (3, 9))
    with torch.no_grad():
        fast_logits = model(input_ids=ids).logits
    graph_logits = model(input_ids=ids).logits  # autograd on: the out-of-place path
    assert torch.allclose(fast_logits, graph_logits, atol=1e-5)
    assert not torch.equal(fast_logits, torch.zeros_like(fast_logits))


def test_placement_is_after_dropout_before_residual(make_tiny):
    model = al.add_adapters(make_tiny(), al.AdapterConfig(size=4))
    layer = model.bert.encoder.layer[1]
    for sub in (layer.attention.output, layer.output):
        assert isinstance(sub.dropout, AdapterSlot)
        assert isinstance(sub.dropout.inner, torch.nn.Dropout)
    keys = model.state_dict().keys()
    assert "bert.encoder.layer.0.attention.output.dropout.adapter.down.weight" in keys
    assert "bert.encoder.layer.1.output.dropout.adapter.up.bias" in keys
    assert "Adapter(" in str(model)


def test_layers_and_positions_options(make_tiny):
    model = al.add_adapters(make_tiny(num_hidden_layers=3), al.AdapterConfig(size=4, layers=[2], positions=("ffn",)))
    assert [(i, p) for i, p, _ in al.adapter_slots(model)] == [(2, "ffn")]
    with pytest.raises(ValueError, match="out of range"):
        al.add_adapters(make_tiny(), al.AdapterConfig(layers=[5]))
    with pytest.raises(ValueError, match="already has adapters"):
        al.add_adapters(model, al.AdapterConfig())


def test_adapters_removed_restores_base_function(make_tiny, tiny_batch):
    model = make_tiny()
    base = logits(model, tiny_batch)
    al.add_adapters(model, al.AdapterConfig(size=4, init_std=0.5))
    with_adapters = logits(model, tiny_batch)
    with al.adapters_removed(model, layers=[0, 1]):
        assert torch.equal(logits(model, tiny_batch), base)
    assert torch.equal(logits(model, tiny_batch), with_adapters)
    al.enable_adapters(model, layers=[])
    assert torch.equal(logits(model, tiny_batch), base)


@pytest.mark.parametrize("kwargs,match", [
    (dict(size=0), "positive"), (dict(size=-3), "positive"), (dict(init_std=-1e-3), ">= 0"),
    (dict(init="xavier"), "unknown init"), (dict(nonlinearity="softmax"), "unknown nonlinearity"),
    (dict(positions=("cross",)), "positions"),
])
def test_bad_config_errors(kwargs, match):
    with pytest.raises(al.AdapterConfigError, match=match):
        al.AdapterConfig(**kwargs)


def test_unknown_model_type_names_supported(make_tiny):
    from transformers import AutoModelForSequenceClassification, GPT2Config
    model = AutoModelForSequenceClassification.from_config(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50))
    with pytest.raises(al.UnsupportedModelError, match="supported: bert, distilbert"):
        al.add_adapters(model, al.AdapterConfig())


def trainable_groups(model):
    groups = al.param_groups(model)
    return {groups[n] for n, p in model.named_parameters() if p.requires_grad}


def test_policies_trainable_sets(make_tiny):
    model = al.add_adapters(make_tiny(num_hidden_layers=3), al.AdapterConfig(size=4))
    al.set_trainable(model, "adapter")
    assert trainable_groups(model) == {"adapter", "layernorm", "head"}
    assert model.bert.embeddings.LayerNorm.weight.requires_grad           # embedding LayerNorm too
    assert not model.bert.pooler.dense.weight.requires_grad              # pooler frozen (adapter-bert)
    al.set_trainable(model, "full")
    assert all(p.requires_grad for p in model.parameters())
    al.set_trainable(model, "layernorm")
    assert trainable_groups(model) == {"layernorm", "head"}
    al.set_trainable(model, "head")
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {"classifier.weight", "classifier.bias"}
    al.set_trainable(model, "top_k", k=1)
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any(n.startswith("bert.encoder.layer.2.attention.self.query") for n in names)
    assert not any(n.startswith(("bert.encoder.layer.1.", "bert.encoder.layer.0.", "bert.embeddings")) for n in names)
    assert "classifier.weight" in names


def test_policy_errors(make_tiny):
    model = make_tiny()
    with pytest.raises(ValueError, match="unknown policy"):
        al.set_trainable(model, "lora2")
    with pytest.raises(ValueError, match="add_adapters"):
        al.set_trainable(model, "lora")  # a known policy, on a model without LoRA's modules
    with pytest.raises(ValueError, match="add_adapters"):
        al.set_trainable(model, "adapter")
    with pytest.raises(ValueError, match="k must be"):
        al.set_trainable(model, "top_k", k=3)
    with pytest.raises(ValueError, match="required"):
        al.set_trainable(model, "top_k")


@pytest.mark.parametrize("preset,size,expected", [
    ("bert-base", 8, 313_536), ("bert-base", 64, 2_379_264), ("bert-base", 256, 9_461_760),
    ("bert-large", 8, 835_968), ("bert-large", 64, 6_343_680), ("bert-large", 256, 25_227_264),
])
def test_param_counts_match_paper_closed_form(preset, size, expected):
    model = al.model_from_preset(preset)                       # meta device: no weights
    al.set_trainable(al.add_adapters(model, al.AdapterConfig(size=size)), "adapter")
    report = al.param_report(model)
    L, d = (12, 768) if preset == "bert-base" else (24, 1024)
    assert report.adapter == expected == al.adapter_param_formula(d, size, L)
    assert report.layernorm == (2 * L + 1) * 2 * d              # 38,400 / 100,352
    assert report.head == d * 2 + 2
    assert report.base == {"bert-base": 109_482_240, "bert-large": 335_141_888}[preset]


def test_paper_percentages_and_multiples():
    model = al.set_trainable(al.add_adapters(al.model_from_preset("bert-large"), al.AdapterConfig(size=64)), "adapter")
    r = al.param_report(model)
    assert round(r.percent_of_base_no_embedding, 1) == 2.1    # paper Table 1: 2.1% per task
    assert round(r.total_multiple(9), 1) == 1.2                # paper: 1.2x for 9 tasks
    full = al.set_trainable(al.model_from_preset("bert-large"), "full")
    assert round(al.param_report(full).total_multiple(9), 1) == 9.0
    assert "adapters" in str(r) and "6,343,680" in str(r)


def test_models_load_without_hub_kernels(tiny_model_dir):
    """transformers >= 5 kernelizes by default when the `kernels` package is installed (on a GPU it swaps GELU
    for a kernel fetched from the hub, which fails offline); adapterlib keeps the model's own layers, unless
    asked (use_kernels=True)."""
    from adapterlib import load_base_model
    model, _ = load_base_model(str(tiny_model_dir))
    assert model.use_kernels is False
