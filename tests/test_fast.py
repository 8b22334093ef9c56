"""adapterlib.fast computes what the straightforward path computes (tiny models, no network).

The contract: masks have torch's exact keep probability; given the same masks, logits and
gradients equal those of unmodified transformers code up to floating-point reordering (and
bitwise where the code claims so); evaluation is untouched.
"""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from adapterlib import AdapterConfig, add_adapters, fast, set_trainable


def test_threshold_is_torchs_bernoulli_rule():
    """torch's CPU bernoulli_(q) keeps iff (64-bit draw & (2**53 - 1)) < K: the rule keep_mask reproduces."""
    for p in (0.1, 0.5, 0.3, 0.9, 1e-3):
        for seed in range(2):
            torch.manual_seed(seed)
            stock = torch.empty(20_000).bernoulli_(1 - p)
            torch.manual_seed(seed)
            words = torch.empty(20_000, dtype=torch.int64).random_(-2 ** 63, None)
            assert torch.equal(stock, ((words & (2 ** 53 - 1)) < fast._threshold(p)).float())
    assert fast._threshold(0.1) / 2 ** 53 == 1 - 0.1  # p = 0.1: exactly the double 0.9


def test_keep_mask_decides_exactly_k_below_threshold(monkeypatch):
    """Elements decided on the first 8 bits and on ties (next 45 bits) agree with k < K."""
    p = 0.1
    k = fast._threshold(p)
    hi, lo = k >> 45, k & ((1 << 45) - 1)
    first = torch.tensor([hi - 1, hi + 1, hi, hi, hi, 0, 255, hi], dtype=torch.uint8)
    ties = torch.tensor([lo - 1, lo, lo + 1, 0], dtype=torch.int64)  # for positions 2, 3, 4, 7
    draws = iter([first.clone().view(torch.int64), ties | (7 << 50)])  # high bits beyond 45 must be ignored
    monkeypatch.setattr(fast, "_random_words", lambda n, generator=None, device=None: next(draws))
    got = fast.keep_mask((8,), p).tolist()
    low = {2: lo - 1, 3: lo, 4: lo + 1, 7: 0}  # the 45 low bits each tie drew
    composed = [(int(b) << 45) + low.get(i, 0) for i, b in enumerate(first.tolist())]
    assert got == [int(c < k) for c in composed] == [1, 0, 1, 0, 0, 1, 0, 1]


@pytest.mark.parametrize("p", [0.1, 0.5, 0.25])
def test_keep_mask_rate_and_reproducibility(p):
    torch.manual_seed(0)
    a = fast.keep_mask((1000, 1000), p)
    torch.manual_seed(0)
    b = fast.keep_mask((1000, 1000), p)
    assert a.dtype == torch.uint8 and a.shape == (1000, 1000) and torch.equal(a, b)
    n = a.numel()
    assert abs(a.double().mean().item() - (1 - p)) < 5 * math.sqrt(p * (1 - p) / n)
    g = torch.Generator().manual_seed(1)
    assert not torch.equal(fast.keep_mask((1000, 1000), p, generator=g), a)


def _fixed_mask(monkeypatch, masks: list):
    """Make keep_mask hand out `masks` (recording them) or record freshly drawn ones."""
    real = fast.keep_mask

    def keep_mask(shape, p, generator=None, device=None):
        m = real(shape, p, generator, device)
        masks.append(m)
        return m
    monkeypatch.setattr(fast, "keep_mask", keep_mask)


def test_exact_dropout_is_bitwise_torchs_given_the_mask(monkeypatch):
    masks = []
    _fixed_mask(monkeypatch, masks)
    drop = fast.ExactDropout(0.1).train()
    x = torch.randn(64, 33, requires_grad=True)
    y = drop(x)
    noise = masks[0].float().div_(1 - 0.1)  # what ATen's _dropout_impl multiplies by
    x2 = x.detach().clone().requires_grad_()
    ref = x2 * noise
    assert torch.equal(y, ref)
    g = torch.randn_like(y)
    y.backward(g), ref.backward(g)
    assert torch.equal(x.grad, x2.grad)
    assert drop.eval()(x) is x  # evaluation: the input itself, like nn.Dropout


def _math_attention(q, k, v, mask, p, keep, scale):
    float_mask = None if mask is None else torch.zeros(mask.shape).masked_fill(~mask, -math.inf)
    return torch.ops.aten._scaled_dot_product_attention_math(
        q, k, v, float_mask, p, False, None if keep is None else keep.bool(), scale=scale)[0].transpose(1, 2)


