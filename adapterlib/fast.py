"""Faster CPU training that computes what the straightforward path computes.

Profiling an adapter training step (MiniLM, batch 32 x 128, 2 threads; benchmarks/README.md)
shows a fifth of the time in `aten::bernoulli_`: PyTorch's CPU dropout draws one 64-bit
Mersenne-Twister number per element, serially, for every hidden-state mask and for the much
larger (B, H, T, T) attention-probability masks. Training attention runs SDPA's "math" kernel
(the only CPU kernel with dropout), which also spends passes on `_safe_softmax`.

`speed_up(model)` changes two things, both in place and undone by `slow_down(model)`:

1. Dropout masks come from 8 random bits per element instead of 64 (`keep_mask`). The keep
   probability is the same number torch's own `bernoulli_(1 - p)` uses, bit for bit (see
   `keep_mask`); only the random stream differs. Given a mask, every `nn.Dropout` output and
   gradient is bitwise the one torch computes from that mask (`x * noise`,
   `noise = mask / (1 - p)` in the input dtype); the mask is saved as 1 byte, not 4.
2. Attention with dropout (`exact_sdpa_attention`) is SDPA's math kernel op for op, with the
   cheaper mask and the 1/(1 - p) scale applied to the values, as that kernel does when it is
   handed a mask; plain softmax replaces `_safe_softmax` when no row is fully masked (then the
   two are identical). Evaluation and dropout-free calls go to transformers' SDPA unchanged.

Nothing else changes: weights, parameter names, `print(model)` (apart from the dropout class
name), state_dict and checkpoints are those of the unmodified model.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

ATTENTION = "adapterlib_exact_sdpa"  # name under which exact_sdpa_attention is registered
_WORD_BITS = 64
_HI_BITS = 8                         # random bits drawn for every element
_LO_BITS = 53 - _HI_BITS             # drawn only for the ~1/256 elements that tie on the first 8


def _threshold(p: float) -> int:
    """K such that torch's CPU `bernoulli_(1 - p)` keeps an element with probability K / 2**53.

    ATen draws one 64-bit number per element, keeps its low 53 bits as an integer k and keeps
    the element iff k / 2**53 < 1 - p, i.e. iff k < ceil((1 - p) * 2**53). (Checked against
    torch in tests/test_fast.py.) For p = 0.1 that is exactly the double nearest to 0.9.
    """
    return math.ceil((1.0 - p) * 2.0 ** 53)


def _random_words(n: int, generator=None, device=None) -> torch.Tensor:
    """n uniform 64-bit words from torch's generator (so `torch.manual_seed` makes masks reproducible)."""
    return torch.empty(n, dtype=torch.int64, device=device).random_(-2 ** 63, None, generator=generator)


