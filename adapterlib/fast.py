"""Faster CPU training that computes what the straightforward path computes.

Where an adapter training step of MiniLM goes (batch 32 x 128, 2 threads; benchmarks/README.md):
half in matrix multiplies, about a fifth in `aten::bernoulli_` (PyTorch's CPU dropout draws a
64-bit Mersenne-Twister number per element, serially, for every hidden-state mask and for the
much larger (B, H, T, T) attention-probability masks), and a large share in page faults.
Training attention runs SDPA's "math" kernel, the only CPU kernel with dropout.

`speed_up(model)` changes two things, in place (`slow_down(model)` undoes them):

1. Dropout masks come from 8 random bits per element instead of 64 (`keep_mask`). The keep
   probability is bit for bit the number torch's `bernoulli_(1 - p)` uses; only the random
   stream differs. Given a mask, `ExactDropout`'s output and gradient are bitwise torch's.
2. Attention with dropout (`exact_sdpa_attention`) computes what SDPA's math kernel computes
   when handed a dropout mask, keeping q, k, v and the 1-byte mask for backward and
   recomputing the probabilities there, instead of keeping two 4-byte copies of them.
   Evaluation, GPUs, autocast and dropout-free calls use transformers' SDPA unchanged.

Weights, parameter names, state_dict and checkpoints are untouched; `print(model)` shows
`ExactDropout` where it showed `Dropout`.

`tune_malloc()` (separate, process-wide) makes glibc keep freed memory for reuse instead of
returning it to the OS and page-faulting it back in on the next step.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

ATTENTION = "adapterlib_exact_sdpa"  # name under which exact_sdpa_attention is registered
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
    instead of 64 random bits per element make masks several times cheaper.
    """
    n = math.prod(shape)
    k = _threshold(p)
    k_hi, k_lo = k >> _LO_BITS, k & ((1 << _LO_BITS) - 1)
    words = _random_words((n + 7) // 8, generator, device)
    hi = words.view(torch.uint8)[:n]  # 8 uniform bytes per word
    ties = _positions_equal(words, n, k_hi)  # before hi is overwritten
    keep = hi.lt_(k_hi)  # in place: the random bytes become the mask, no second buffer
    if len(ties) and k_lo:
        lo = _random_words(len(ties), generator, device) & ((1 << _LO_BITS) - 1)
        keep[ties] = (lo < k_lo).to(torch.uint8)
    return keep.view(shape)


def _positions_equal(words: torch.Tensor, n: int, value: int) -> torch.Tensor:
    """Indices i < n whose byte i of `words` equals value; scans 64-bit words first (ties are rare)."""
    flags = words.view(torch.uint8).clone().eq_(value).view(torch.int64)  # in place: bool results are slower
    hit_words = flags.nonzero().squeeze(1)
    hit_bytes = flags[hit_words].view(torch.uint8).view(-1, 8).nonzero()
    positions = hit_words[hit_bytes[:, 0]] * 8 + hit_bytes[:, 1]
    return positions[positions < n]


def _scale(p: float, dtype: torch.dtype) -> float:
    """torch's dropout scale 1 / (1 - p), rounded as ATen rounds it: `noise.div_(1 - p)` in `dtype`."""
    return float(torch.ones((), dtype=dtype).div_(1.0 - p))


class ExactDropout(nn.Dropout):
    """nn.Dropout with cheaper masks (`keep_mask`); the same output and gradient given the mask.

    torch computes `x * noise` with `noise = bernoulli(1 - p) / (1 - p)`; here
    `x.mul(mask).mul_(scale)` gives the same bits ((x * 1) * s = x * s, (x * 0) * s = x * 0) and
    autograd saves the 1-byte mask instead of the 4-byte noise. Off the CPU it is nn.Dropout.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.inplace or not 0.0 < self.p < 1.0 or x.numel() == 0 or x.device.type != "cpu":
            return super().forward(x)
        return x.mul(keep_mask(x.shape, self.p, device=x.device)).mul_(_scale(self.p, x.dtype))


def _probabilities(q, k, blocked, additive, safe: bool) -> torch.Tensor:
    """softmax(q k^T + mask) exactly as ATen's math kernel computes it: (B, H, T, S)."""
    scores = torch.matmul(q, k.transpose(-2, -1))
    if blocked is not None:  # a boolean mask: ATen adds 0 where True and -inf where False
        scores.masked_fill_(blocked, float("-inf"))
    if additive is not None:
        scores.add_(additive)
    return torch.ops.aten._safe_softmax(scores, -1) if safe else torch.softmax(scores, -1)


def _scaled(x: torch.Tensor, factor: float) -> torch.Tensor:
    """x * factor written in one pass into a contiguous tensor (batched matmuls then need no copies)."""
    return torch.mul(x, factor, out=torch.empty(x.shape, dtype=x.dtype, device=x.device))


class _Attention(torch.autograd.Function):
    """dropout(softmax(q k^T + mask)) v, storing q, k, v and a 1-byte mask per attention weight.

    As ATen's math kernel: q and k are scaled by sqrt(scale) each, a boolean mask adds 0 / -inf,
    and a given dropout mask is applied as where(keep, P, 0) with 1 / (1 - p) folded into v.
    Autograd would store the probabilities and the dropped probabilities (4 bytes per weight
    each); here backward recomputes them from q and k with the same operations, so they are
    bitwise the forward's, and applies autograd's formulas (softmax backward, masked products);
    only the order of sums inside BLAS may differ.
    """

    @staticmethod
    def forward(ctx, query, key, value, keep, blocked, additive, safe, root, value_scale, store_probs):
        q, k, v = _scaled(query, root), _scaled(key, root), _scaled(value, value_scale)  # (B, H, T, dh)
        probs = _probabilities(q, k, blocked, additive, safe)
        ctx.safe, ctx.root, ctx.value_scale = safe, root, value_scale
        ctx.save_for_backward(q, k, v, keep, blocked, additive, probs if store_probs else None)
        return torch.matmul(torch.where(keep, probs, 0.0), v)

    @staticmethod
    def backward(ctx, grad):
        q, k, v, keep, blocked, additive, probs = ctx.saved_tensors
        grad = grad.contiguous()
        grad_probs = torch.where(keep, torch.matmul(grad, v.transpose(-2, -1)), 0.0)
        if probs is None:
            probs = _probabilities(q, k, blocked, additive, ctx.safe)
        grad_value = torch.matmul(torch.where(keep, probs, 0.0).transpose(-2, -1), grad).mul_(ctx.value_scale)
        grad_scores = torch._softmax_backward_data(grad_probs, probs, -1, probs.dtype)
        del grad_probs, probs
        grad_query = torch.matmul(grad_scores, k).mul_(ctx.root)
        grad_key = torch.matmul(grad_scores.transpose(-2, -1), q).mul_(ctx.root)
        return grad_query, grad_key, grad_value, None, None, None, None, None, None, None


def exact_sdpa_attention(module, query, key, value, attention_mask, dropout: float = 0.0,
                         scaling: float | None = None, is_causal: bool | None = None, **kwargs):
    """transformers attention function: SDPA's CPU math kernel with `keep_mask` dropout.

    Inputs (B, H, T, dh); returns ((B, T, H, dh), None) like transformers' "sdpa". Without
    dropout, off the CPU, under autocast, or for anything but plain self-attention, it calls
    transformers' SDPA unchanged.
    """
    plain = (kwargs.get("position_bias") is None and kwargs.get("softcap") is None
             and getattr(module, "num_key_value_groups", 1) == 1 and query.shape == key.shape == value.shape
             and query.device.type == "cpu" and not torch.is_autocast_enabled("cpu"))
    if dropout == 0.0 or not plain or (attention_mask is None and is_causal):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, is_causal=is_causal, **kwargs)
    blocked = additive = None
    safe = False  # plain softmax equals ATen's _safe_softmax unless a query row is fully masked
    if attention_mask is not None and attention_mask.dtype == torch.bool:
        blocked, safe = ~attention_mask, not bool(attention_mask.any(-1).all())
    elif attention_mask is not None:
        additive, safe = attention_mask, True
    keep = keep_mask(query.shape[:-1] + key.shape[-2:-1], dropout, device=query.device).view(torch.bool)
    root = math.sqrt(scaling if scaling is not None else query.size(-1) ** -0.5)  # ATen scales q and k by it
    out = _Attention.apply(query, key, value, keep, blocked, additive, safe, root, 1.0 / (1.0 - dropout),
                           getattr(module, "adapterlib_store_probs", False))
    return out.transpose(1, 2).contiguous(), None  # (B, T, H, dh)


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


def tune_malloc() -> bool:
    """Make glibc keep freed memory for reuse (process-wide, for the rest of the process).

    By default glibc hands large freed blocks back to the OS, and the next training step's
    tensors fault them back in page by page: tens of thousands of page faults per step, a few
    microseconds each on a virtual machine. With the mmap threshold at its maximum (32 MiB)
    tensors up to that size live on the heap, and with a high trim threshold the heap is not
    shrunk, so a step reuses the previous step's memory. Peak memory stays the same; the
    process just keeps it until it exits. Same as the environment variables
    MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=2147483647.
    Returns False (and changes nothing) where glibc's mallopt is unavailable.
    """
    import ctypes
    import ctypes.util
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's malloc.h
    return bool(mallopt(m_mmap_threshold, 32 << 20)) and bool(mallopt(m_trim_threshold, 2 ** 31 - 1))