@pytest.mark.filterwarnings("ignore:Dropout mask")
@pytest.mark.parametrize("fully_masked_row", [False, True])
def test_attention_is_atens_math_kernel_given_the_mask(monkeypatch, fully_masked_row):
    masks = []
    _fixed_mask(monkeypatch, masks)
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 6, 4, requires_grad=True) for _ in range(3))
    mask = torch.ones(2, 1, 6, 6, dtype=torch.bool)
    mask[0, ..., 4:] = False  # padding
    if fully_masked_row:
        mask[1, 0, 2] = False  # a query that may attend to nothing: ATen's _safe_softmax gives 0
    module = nn.Module().train()
    out, _ = fast.exact_sdpa_attention(module, q, k, v, mask, dropout=0.1, scaling=0.5)
    ref = _math_attention(q, k, v, mask, 0.1, masks[0], 0.5)
    assert torch.equal(out, ref) and torch.isfinite(out).all()
    g = torch.randn_like(out)
    for a, b in zip(torch.autograd.grad(out, (q, k, v), g), torch.autograd.grad(ref, (q, k, v), g), strict=True):
        assert torch.equal(a, b)


def test_attention_without_dropout_is_transformers_sdpa():
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 6, 4) for _ in range(3))
    module = nn.Module().eval()
    a, _ = fast.exact_sdpa_attention(module, q, k, v, None, dropout=0.0, scaling=0.5, is_causal=False)
    b, _ = sdpa_attention_forward(module, q, k, v, None, dropout=0.0, scaling=0.5, is_causal=False)
    assert torch.equal(a, b)


def _adapter_model(make_tiny, model_type="bert", attn="sdpa"):
    model = make_tiny(model_type, attn_implementation=attn)
    add_adapters(model, AdapterConfig(size=8, init_std=0.1))
    return set_trainable(model, "adapter")


def _loss_and_grads(model, batch):
    labels = torch.tensor([0, 1, 1])
    out = model(**batch, labels=labels)
    out.loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad(set_to_none=True)
    return out.logits.detach(), grads


