"""Notebook 02's exercises: the paper's trained set (check_trainable) and one training step (check_train_step)."""
from __future__ import annotations

import copy
import math
import warnings

import torch
from torch import nn

from ...config import AdapterConfig
from ...inject import adapter_slots, add_adapters
from ...policies import param_groups, set_trainable
from ._common import _report

# ---------------------------------------------------------------------------------------------
# Exercise 3 (notebook 02): the trainable set, adapters + every LayerNorm + the head
# ---------------------------------------------------------------------------------------------

def _names(names: set[str], k: int = 2) -> str:
    shown = ", ".join(f"`{n}`" for n in sorted(names)[:k])
    return shown + (f" and {len(names) - k} more" if len(names) > k else "")


def _trainable_diff(want: set[str], got: set[str], groups: dict[str, str]) -> list[str]:
    """What the student's trainable set misses or adds, named by parameter group."""
    missing, extra = want - got, got - want
    by = lambda names, *kinds: {n for n in names if groups[n] in kinds}  # noqa: E731
    emb_ln = {n for n in groups if groups[n] == "layernorm" and "embeddings" in n}
    problems = []
    if by(missing, "adapter"):
        part = by(missing, "adapter")
        whole = part == {n for n in groups if groups[n] == "adapter"}
        frozen = "the adapters are frozen" if whole else f"{len(part)} adapter tensors are frozen ({_names(part)})"
        problems.append(frozen + ": they are what a new task trains")
    if missing & emb_ln:
        problems.append(f"the embedding LayerNorm is frozen ({_names(missing & emb_ln)}): the paper trains every "
                        f"LayerNorm, the embeddings' included")
    if by(missing, "layernorm") - emb_ln:
        part = by(missing, "layernorm") - emb_ln
        problems.append(f"{len(part)} LayerNorm tensors of the transformer layers are frozen ({_names(part)}): "
                        f"the paper trains every LayerNorm")
    if by(missing, "head"):
        problems.append(f"the classifier head is frozen ({_names(by(missing, 'head'))}): the new task's head "
                        f"starts random and must train")
    if by(extra, "pooler"):
        problems.append(f"the pooler is trained ({_names(by(extra, 'pooler'))}): adapter-bert keeps it frozen; "
                        f"the trained set is adapters, LayerNorms and the head")
    pretrained = by(extra, "other", "embedding")
    if pretrained:
        everything = pretrained == {n for n in groups if groups[n] in ("other", "embedding")}
        problems.append((f"nothing pre-trained is frozen ({len(pretrained)} tensors, e.g. {_names(pretrained, 1)}): "
                         f"freeze every parameter first (requires_grad_(False)), then unfreeze the trained set"
                         if everything else f"{len(pretrained)} pre-trained tensors are trained "
                         f"({_names(pretrained)}): only adapters, LayerNorms and the head train"))
    return problems


def _trainable_problem(select, model: nn.Module, m: int) -> tuple[str | None, str]:
    name = getattr(select, "__name__", "the selection")
    ref = copy.deepcopy(model)
    if not adapter_slots(ref):
        add_adapters(ref, AdapterConfig(size=m))
    ref.requires_grad_(True)  # as a freshly loaded model: everything trainable
    mine = copy.deepcopy(ref)
    set_trainable(ref, "adapter")
    try:
        returned = select(mine)
    except Exception as e:  # noqa: BLE001 - the student's code may raise anything; say what
        return f"{name}(model) raised {type(e).__name__}: {e}", ""
    if isinstance(returned, nn.Module) and returned is not mine:
        return f"{name} returned another model: change requires_grad of the model it is given, in place", ""
    groups = param_groups(ref)
    want = {n for n, p in ref.named_parameters() if p.requires_grad}
    got = {n for n, p in mine.named_parameters() if p.requires_grad}
    problems = _trainable_diff(want, got, groups)
    if problems:
        return "; ".join(problems), ""
    count = lambda kind: sum(p.numel() for n, p in ref.named_parameters() if groups[n] == kind)  # noqa: E731
    total = sum(p.numel() for p in ref.parameters())
    trained = sum(p.numel() for n, p in ref.named_parameters() if n in want)
    return None, (f"{name} is right: {trained:,} of {total:,} parameters train ({100 * trained / total:.2f}%): "
                  f"{count('adapter'):,} adapter, {count('layernorm'):,} LayerNorm (the embeddings' included) and "
                  f"{count('head'):,} head parameters; the pooler and every other pre-trained weight frozen, "
                  f"the same set as set_trainable(model, \"adapter\")")


