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

Both rest on torch and transformers internals (ATen's Bernoulli rule, `aten._safe_softmax`,
transformers' attention registries and SDPA function). Importing this module touches none of
them and registers nothing; the first `speed_up()` imports them, registers the attention
function, and checks once per process, on tiny inputs, that each change still computes what
the stock path computes. A change whose check fails (a moved symbol, an older torch, a
different Bernoulli rule) is left out with one warning, and the model keeps the stock module.

`malloc_tuned()` (separate, process-wide while it lasts) makes glibc keep freed memory for
reuse instead of returning it to the OS and page-faulting it back in on the next step;
`tune_malloc()` does the same for the rest of the process.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import math
import os
import warnings

import torch
from torch import nn

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
    if k >= 1 << 53:  # p < 2**-53 (or 0): 1 - p rounds to 1, torch keeps every element
        return torch.ones(shape, dtype=torch.uint8, device=device)
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
    return _safe_softmax(scores, -1) if safe else torch.softmax(scores, -1)


def _safe_softmax(scores: torch.Tensor, dim: int) -> torch.Tensor:
    """ATen's softmax that gives 0 for a fully masked row (torch >= 2.5; checked by `available()`)."""
    return torch.ops.aten._safe_softmax(scores, dim)


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
        from transformers.integrations.sdpa_attention import sdpa_attention_forward
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


def _register_attention() -> None:
    """Register exact_sdpa_attention (and SDPA's mask builder) under ATTENTION in transformers' registries."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask
    AttentionInterface.register(ATTENTION, exact_sdpa_attention)
    AttentionMaskInterface.register(ATTENTION, sdpa_mask)


def _check_dropout() -> None:
    """torch's CPU bernoulli_(1 - p) keeps iff (64-bit draw & (2**53 - 1)) < _threshold(p): keep_mask's premise."""
    for p in (0.1, 0.3):
        stock = torch.empty(4096).bernoulli_(1 - p, generator=torch.Generator().manual_seed(0))
        words = _random_words(4096, torch.Generator().manual_seed(0))
        if not torch.equal(stock, ((words & (2 ** 53 - 1)) < _threshold(p)).float()):
            raise AssertionError(f"torch's Bernoulli draws differ from the rule keep_mask reproduces (p={p})")


def _reference_attention(q, k, v, mask, keep, p, scale):
    """dropout(softmax(q k^T * scale + mask)) v in public torch ops, given the keep mask; (B, T, H, dh)."""
    scores = (q @ k.transpose(-2, -1)) * scale
    if mask.dtype == torch.bool:  # a query row with nothing to attend to gets probabilities 0
        attends = mask.any(-1, keepdim=True)
        probs = torch.softmax(scores.masked_fill(~mask, float("-inf")).masked_fill(~attends, 0.0), -1) * attends
    else:
        probs = torch.softmax(scores + mask, -1)
    return ((probs * keep / (1 - p)) @ v).transpose(1, 2)


def _check_attention() -> None:
    """exact_sdpa_attention against transformers' SDPA (no dropout) and public torch ops (given the mask)."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    _register_attention()
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 2, 5, 4, generator=gen, dtype=torch.float64, requires_grad=True) for _ in range(3))
    blocked = torch.ones(2, 1, 5, 5, dtype=torch.bool)
    blocked[0, ..., 3:] = False  # padding
    blocked[1, 0, 2] = False     # a query with nothing to attend to (ATen's _safe_softmax)
    additive = torch.zeros(2, 1, 5, 5, dtype=torch.float64).masked_fill(~blocked, torch.finfo(torch.float64).min)
    module = nn.Module()
    for mask in (blocked, additive):
        plain, _ = exact_sdpa_attention(module, q, k, v, mask, dropout=0.0, scaling=0.5)
        stock, _ = sdpa_attention_forward(module, q, k, v, mask, dropout=0.0, scaling=0.5)
        with torch.random.fork_rng(devices=[]):  # the same mask twice; the caller's random stream untouched
            torch.manual_seed(0)
            out, _ = exact_sdpa_attention(module, q, k, v, mask, dropout=0.3, scaling=0.5)
            torch.manual_seed(0)
            keep = keep_mask((2, 2, 5, 5), 0.3).to(torch.float64)
        ref = _reference_attention(q, k, v, mask, keep, 0.3, 0.5)
        grad = torch.randn(out.shape, generator=gen, dtype=torch.float64)
        got = torch.autograd.grad(out, (q, k, v), grad)
        want = torch.autograd.grad(ref, (q, k, v), grad)
        if not (torch.allclose(plain, stock) and torch.allclose(out, ref)
                and all(torch.allclose(a, b) for a, b in zip(got, want, strict=True))):
            raise AssertionError("exact_sdpa_attention no longer matches SDPA / the reference on a tiny input")


_AVAILABLE: dict | None = None  # the one-time check's result, see available()


def available() -> dict:
    """Which speed-ups this torch / transformers supports: {"dropout": bool, "attention": bool, "problems": [...]}.

    Checked once per process, on tiny inputs (a few milliseconds), without drawing from torch's
    global random stream; the first failing check warns once (RuntimeWarning) and that change is
    left out by `speed_up`.
    """
    global _AVAILABLE
    if _AVAILABLE is None:
        result, problems = {}, []
        for name, check in (("dropout", _check_dropout), ("attention", _check_attention)):
            try:
                check()
                result[name] = True
            except Exception as e:  # noqa: BLE001 - any failure of an internal means: use the stock module
                result[name] = False
                problems.append(f"{name}: {type(e).__name__}: {e}")
        _AVAILABLE = {**result, "problems": problems}
        if problems:
            warnings.warn("adapterlib.fast: left out, the stock torch/transformers module is used instead ("
                          + "; ".join(problems) + f"; torch {torch.__version__})", RuntimeWarning, stacklevel=3)
    return _AVAILABLE


