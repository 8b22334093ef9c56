"""AdapterConfig and TrainConfig: values accepted in a second spelling, and the refusals no other test reaches."""
from __future__ import annotations

import pytest

import adapterlib as al
from adapterlib.config import AdapterConfigError, TrainConfigError


def test_one_position_may_be_given_as_a_string():
    cfg = al.AdapterConfig(positions="ffn")
    assert cfg.positions == ("ffn",)
    assert cfg.to_dict()["positions"] == ["ffn"]
    assert al.AdapterConfig.from_dict(cfg.to_dict()) == cfg


def test_layers_are_sorted_and_deduplicated_and_negative_ones_refused():
    assert al.AdapterConfig(layers=(3, 1, 3)).layers == [1, 3]
    with pytest.raises(AdapterConfigError, match="-1"):
        al.AdapterConfig(layers=[0, -1])


@pytest.mark.parametrize("fields, key", [
    (dict(nonlinearity="sigmoid"), "sigmoid"),                   # an adapter method's nonlinearity
    (dict(method="pfeiffer", nonlinearity="softmax"), "softmax"),
    (dict(train_layernorm="yes"), "train-layernorm"),            # a switch given as a string
    (dict(method="pfeiffer", train_layernorm=1), "train-layernorm"),
    (dict(method="top_k"), "--top-k"),                           # method top_k (not policy top_k) without k
])
def test_train_config_refuses(fields, key):
    with pytest.raises(TrainConfigError) as info:
        al.TrainConfig(**fields)
    assert key in str(info.value) and "\n" not in str(info.value)


def test_method_top_k_with_k_is_policy_top_k():
    cfg = al.TrainConfig(method="top_k", top_k=2)
    assert (cfg.policy, cfg.method, cfg.top_k) == ("top_k", "top_k", 2)


@pytest.mark.parametrize("fields", [
    dict(adapter_size=4), dict(adapter_size=4, train_layernorm=False), dict(method="pfeiffer", adapter_size=4),
    dict(method="pfeiffer", adapter_size=4, train_layernorm=True), dict(method="full"), dict(method="layernorm"),
    dict(method="bitfit"), dict(method="head"), dict(method="top_k", top_k=1),
])
def test_trains_layernorm_says_whether_add_method_trains_every_layernorm(make_tiny, fields):
    """The property (no caller in adapterlib itself) agrees with what the method's trainable set really is."""
    from adapterlib.methods import add_method
    cfg = al.TrainConfig(**fields)
    model = add_method(make_tiny(), cfg)
    groups = al.param_groups(model)
    norms = [p.requires_grad for n, p in model.named_parameters() if groups[n] == "layernorm"]
    assert norms and cfg.trains_layernorm == all(norms)