def check_trainable(select_trainable, model: nn.Module, m: int = 64) -> None:
    """Check `select_trainable(model)`, which should set requires_grad to the paper's trained set, in place.

    It runs on a copy of `model` with adapters (size `m` added when `model` has none) on which every
    parameter starts trainable, as on a freshly loaded model; the trainable parameter names are compared
    with `adapterlib.set_trainable(model, "adapter")`: adapters, every LayerNorm (the embedding
    LayerNorm included), the classifier head; the pooler and the rest of the base frozen.
    """
    with torch.random.fork_rng():
        torch.manual_seed(0)
        problem, facts = _trainable_problem(select_trainable, model, m)
    _report(problem, facts)


# ---------------------------------------------------------------------------------------------
# Exercise 4 (notebook 02): one training step
# ---------------------------------------------------------------------------------------------

_STEP_MISTAKES = {
    "no_clip": "the gradients are not clipped: call torch.nn.utils.clip_grad_norm_(trainable parameters, "
               "max_grad_norm) after backward() and before optimizer.step()",
    "clip_1": "the gradients are clipped at 1.0, not at the max_grad_norm the step is given",
    "clip_value": "each gradient entry is clipped (clip_grad_value_); clip the global norm of all gradients "
                  "together (clip_grad_norm_)",
    "no_zero": "the gradients are never reset, so the second step uses the sum of both batches' gradients: call "
               "optimizer.zero_grad() after the step (or before the backward)",
    "sched_first": "scheduler.step() runs before optimizer.step(), so every step uses the next step's learning "
                   "rate: step the optimizer first",
    "clip_before_backward": "the gradients are clipped before backward() computes them: clip between backward() "
                            "and optimizer.step()",
    "eval_mode": "the step runs the model in eval mode, so dropout is off while it trains: leave the model in "
                 "train mode (model.train()), eval mode is for scoring",
}


def _tiny_trainee(seed: int = 0) -> nn.Module:
    """A seeded tiny BERT classifier (hidden 32, 2 layers, dropout 0.1) with adapters and the paper's trained set.
    Dropout is on, as in training: a step that switches the model to eval mode changes the result."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    config = BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                        vocab_size=128, max_position_embeddings=64, hidden_dropout_prob=0.1,
                        attention_probs_dropout_prob=0.1, num_labels=2, initializer_range=0.2)
    model = add_adapters(BertForSequenceClassification(config), AdapterConfig(size=8, init_std=0.1))
    return set_trainable(model, "adapter").train()


def _step_batches(n: int = 2) -> list[dict]:
    g = torch.Generator().manual_seed(1)
    batches = []
    for _ in range(n):
        ids = torch.randint(5, 128, (4, 10), generator=g)
        batches.append(dict(input_ids=ids, attention_mask=torch.ones_like(ids),
                            labels=torch.randint(0, 2, (4,), generator=g)))
    return batches


def _step_setup(base: nn.Module):
    """A copy of `base` with plain SGD over all its parameters (frozen ones get no gradient, so SGD skips them)
    and a schedule that halves the learning rate each step. SGD, not Adam: Adam's update hardly changes when
    all gradients are scaled together, which would hide a missing clip."""
    model = copy.deepcopy(base).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 ** step)
    return model, optimizer, scheduler


def _reference_step(model, batch, optimizer, scheduler, max_grad_norm, mistake=None) -> float:
    """adapterlib.train's step (without accelerate), or one of the usual mistakes."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    model.train(mistake != "eval_mode")
    if mistake == "clip_before_backward":
        torch.nn.utils.clip_grad_norm_(trainable, max_grad_norm)
    loss = model(**batch).loss
    loss.backward()
    if mistake == "clip_value":
        torch.nn.utils.clip_grad_value_(trainable, max_grad_norm)
    elif mistake == "clip_1":
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
    elif mistake not in ("no_clip", "clip_before_backward"):
        torch.nn.utils.clip_grad_norm_(trainable, max_grad_norm)
    if mistake == "sched_first":
        scheduler.step()
    optimizer.step()
    if mistake != "sched_first":
        scheduler.step()
    if mistake != "no_zero":
        optimizer.zero_grad(set_to_none=True)
    return loss.item()


def _clip_threshold(base: nn.Module, batches) -> float:
    """A max_grad_norm at which clipping acts on every batch, whether by global norm or (a mistake) per entry."""
    model = copy.deepcopy(base)
    limits = []
    for batch in batches:
        model.zero_grad()
        model(**batch).loss.backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        limits += [torch.nn.utils.get_total_norm(grads).item() / 4, max(g.abs().max().item() for g in grads) / 2]
    return min(limits)


def _run_steps(step, base, batches, max_grad_norm, **kw):
    """(model, scheduler, returned values, optimizer steps, backward passes) after one call per batch."""

    model, optimizer, scheduler = _step_setup(base)
    counts = {"steps": 0, "backward": 0}
    optimizer.register_step_post_hook(lambda *_: counts.__setitem__("steps", counts["steps"] + 1))
    probe = next(p for p in model.parameters() if p.requires_grad)
    probe.register_post_accumulate_grad_hook(lambda _p: counts.__setitem__("backward", counts["backward"] + 1))
    returned = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns about scheduler-before-optimizer: the check says it itself
        for i, batch in enumerate(batches):
            torch.manual_seed(2 + i)  # each call draws the same dropout masks for every step function
            returned.append(step(model, dict(batch), optimizer, scheduler, max_grad_norm, **kw))
    return model, scheduler, returned, counts["steps"], counts["backward"]