def test_training_step_matches_the_straightforward_path(monkeypatch, make_tiny, tiny_batch):
    """Same masks replayed into unmodified transformers code (eager attention, nn.Dropout): same logits and grads."""
    torch.manual_seed(0)
    fast_model = fast.speed_up(_adapter_model(make_tiny).train())
    reference = _adapter_model(make_tiny, attn="eager").train()
    reference.load_state_dict(fast_model.state_dict())
    masks = []
    _fixed_mask(monkeypatch, masks)
    logits, grads = _loss_and_grads(fast_model, tiny_batch)
    replay = iter(masks)

    def dropout(x, p=0.5, training=True, inplace=False):  # ATen's rule, with the recorded mask
        return x * next(replay).to(x.dtype).div_(1 - p) if training and p > 0 else x
    monkeypatch.setattr(F, "dropout", dropout)
    ref_logits, ref_grads = _loss_and_grads(reference, tiny_batch)
    assert next(replay, None) is None and len(masks) == 1 + 3 * 2 + 1  # embeddings, 3 per layer, classifier
    torch.testing.assert_close(logits, ref_logits, rtol=1e-5, atol=1e-6)
    assert grads.keys() == ref_grads.keys()
    for name in grads:
        torch.testing.assert_close(grads[name], ref_grads[name], rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize("model_type", ["bert", "distilbert"])
def test_eval_untouched_and_slow_down_restores(make_tiny, tiny_batch, model_type):
    model = _adapter_model(make_tiny, model_type).eval()
    plain = _adapter_model(make_tiny, model_type).eval()
    plain.load_state_dict(model.state_dict())
    keys = list(model.state_dict())
    fast.speed_up(model)
    assert any(type(m) is fast.ExactDropout for m in model.modules())
    with torch.no_grad():
        assert torch.equal(model(**tiny_batch).logits, plain(**tiny_batch).logits)
    model.train()
    out = model(**tiny_batch, labels=torch.tensor([0, 1, 1]))
    out.loss.backward()
    assert torch.isfinite(out.loss)
    fast.slow_down(model)
    assert not any(type(m) is fast.ExactDropout for m in model.modules())
    assert model.config._attn_implementation == plain.config._attn_implementation
    assert list(model.state_dict()) == keys


def test_dropout_edge_cases_fall_back_to_torch():
    x = torch.randn(5, 7)
    assert torch.equal(fast.ExactDropout(1.0).train()(x), torch.zeros_like(x))
    assert fast.ExactDropout(0.0).train()(x) is x
    y = x.clone()
    assert fast.ExactDropout(0.5, inplace=True).train()(y) is y  # in-place dropout is left to torch


# ----------------------------------------------------------------------------- hardening (issue 16)

@pytest.mark.parametrize("p", [1e-17, 2.0 ** -54, 0.0])
def test_tiny_p_keeps_every_element_like_torch(p):
    """1 - p rounds to 1 for p < 2**-53: torch keeps everything, so must keep_mask (it used to drop everything)."""
    assert fast._threshold(p) == 2 ** 53
    assert bool(fast.keep_mask((1000,), p).all())
    x = torch.randn(64, 33)
    torch.manual_seed(0)
    assert torch.equal(fast.ExactDropout(p).train()(x), F.dropout(x, p, training=True))
    q, k, v = (torch.randn(2, 3, 6, 4) for _ in range(3))
    mask = torch.ones(2, 1, 6, 6, dtype=torch.bool)
    out, _ = fast.exact_sdpa_attention(nn.Module(), q, k, v, mask, dropout=p, scaling=0.5)
    torch.testing.assert_close(out, _math_attention(q, k, v, mask, 0.0, None, 0.5))


def test_just_above_2_to_the_minus_53_still_drops_at_its_rate():
    p = 2.0 ** -52  # the smallest p with 1 - p < 1: keep unless k is the top value
    assert fast._threshold(p) == 2 ** 53 - 2 and bool(fast.keep_mask((1000,), p).all())


def _fresh_check(monkeypatch):
    monkeypatch.setattr(fast, "_AVAILABLE", None)  # run the one-time check again; restored afterwards


def test_self_check_passes_and_leaves_the_random_stream_alone(monkeypatch):
    _fresh_check(monkeypatch)
    torch.manual_seed(0)
    expected = torch.rand(5)
    torch.manual_seed(0)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fast.available() == {"dropout": True, "attention": True, "problems": []}
    assert torch.equal(torch.rand(5), expected)


def _broken_safe_softmax(scores, dim):
    raise AttributeError("'_OpNamespace' 'aten' object has no attribute '_safe_softmax'")  # as on torch < 2.5


@pytest.mark.parametrize("broken", ["transformers moved sdpa_attention_forward", "torch without _safe_softmax",
                                    "a different Bernoulli rule"])
def test_speed_up_falls_back_to_stock_modules_with_one_warning(monkeypatch, make_tiny, broken):
    import sys
    import types
    import warnings
    _fresh_check(monkeypatch)
    if broken.startswith("transformers"):
        monkeypatch.setitem(sys.modules, "transformers.integrations.sdpa_attention", types.ModuleType("moved"))
    elif broken.startswith("torch"):
        monkeypatch.setattr(fast, "_safe_softmax", _broken_safe_softmax)
    else:
        monkeypatch.setattr(fast, "_threshold", lambda p: math.ceil((1.0 - p) * 2.0 ** 53) - 2 ** 40)
    attention_broken = not broken.startswith("a different")
    model = _adapter_model(make_tiny)
    with pytest.warns(RuntimeWarning, match="adapterlib.fast: left out") as caught:
        assert fast.speed_up(model) is model
    assert len(caught) == 1
    assert fast.active(model) == {"exact_dropout": attention_broken, "exact_attention": not attention_broken}
    assert model.config._attn_implementation == ("sdpa" if attention_broken else fast.ATTENTION)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per process, not once per model
        fast.speed_up(_adapter_model(make_tiny))
    model.train()(**_tiny_inputs(), labels=torch.tensor([0, 1, 1])).loss.backward()  # still trains


def _tiny_inputs():
    torch.manual_seed(1)
    return {"input_ids": torch.randint(5, 120, (3, 10)), "attention_mask": torch.ones(3, 10, dtype=torch.long)}


def test_speed_up_is_one_public_call_for_your_own_loop(make_tiny, tiny_batch):
    import adapterlib as al
    assert al.speed_up is fast.speed_up and al.slow_down is fast.slow_down and "speed_up" in al.__all__
    assert "al.speed_up(model)" in al.speed_up.__doc__
    model = _adapter_model(make_tiny).train()
    assert al.speed_up(model) is model
    assert fast.active(model) == {"exact_dropout": True, "exact_attention": True}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    for _ in range(2):  # a user's own loop, unchanged
        model(**tiny_batch, labels=torch.tensor([0, 1, 1])).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    al.slow_down(model)
    assert fast.active(model) == {"exact_dropout": False, "exact_attention": False}


class _Mallopt:
    """Records what malloc_tuned / tune_malloc set, instead of changing this test process."""

    def __init__(self, monkeypatch):
        self.calls, self.trims = [], 0
        monkeypatch.setattr(fast, "_set_malloc", lambda mmap, trim: self.calls.append((mmap, trim)) or True)
        monkeypatch.setattr(fast, "_malloc_trim", self._trim)
        monkeypatch.setattr(fast, "_TUNED", {"holders": 0, "forever": False})
        monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
        monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)

    def _trim(self):
        self.trims += 1


