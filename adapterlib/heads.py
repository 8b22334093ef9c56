"""What the classification head reads: BERT's pooler over [CLS] (the paper) or the token mean.

BERT's sequence classifier is `classifier(dropout(pooler(h)))`, with `pooler(h) =
tanh(W h[:, 0] + b)`: the [CLS] vector through a layer trained by next-sentence prediction.
The paper (and adapter-bert) keeps that pooler frozen under adapter tuning.

The bundled all-MiniLM-L6-v2 was pre-trained with *mean pooling*: its pooler is untrained
(random weights, zero bias) and [CLS] was never trained as a sentence summary. So a frozen
base reads an untrained vector through a random projection, while full fine-tuning trains
both. Two recipe options remove that asymmetry (`TrainConfig.head_input`, `train_pooler`):

    head_input="pooler"  classifier(dropout(pooler(h[:, 0])))         (the paper)
    head_input="mean"    classifier(dropout(mean of h over real tokens))   (how MiniLM was trained)

`set_head_input(model, "mean")` swaps the pooler for a parameter-free `MeanPooler`, so the
change shows in `print(model)` and the pooler's unused weights leave the parameter count.
"""
from __future__ import annotations

import torch
from torch import nn

from .errors import UsageError

HEAD_INPUTS = ("pooler", "mean")


class MeanPooler(nn.Module):
    """Mean of the last hidden states over the real (unpadded) tokens: (B, T, d) -> (B, d).

    BertModel calls its pooler with the hidden states only, so the attention mask is handed
    over by a forward pre-hook on the base model (`set_head_input` installs it).
    """

    def __init__(self):
        super().__init__()
        self.mask: torch.Tensor | None = None  # (B, T), set for the duration of one forward

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        if self.mask is None:
            return hidden_states.mean(dim=1)
        # (B, T, 1); a mask longer than T covers prefix tuning's virtual tokens first (adapterlib.methods)
        m = self.mask[:, self.mask.shape[1] - hidden_states.shape[1]:].to(hidden_states.dtype).unsqueeze(-1)
        return (hidden_states * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)


def head_input(model: nn.Module) -> str:
    """'mean' if the model's pooler is a MeanPooler, else 'pooler'."""
    return "mean" if isinstance(getattr(model.base_model, "pooler", None), MeanPooler) else "pooler"


def set_head_input(model: nn.Module, kind: str) -> nn.Module:
    """Make the classification head read `kind` ('pooler' or 'mean'); returns the model.

    'pooler' leaves the model as loaded. 'mean' needs a BERT-style model whose classifier reads
    `base_model.pooler` (BERT, MiniLM, ELECTRA-style poolers are not supported).
    """
    if kind not in HEAD_INPUTS:
        raise UsageError(f"head_input must be one of {HEAD_INPUTS}, got {kind!r}")
    if kind == head_input(model):
        return model
    if kind == "pooler":
        raise UsageError("the pooler was replaced by mean pooling; load a fresh model for head_input='pooler'")
    base = model.base_model
    if not isinstance(getattr(base, "pooler", None), nn.Module):
        raise UsageError(f"head_input='mean' needs a model whose classifier reads a pooler "
                         f"({type(model).__name__} has none)")
    pooler = MeanPooler()
    base.pooler = pooler

    def hand_over_mask(module, args, kwargs):
        mask = kwargs.get("attention_mask")
        pooler.mask = mask if mask is None or mask.dim() == 2 else None

    def release_mask(module, args, output):
        pooler.mask = None

    base.register_forward_pre_hook(hand_over_mask, with_kwargs=True)
    base.register_forward_hook(release_mask)
    return model