def _same_params(a: nn.Module, b: nn.Module, names=None) -> bool:
    pb = dict(b.named_parameters())
    return all(torch.allclose(p, pb[n], rtol=1e-5, atol=1e-7) for n, p in a.named_parameters()
               if names is None or n in names)


def _train_step_problem(step) -> tuple[str | None, str]:
    name = getattr(step, "__name__", "the step")
    base, batches = _tiny_trainee(), _step_batches()
    max_norm = _clip_threshold(base, batches)  # well below the gradient norm (which is above 1), so clipping acts
    want, want_sched, want_losses, _, _ = _run_steps(_reference_step, base, batches, max_norm)
    try:
        mine, sched, returned, steps, backward = _run_steps(step, base, batches, max_norm)
    except Exception as e:  # noqa: BLE001 - the student's code may raise anything; say what
        return f"{name}(model, batch, optimizer, scheduler, max_grad_norm) raised {type(e).__name__}: {e}", ""
    calls = len(batches)
    if backward == 0:
        return "no gradient is computed: call loss.backward() on the loss of model(**batch)", ""
    if steps == 0:
        return "optimizer.step() is never called, so the parameters never change", ""
    if steps != calls or backward != calls:
        return (f"{calls} calls ran optimizer.step() {steps} times and backward() {backward} times: one of each "
                f"per call"), ""
    if not mine.training:
        return _STEP_MISTAKES["eval_mode"], ""
    frozen = {n for n, p in base.named_parameters() if not p.requires_grad}
    if not _same_params(mine, base, frozen):
        moved = {n for n, p in mine.named_parameters() if n in frozen and not torch.equal(p, base.get_parameter(n))}
        return f"frozen weights changed ({_names(moved)}): the step must leave requires_grad as it is", ""
    if not _same_params(mine, want):
        for mistake, why in _STEP_MISTAKES.items():
            other = _run_steps(lambda *a, mistake=mistake: _reference_step(*a, mistake=mistake), base, batches,
                               max_norm)[0]
            if not _same_params(other, want) and _same_params(mine, other):
                return why, ""
        if sched.last_epoch != want_sched.last_epoch:
            return (f"scheduler.step() ran {sched.last_epoch} times in {calls} calls: step the schedule once per "
                    f"call, after optimizer.step()"), ""
        diff = max((p - want.get_parameter(n)).abs().max().item() for n, p in mine.named_parameters())
        return (f"after {calls} steps the parameters differ from the reference step's (max |diff| {diff:.2e}): "
                f"forward, loss.backward(), clip_grad_norm_, optimizer.step(), scheduler.step(), zero_grad()"), ""
    if sched.last_epoch != want_sched.last_epoch:
        return f"scheduler.step() ran {sched.last_epoch} times in {calls} calls: once per call", ""
    if not all(isinstance(r, float) for r in returned):
        kind = type(next(r for r in returned if not isinstance(r, float))).__name__
        return f"{name} returns a {kind}: return the loss as a Python float (loss.item())", ""
    if not all(math.isclose(r, w, rel_tol=1e-5) for r, w in zip(returned, want_losses, strict=True)):
        return (f"{name} returned {', '.join(f'{r:.4f}' for r in returned)}; the batches' losses before each step are "
                f"{', '.join(f'{w:.4f}' for w in want_losses)}"), ""
    return None, (f"{name} is right: {calls} steps on a tiny BERT with adapters give the reference parameters "
                  f"(forward, backward, global-norm clipping at max_grad_norm, optimizer and scheduler step, gradients "
                  f"reset); frozen weights unchanged; the loss is returned as a float")


def check_train_step(train_step) -> None:
    """Check `train_step(model, batch, optimizer, scheduler, max_grad_norm)` against adapterlib.train's step.

    It is called once on each of two seeded batches (dicts with input_ids, attention_mask, labels) of a
    tiny seeded BERT with adapters (the paper's trained set), with plain SGD over all parameters, a
    learning rate that halves every step, and a max_grad_norm below the gradients' norm; the parameters
    after both calls must equal the reference's, frozen ones unchanged, and the returned values be the
    losses (floats) before each step. The usual mistakes are named: no clipping, per-entry clipping,
    gradients never reset (they accumulate over the two calls), scheduler before the optimizer, ...
    The global random state is left as it was.
    """
    with torch.random.fork_rng():
        torch.manual_seed(0)
        problem, facts = _train_step_problem(train_step)
    _report(problem, facts)
