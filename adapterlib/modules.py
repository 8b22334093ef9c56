"""The bottleneck adapter (Houlsby et al. 2019, Figure 2, right) and the wrapper that places it.

    adapter(h) = h + W_up · f(W_down · h + b_down) + b_up          # (B, T, d) -> (B, T, d)

With a near-zero initialisation the adapter starts as (almost) the identity, so inserting it
leaves the pre-trained network's function unchanged at step 0 (paper section 2.1).
"""
from __future__ import annotations

import torch
from torch import nn

from .config import AdapterConfig

_ACTIVATIONS = {
    "gelu": nn.GELU,       # official adapter-bert code
    "relu": nn.ReLU,
    "tanh": nn.Tanh,       # tried in the paper (section 3.6), no better
    "swish": nn.SiLU,      # AdapterHub's default
    "identity": nn.Identity,
}


def init_near_identity_(linear: nn.Linear, std: float) -> None:
    """Truncated normal N(0, std^2) cut at +-2 std for the weight, zeros for the bias.

    std = 0 gives all-zero weights, which makes the adapter an exact identity.
    """
    with torch.no_grad():
        if std > 0:
            nn.init.trunc_normal_(linear.weight, mean=0.0, std=std, a=-2 * std, b=2 * std)
        else:
            linear.weight.zero_()
        linear.bias.zero_()


class Adapter(nn.Module):
    """Bottleneck adapter: d -> m -> d with an internal skip connection.

    Parameters: 2·m·d + d + m (both projections with biases).
    """

    def __init__(self, hidden_size: int, config: AdapterConfig, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        self.down = nn.Linear(hidden_size, config.size, **kw)  # W_down, b_down
        self.act = _ACTIVATIONS[config.nonlinearity]()
        self.up = nn.Linear(config.size, hidden_size, **kw)    # W_up, b_up
        self.reset_parameters(config.std)

    def reset_parameters(self, std: float) -> None:
        init_near_identity_(self.down, std)
        init_near_identity_(self.up, std)

    def forward(self, h: torch.Tensor, overwrite_input: bool = False) -> torch.Tensor:  # (B, T, d)
        """h + up(act(down(h))).

        overwrite_input: write the result into h itself (no autograd only; AdapterSlot uses it at
        inference, where h is the sub-layer's own output and nothing else reads it). It saves
        a pass over a (B, T, d) buffer; the sum is the same up to floating-point order.
        """
        z = self.act(self.down(h))
        if (overwrite_input and not torch.is_grad_enabled() and h.is_contiguous() and h.dtype == self.up.weight.dtype
                and not torch.is_autocast_enabled(h.device.type)):
            flat = h.view(-1, h.shape[-1])  # h += z W_up^T (one GEMM into h), then + b_up
            return flat.addmm_(z.reshape(-1, z.shape[-1]), self.up.weight.t()).add_(self.up.bias).view(h.shape)
        # the up-projection's output is a fresh tensor, so the skip is added in place
        # (same bits as h + up(z), one buffer less; nothing in backward needs that output)
        return self.up(z).add_(h)


class AdapterSlot(nn.Module):
    """Runs the sub-layer it replaces, then the adapter: `adapter(inner(x))`.

    `inner` is the last module before a residual add (dropout after the output projection
    in BERT), so the data path is exactly the paper's
    `LayerNorm(x + adapter(dropout(dense(...))))`. `enabled=False` bypasses the adapter,
    which the layer-ablation study uses to remove adapters at inference without retraining.
    """

    def __init__(self, inner: nn.Module, adapter: Adapter):
        super().__init__()
        self.inner = inner
        self.adapter = adapter
        self.enabled = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.inner(x)  # the output projection's result: only the residual add reads it next
        return self.adapter(x, overwrite_input=True) if self.enabled else x

    def extra_repr(self) -> str:
        return "" if self.enabled else "enabled=False"