def speed_up(model: nn.Module, dropout: bool = True, attention: bool = True) -> nn.Module:
    """Make CPU training of `model` faster without changing what it computes (in place; returns `model`).

    The speed path of `adapterlib.train`, for your own training loop too:

        model, tokenizer = al.load_base_model(num_labels=2)
        al.add_adapters(model, al.AdapterConfig(size=64))
        al.set_trainable(model, "adapter")
        al.speed_up(model)                  # before training; al.slow_down(model) undoes it
        for batch in loader:                # your loop, unchanged
            model(**batch).loss.backward(); optimizer.step(); optimizer.zero_grad()

    Every nn.Dropout becomes ExactDropout (cheaper masks, torch's exact keep probability) and,
    if the model uses SDPA attention, attention becomes exact_sdpa_attention (1-byte masks kept
    for backward instead of probabilities). Given the same dropout masks, logits and gradients
    are those of the stock modules; evaluation, GPUs and autocast use the stock code. A change
    that this torch / transformers does not support (`available()`) is left out with one warning.
    `active(model)` says what is on. dropout / attention: apply only one of the two changes.
    """
    ok = available() if dropout or attention else {}
    if dropout and ok["dropout"]:
        for module in model.modules():
            if type(module) is nn.Dropout:
                module.__class__ = ExactDropout
    implementation = getattr(getattr(model, "config", None), "_attn_implementation", None)
    if attention and ok["attention"] and implementation == "sdpa":
        model.set_attn_implementation(ATTENTION)
    return model


def active(model: nn.Module) -> dict:
    """Which of `speed_up`'s changes `model` has: {"exact_dropout": bool, "exact_attention": bool}."""
    return {"exact_dropout": any(type(m) is ExactDropout for m in model.modules()),
            "exact_attention": getattr(getattr(model, "config", None), "_attn_implementation", None) == ATTENTION}


def slow_down(model: nn.Module) -> nn.Module:
    """Undo `speed_up` (in place)."""
    for module in model.modules():
        if type(module) is ExactDropout:
            module.__class__ = nn.Dropout
    if getattr(getattr(model, "config", None), "_attn_implementation", None) == ATTENTION:
        model.set_attn_implementation("sdpa")
    return model


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # from glibc's malloc.h
_GLIBC_DEFAULT = 128 * 1024                     # both thresholds' start-up value (M_MMAP_THRESHOLD_DEFAULT)
_TUNED = {"holders": 0, "forever": False}      # open malloc_tuned() blocks; tune_malloc() called


def _mallopt():
    """glibc's mallopt, or None where there is none (musl, macOS, Windows)."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return None


def _set_malloc(mmap_threshold: int, trim_threshold: int) -> bool:
    mallopt = _mallopt()
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and bool(mallopt(_M_TRIM_THRESHOLD, trim_threshold))


@contextlib.contextmanager
def malloc_tuned(enabled: bool = True):
    """`tune_malloc()` while the block runs, then glibc's settings back; yields whether it is tuned.

        with malloc_tuned() as tuned:    # what adapterlib.train does around its training loop
            ...

    On exit the two thresholds return to their start-up values ($MALLOC_MMAP_THRESHOLD_ /
    $MALLOC_TRIM_THRESHOLD_ if set, else glibc's 128 KiB) and the kept free memory is handed back
    to the OS (malloc_trim). glibc has no way to read a threshold, so what is restored is the
    start-up value, not a value set by other code; and glibc's dynamic raising of the mmap
    threshold, which any explicit setting switches off, stays off. Nested blocks, or a block
    inside a process that called `tune_malloc()`, leave the settings as they found them.
    """
    if not enabled:
        yield False
        return
    already = _TUNED["holders"] > 0 or _TUNED["forever"]
    tuned = True if already else _set_malloc(32 << 20, 2 ** 31 - 1)
    _TUNED["holders"] += tuned
    try:
        yield tuned
    finally:
        _TUNED["holders"] -= tuned
        if tuned and not _TUNED["holders"] and not _TUNED["forever"]:
            _set_malloc(_startup_value("MALLOC_MMAP_THRESHOLD_"), _startup_value("MALLOC_TRIM_THRESHOLD_"))
            _malloc_trim()


def _startup_value(variable: str) -> int:
    """A threshold as glibc read it at start-up: its environment variable if a number, else the default."""
    value = os.environ.get(variable, "")
    return int(value) if value.isdigit() else _GLIBC_DEFAULT


def _malloc_trim() -> None:
    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def tune_malloc() -> bool:
    """Make glibc keep freed memory for reuse (process-wide, for the rest of the process).

    For scripts and benchmarks that own their process; library code uses `malloc_tuned()`,
    which restores the settings afterwards.

    By default glibc hands large freed blocks back to the OS, and the next training step's
    tensors fault them back in page by page: tens of thousands of page faults per step, a few
    microseconds each on a virtual machine. With the mmap threshold at its maximum (32 MiB)
    tensors up to that size live on the heap, and with a high trim threshold the heap is not
    shrunk, so a step reuses the previous step's memory. Peak memory stays the same; the
    process just keeps it until it exits. Same as the environment variables
    MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=2147483647.
    Returns False (and changes nothing) where glibc's mallopt is unavailable.
    """
    tuned = _set_malloc(32 << 20, 2 ** 31 - 1)
    _TUNED["forever"] = _TUNED["forever"] or tuned
    return tuned