TUNED, DEFAULT = (32 << 20, 2 ** 31 - 1), (128 * 1024, 128 * 1024)


def test_malloc_tuned_restores_glibcs_settings(monkeypatch):
    m = _Mallopt(monkeypatch)
    with fast.malloc_tuned() as tuned:
        assert tuned and m.calls == [TUNED]
        with fast.malloc_tuned() as inner:  # nested: the outer block restores, once
            assert inner
        assert m.calls == [TUNED]
    assert m.calls == [TUNED, DEFAULT] and m.trims == 1
    with fast.malloc_tuned(False) as tuned:
        assert tuned is False
    assert m.calls == [TUNED, DEFAULT]
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")  # what glibc read at start-up
    with fast.malloc_tuned():
        pass
    assert m.calls[-1] == (65536, 128 * 1024)


def test_malloc_tuned_inside_tune_malloc_keeps_the_process_setting(monkeypatch):
    m = _Mallopt(monkeypatch)
    assert fast.tune_malloc()
    with fast.malloc_tuned() as tuned:
        assert tuned
    assert m.calls == [TUNED] and m.trims == 0


def test_malloc_tuned_on_this_machine():
    """The real call: glibc here (Linux CI) accepts both settings and the restore."""
    with fast.malloc_tuned() as tuned:
        assert tuned == (fast._mallopt() is not None)
    assert fast._TUNED["holders"] == 0


def test_train_records_what_ran_and_restores_malloc(monkeypatch, tiny_model_dir, tiny_glue_dir, tmp_path):
    import adapterlib as al
    monkeypatch.setenv("ADAPTERLIB_CACHE", str(tmp_path))
    m = _Mallopt(monkeypatch)
    cfg = al.TrainConfig(task="sst2", model=str(tiny_model_dir), glue_dir=str(tiny_glue_dir), adapter_size=4,
                         max_steps=2, batch_size=8, max_train_examples=32, max_eval_examples=16, max_length=32)
    run = al.train(cfg, progress=False)
    assert run["speedups"] == {"fast_modules": True, "malloc_tuned": True, "exact_dropout": True,
                               "exact_attention": True}
    assert m.calls == [TUNED, DEFAULT]  # tuned while training, glibc's settings back afterwards
    stock = al.train(cfg, progress=False, fast=False)
    assert stock["speedups"] == {"fast_modules": False, "malloc_tuned": False, "exact_dropout": False,
                                 "exact_attention": False}
    assert m.calls == [TUNED, DEFAULT]


def test_adapter_bank_fast_false_really_runs_stock(monkeypatch, make_tiny, tiny_model_dir, tiny_glue_dir, tmp_path):
    """train_task(fast=False) after a fast task undoes the speed-up, and its record says so."""
    from transformers import AutoTokenizer

    import adapterlib as al
    from adapterlib.studies import multitask
    monkeypatch.setenv("ADAPTERLIB_CACHE", str(tmp_path))
    _Mallopt(monkeypatch)
    model = _adapter_model(make_tiny, attn="sdpa")
    model.resize_token_embeddings(len(AutoTokenizer.from_pretrained(tiny_model_dir)))
    bank = multitask.AdapterBank(model)
    seen = []
    real_fit = multitask.fit

    def fit(model, *args, **kwargs):  # what the training loop ran with
        seen.append(fast.active(model))
        return real_fit(model, *args, **kwargs)
    monkeypatch.setattr(multitask, "fit", fit)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    cfg = al.TrainConfig(task="sst2", glue_dir=str(tiny_glue_dir), adapter_size=4, max_steps=2, batch_size=8,
                         max_train_examples=32, max_eval_examples=16)
    fast_rec = bank.train_task(cfg, tokenizer, tmp_path / "a")
    stock_rec = bank.train_task(cfg, tokenizer, tmp_path / "b", fast=False)
    on, off = {"exact_dropout": True, "exact_attention": True}, {"exact_dropout": False, "exact_attention": False}
    assert seen == [on, off] and fast.active(model) == off
    assert fast_rec["speedups"] == {"fast_modules": True, "malloc_tuned": True, **on}
    assert stock_rec["speedups"] == {"fast_modules": False, "malloc_tuned": False, **off}