def keep_mask(shape, p: float, generator=None, device=None) -> torch.Tensor:
    """Bernoulli(1 - p) keep mask (uint8 0/1) with torch's exact keep probability K / 2**53.

    Each element gets a uniform 53-bit integer k = (hi << 45) + lo and is kept iff k < K, like
    torch. Only hi (8 bits) is drawn for every element: hi < K >> 45 keeps, hi > K >> 45 drops,
    and only on a tie (probability 1/256) are the 45 low bits drawn and compared with K's. The
    decision is the same function of k as torch's, so the probability is identical, while 8
    instead of 64 random bits per element makes masks several times cheaper.
    """
    n = math.prod(shape)
    k = _threshold(p)
    k_hi, k_lo = k >> _LO_BITS, k & ((1 << _LO_BITS) - 1)
    hi = _random_words((n + 7) // 8, generator, device).view(torch.uint8)[:n]  # 8 uniform bytes per word
    keep = hi < k_hi
    ties = (hi == k_hi).nonzero().squeeze(1)
    if len(ties) and k_lo:
        lo = _random_words(len(ties), generator, device) & ((1 << _LO_BITS) - 1)
        keep[ties] = lo < k_lo
    return keep.view(shape).view(torch.uint8)


def _scale(p: float, dtype: torch.dtype) -> float:
    """torch's dropout scale 1 / (1 - p), rounded as ATen rounds it: `noise.div_(1 - p)` in `dtype`."""
    return float(torch.ones((), dtype=dtype).div_(1.0 - p))


class ExactDropout(nn.Dropout):
    """nn.Dropout with cheaper masks (`keep_mask`); the same output and gradient given the mask.

    torch computes `x * noise` with `noise = bernoulli(1 - p) / (1 - p)`; here
    `x.mul(mask).mul_(scale)` gives the same bits ((x * 1) * s = x * s, (x * 0) * s = x * 0) and
    autograd saves the 1-byte mask instead of the 4-byte noise.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.inplace or not 0.0 < self.p < 1.0 or x.numel() == 0:
            return super().forward(x)
        return x.mul(keep_mask(x.shape, self.p, device=x.device)).mul_(_scale(self.p, x.dtype))


class _DroppedAttention(torch.autograd.Function):
    """out = (probs * keep) @ value, saving the 1-byte mask instead of the dropped probabilities.

    Autograd would keep `probs * keep` (4 bytes per attention weight) for the value gradient;
    here it is recomputed in backward from `probs`, which softmax keeps anyway. Forward and
    the probability gradient are bitwise autograd's; the value gradient multiplies the same
    numbers (BLAS may order the sum differently).
    """

    @staticmethod
    def forward(ctx, probs, keep, value):  # (B, H, T, S), (B, H, T, S) uint8, (B, H, S, dh)
        ctx.save_for_backward(probs, keep, value)
        return torch.matmul(probs.mul(keep), value)

    @staticmethod
    def backward(ctx, grad):
        probs, keep, value = ctx.saved_tensors
        grad_probs = grad_value = None
        if ctx.needs_input_grad[0]:
            grad_probs = torch.matmul(grad, value.transpose(-2, -1)).mul_(keep)
        if ctx.needs_input_grad[2]:
            grad_value = torch.matmul(probs.mul(keep).transpose(-2, -1), grad)
        return grad_probs, None, grad_value


def exact_sdpa_attention(module, query, key, value, attention_mask, dropout: float = 0.0,
                         scaling: float | None = None, is_causal: bool | None = None, **kwargs):
    """transformers attention function: SDPA's math kernel with `keep_mask` dropout.

    Inputs (B, H, T, dh); returns ((B, T, H, dh), None) like transformers' "sdpa". Without dropout,
    or for anything but plain encoder self-attention, it calls transformers' SDPA unchanged.
    """
    plain = (kwargs.get("position_bias") is None and kwargs.get("softcap") is None
             and getattr(module, "num_key_value_groups", 1) == 1 and query.shape == key.shape == value.shape)
    if dropout == 0.0 or not plain or (attention_mask is None and is_causal):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, is_causal=is_causal, **kwargs)
    # As ATen's _scaled_dot_product_attention_math: q and k each scaled by sqrt(scale).
    root = math.sqrt(scaling if scaling is not None else query.size(-1) ** -0.5)
    scores = torch.matmul(query * root, key.transpose(-2, -1) * root)  # (B, H, T, T)
    softmax = torch.softmax
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:  # True = attend; ATen adds 0 / -inf
            scores = scores.masked_fill_(~attention_mask, float("-inf"))
            if not bool(attention_mask.any(-1).all()):
                softmax = torch.ops.aten._safe_softmax  # fully masked rows give 0, not NaN, as in ATen
        else:
            scores = scores.add_(attention_mask)
            softmax = torch.ops.aten._safe_softmax
    probs = softmax(scores, -1)
    keep = keep_mask(probs.shape, dropout, device=probs.device)
    out = _DroppedAttention.apply(probs, keep, value * (1.0 / (1.0 - dropout)))  # (B, H, T, dh)
    return out.transpose(1, 2).contiguous(), None


AttentionInterface.register(ATTENTION, exact_sdpa_attention)
AttentionMaskInterface.register(ATTENTION, sdpa_mask)


def speed_up(model: nn.Module, dropout: bool = True, attention: bool = True) -> nn.Module:
    """Switch `model` (in place) to ExactDropout and, if it uses SDPA, to exact_sdpa_attention.

    dropout / attention: apply only one of the two changes (the benchmark measures each).
    """
    if dropout:
        for module in model.modules():
            if type(module) is nn.Dropout:
                module.__class__ = ExactDropout
    if attention and getattr(getattr(model, "config", None), "_attn_implementation", None) == "sdpa":
        model.set_attn_implementation(ATTENTION)
    return model


def slow_down(model: nn.Module) -> nn.Module:
    """Undo `speed_up` (in place)."""
    for module in model.modules():
        if type(module) is ExactDropout:
            module.__class__ = nn.Dropout
    if getattr(getattr(model, "config", None), "_attn_implementation", None) == ATTENTION:
        model.set_attn_implementation("sdpa")
    return model
