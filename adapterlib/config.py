"""Configuration dataclasses: what an adapter is, and named presets.

`AdapterConfig` describes the bottleneck adapters of Houlsby et al. (2019): their size,
initialisation, nonlinearity and where they go. It is validated on construction so a bad
value fails at once with a readable message, not deep inside a forward pass.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

# Named initialisation schemes. Each is a truncated normal N(0, std^2) cut at +-2 std for the
# weights, zero biases. The two differ only in std, and both come from the paper's authors.
INIT_SCHEMES: dict[str, dict] = {
    # Paper, section 3.6: "zero-mean Gaussian with standard deviation 1e-2, truncated to two
    # standard deviations".
    "houlsby": dict(std=1e-2, source="Houlsby et al. 2019, section 3.6"),
    # google-research/adapter-bert modeling.py, `init_scale=1e-3` (confirmed in issue #10).
    "adapter-bert": dict(std=1e-3, source="google-research/adapter-bert modeling.py (init_scale=1e-3)"),
}

NONLINEARITIES = ("gelu", "relu", "tanh", "swish", "identity")
POSITIONS = ("attention", "ffn")  # after the attention output projection / after the FFN


class AdapterConfigError(ValueError):
    """An AdapterConfig value is out of range or unknown."""


@dataclass
class AdapterConfig:
    """Bottleneck adapters, two per transformer layer (paper Figure 2).

    size:         bottleneck width m (d -> m -> d). Paper: {8, 64, 256} for GLUE.
    init:         a named scheme from INIT_SCHEMES ("houlsby" = std 1e-2, "adapter-bert" = 1e-3).
    init_std:     explicit std that overrides the scheme (the init ablation sweeps 1e-7 .. 1);
                  0 makes every adapter an exact identity.
    nonlinearity: f in h + W_up f(W_down h); the official code uses GELU.
    layers:       indices of the transformer layers that get adapters (None = every layer).
    positions:    which sub-layers get one: "attention" and/or "ffn".
    """

    size: int = 64
    init: str = "houlsby"
    init_std: float | None = None
    nonlinearity: str = "gelu"
    layers: list[int] | None = None
    positions: tuple[str, ...] = field(default=POSITIONS)

    def __post_init__(self):
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size <= 0:
            raise AdapterConfigError(f"adapter size must be a positive integer, got {self.size!r}")
        if self.init not in INIT_SCHEMES:
            raise AdapterConfigError(f"unknown init scheme {self.init!r}; known: {', '.join(INIT_SCHEMES)}")
        if self.init_std is not None and not (float(self.init_std) >= 0):  # also rejects NaN
            raise AdapterConfigError(f"init_std must be >= 0, got {self.init_std!r}")
        if self.nonlinearity not in NONLINEARITIES:
            raise AdapterConfigError(
                f"unknown nonlinearity {self.nonlinearity!r}; known: {', '.join(NONLINEARITIES)}")
        if isinstance(self.positions, str):
            self.positions = (self.positions,)
        self.positions = tuple(self.positions)
        bad = [p for p in self.positions if p not in POSITIONS]
        if bad or not self.positions:
            raise AdapterConfigError(f"positions must be a non-empty subset of {POSITIONS}, got {self.positions!r}")
        if self.layers is not None:
            self.layers = sorted({int(i) for i in self.layers})
            if any(i < 0 for i in self.layers):
                raise AdapterConfigError(f"layer indices must be >= 0, got {self.layers}")

    @property
    def std(self) -> float:
        """The std actually used: the explicit override if given, else the scheme's."""
        return float(self.init_std) if self.init_std is not None else INIT_SCHEMES[self.init]["std"]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["positions"] = list(self.positions)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "AdapterConfig":
        d = dict(d)
        if "positions" in d:
            d["positions"] = tuple(d["positions"])
        return cls(**d)


# Architectures whose parameter counts the notebooks and tests reproduce without a download.
# Values are transformers BertConfig keyword arguments.
MODEL_PRESETS: dict[str, dict] = {
    # all-MiniLM-L6-v2, the bundled default base model: 22.7M params
    "minilm": dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536),
    # bert-base-uncased: 110M params
    "bert-base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    # bert-large-uncased: 335M params
    "bert-large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
}
