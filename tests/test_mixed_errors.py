"""Mixed-task inference (adapterlib.studies.mixed): from an AdapterBank, left padding, and what it refuses."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import adapterlib as al
from adapterlib.checkpoint import trainable_groups
from adapterlib.errors import UsageError
from adapterlib.methods import add_method
from adapterlib.studies.mixed import MixedTaskModel, RoutedModule, Router, mixed_throughput, task_groups
from adapterlib.studies.multitask import AdapterBank, task_logits


def _cfg(method="houlsby"):
    return al.TrainConfig(task="rte", method=method, max_length=32,
                          **({"adapter_size": 4} if method in ("houlsby", "pfeiffer") else {}))


def _checkpoint(make_tiny, folder, seed, method="houlsby", groups=None):
    """A task checkpoint of `method` with its own (random) trained values."""
    model = add_method(make_tiny(), _cfg(method))
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.2)
    return al.save_adapter(model, folder, groups=groups or trainable_groups(model), only_trainable=True)


def _batch(lengths, left=False):
    width = max(lengths)
    ids = torch.randint(5, 120, (len(lengths), width), generator=torch.Generator().manual_seed(0))
    mask = torch.zeros_like(ids)
    for i, n in enumerate(lengths):
        if left:
            mask[i, width - n:] = 1
        else:
            mask[i, :n] = 1
    return {"input_ids": ids * mask, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}


@pytest.fixture
def two_tasks(make_tiny, tmp_path):
    return {"a": _checkpoint(make_tiny, tmp_path / "a", 1), "b": _checkpoint(make_tiny, tmp_path / "b", 2)}


def test_from_bank_serves_every_task_and_leaves_the_bank_as_it_was(make_tiny, two_tasks):
    bank = AdapterBank(add_method(make_tiny(), _cfg()))
    for task, path in two_tasks.items():
        bank.add(task, path)
    mixed = MixedTaskModel.from_bank(bank)
    batch, tasks = _batch([5, 7, 4, 6]), ["b", "a", "a", "b"]
    got = mixed(batch, tasks)
    for task, group in task_groups(batch, tasks):   # per task: the bank's model with its checkpoint, its own rows
        want = task_logits(bank.activate(task), group["inputs"])
        assert all(torch.equal(got[i], want[row]) for row, i in enumerate(group["rows"]))
    assert not any(isinstance(m, RoutedModule) for m in bank.model.modules())   # the bank's model is not routed


def test_left_padding_keeps_every_column():
    batch = _batch([3, 5, 2], left=True)
    groups = dict(task_groups(batch, ["x", "y", "x"]))
    assert groups["x"]["rows"] == [0, 2] and groups["x"]["inputs"]["input_ids"].shape == (2, 5)
    right = dict(task_groups(_batch([3, 5, 2]), ["x", "y", "x"]))
    assert right["x"]["inputs"]["input_ids"].shape == (2, 3)   # right padding: cut to the group's longest


def test_a_routed_module_runs_only_inside_the_mixed_model():
    routed = RoutedModule({"a": nn.Linear(2, 2)}, Router())
    with pytest.raises(UsageError, match="no task is routed"):
        routed(torch.zeros(1, 2))
    assert routed.weight.shape == (2, 2)   # outside a forward, attributes are the first task's copy


def test_a_half_built_routed_module_answers_attribute_error():
    routed = RoutedModule.__new__(RoutedModule)
    nn.Module.__init__(routed)   # torch's Module is set up, the task copies are not yet
    assert not hasattr(routed, "weight")


def test_refusals(make_tiny, two_tasks, tmp_path):
    base = add_method(make_tiny(), _cfg())
    with pytest.raises(UsageError, match="at least one"):
        MixedTaskModel(base, {})
    for name in ("", "a.b"):
        with pytest.raises(UsageError, match="task names"):
            MixedTaskModel(base, {name: two_tasks["a"]})
    head_only = _checkpoint(make_tiny, tmp_path / "head", 3, groups=("head",))   # same base, fewer modules
    with pytest.raises(UsageError, match="'h'"):
        MixedTaskModel(base, {"a": two_tasks["a"], "h": head_only})
    mean_base = al.set_head_input(add_method(make_tiny(), _cfg()), "mean")
    with pytest.raises(UsageError, match="head input"):
        MixedTaskModel(mean_base, two_tasks)
    assert not any(isinstance(m, RoutedModule) for m in base.modules())   # nothing was routed by a refusal
    mixed = MixedTaskModel(base, two_tasks)
    with pytest.raises(UsageError, match="3 task names"):
        mixed(_batch([4, 4]), ["a", "b", "a"])
    with pytest.raises(UsageError, match="'b'"):
        mixed_throughput(mixed, {"a": base}, _batch([4, 4]), ["a", "b"], repeats=1)


def test_ia3_vectors_cannot_be_routed(make_tiny, tmp_path):
    paths = {t: _checkpoint(make_tiny, tmp_path / t, s, method="ia3") for t, s in (("a", 1), ("b", 2))}
    with pytest.raises(UsageError, match="parameter container"):
        MixedTaskModel(add_method(make_tiny(), _cfg("ia3")), paths)
