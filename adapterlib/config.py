"""Configuration dataclasses: what an adapter is, and named presets.

`AdapterConfig` describes the bottleneck adapters of Houlsby et al. (2019): their size,
initialisation, nonlinearity and where they go. It is validated on construction so a bad
value fails at once with a readable message, not deep inside a forward pass.
"""
from __future__ import annotations

import math
import numbers
import os
from dataclasses import asdict, dataclass, field
from typing import ClassVar

from .errors import AdapterlibError

# Named initialisation schemes. Each is a truncated normal N(0, std^2) cut at +-2 std for the
# weights, zero biases. The two differ only in std, and both come from the paper's authors.
INIT_SCHEMES: dict[str, dict] = {
    # Paper, section 3.6: "zero-mean Gaussian with standard deviation 1e-2, truncated to two
    # standard deviations".
    "houlsby": dict(std=1e-2, source="Houlsby et al. 2019, section 3.6"),
    # google-research/adapter-bert modeling.py, `init_scale=1e-3` (confirmed in issue #10).
    "adapter-bert": dict(std=1e-3, source="google-research/adapter-bert modeling.py (init_scale=1e-3)"),
}

# an absolute cap on m (the model's hidden size bounds it further: inject.MAX_SIZE_PER_HIDDEN)
MAX_ADAPTER_SIZE = 65536
# The largest explicit init std: the init ablation's largest (1.0) is already far past where adapters start
# near the identity; a larger one only makes the first forward pass overflow ("training loss became nan").
INIT_STD_MAX = 1.0
SEED_LIMIT = 2**32  # numpy's and torch's seeds are 32-bit: a seed must be below this
MAX_THREADS = 4096  # torch threads per process: far above any machine's cores, far below torch's C int

NONLINEARITIES = ("gelu", "relu", "tanh", "swish", "identity")
POSITIONS = ("attention", "ffn")  # after the attention output projection / after the FFN


class AdapterConfigError(AdapterlibError, ValueError):
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
        if self.size > MAX_ADAPTER_SIZE:  # before any allocation: 10**9 would ask torch for ~128 GB per layer
            raise AdapterConfigError(f"adapter size must be at most {MAX_ADAPTER_SIZE} (a bottleneck narrower than "
                                     f"the model's hidden size), got {self.size}")
        for name in ("init", "nonlinearity"):
            if not isinstance(getattr(self, name), str):
                raise AdapterConfigError(f"{name} must be a string, got {getattr(self, name)!r}")
        if self.init not in INIT_SCHEMES:
            raise AdapterConfigError(f"unknown init scheme {self.init!r}; known: {', '.join(INIT_SCHEMES)}")
        if self.init_std is not None and (isinstance(self.init_std, bool) or not isinstance(self.init_std, (int, float))
                                          or not 0 <= self.init_std <= INIT_STD_MAX):  # also rejects NaN
            raise AdapterConfigError(f"init_std must be a finite number >= 0 and <= {INIT_STD_MAX:g}, "
                                     f"got {self.init_std!r}")
        if self.nonlinearity not in NONLINEARITIES:
            raise AdapterConfigError(
                f"unknown nonlinearity {self.nonlinearity!r}; known: {', '.join(NONLINEARITIES)}")
        if isinstance(self.positions, str):
            self.positions = (self.positions,)
        self.positions = tuple(self.positions)
        bad = [p for p in self.positions if p not in POSITIONS]
        if bad or not self.positions or len(set(self.positions)) != len(self.positions):
            raise AdapterConfigError(f"positions must be a non-empty subset of {POSITIONS} without repeats, "
                                     f"got {self.positions!r}")
        if self.layers is not None:
            if isinstance(self.layers, (str, bytes)) or not all(
                    isinstance(i, numbers.Integral) and not isinstance(i, bool) for i in self.layers):
                raise AdapterConfigError(f"layers must be a list of integer layer indices, got {self.layers!r}")
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


class TrainConfigError(AdapterlibError, ValueError):
    """A TrainConfig value is out of range."""


# What a run trains (TrainConfig.method; adapterlib.methods describes each). `policy`, the older name of the same
# choice, is kept so earlier run ids stay valid: policy "adapter" is method "houlsby", every other method's policy
# is its own name.
TRAIN_METHODS = ("houlsby", "pfeiffer", "bitfit", "lora", "ia3", "prefix", "full", "top_k", "layernorm", "head")
ADAPTER_METHODS = ("houlsby", "pfeiffer")  # bottleneck adapters (adapter_size, init, nonlinearity, train_layernorm)
PEFT_METHODS = ("lora", "ia3", "prefix")   # through the peft library
NEW_METHODS = ("pfeiffer", "bitfit", "lora", "ia3", "prefix")  # no record before `method` existed
METHOD_DEFAULTS = {"lora_r": 8, "prefix_length": 20}  # peft's LoRA rank default; Li & Liang's smallest GLUE-like prefix


def method_of_policy(policy: str) -> str:
    """The method a policy names: "adapter" is "houlsby", any other policy is its own method."""
    return "houlsby" if policy == "adapter" else policy


def policy_of_method(method: str) -> str:
    return "adapter" if method == "houlsby" else method


@dataclass
class TrainConfig:
    """One training run. Defaults follow the paper's recipe (PAPER.md, "Training recipe")."""

    task: str = "rte"                   # GLUE task name (adapterlib.data.TASKS)
    policy: str = "adapter"             # adapter | full | top_k | layernorm | head (older name of --method:
                                        #   adapter = houlsby; any other method's policy is its own name)
    adapter_size: int = 64              # bottleneck m (methods houlsby, pfeiffer)
    init: str = "houlsby"               # named adapter init scheme
    init_std: float | None = None       # explicit init std (overrides the scheme)
    adapter_layers: list[int] | None = None  # layers that get adapters (None = all)
    top_k: int | None = None            # layers trained by policy "top_k"
    lr: float = 3e-4                    # peak learning rate
    epochs: int = 3                     # passes over the training split (the maximum, with patience)
    patience: int | None = None         # early stopping: stop after this many evaluations past the warm-up
                                        #   without a better validation score (None = run every epoch)
    max_steps: int | None = None        # stop after this many optimizer steps (quick runs)
    batch_size: int = 32                # paper: 32
    max_length: int = 128               # paper: 128 tokens
    weight_decay: float = 0.01          # AdamWeightDecay in adapter-bert; none on LayerNorm/bias
    warmup_ratio: float = 0.1           # linear warm-up over the first 10% of steps
    max_grad_norm: float = 1.0          # global-norm clipping
    adam_eps: float = 1e-6              # adapter-bert's AdamWeightDecay epsilon
    seed: int = 0                       # random seed: head init, dropout masks, batch order
    model: str | None = None            # None = bundled all-MiniLM-L6-v2
    glue_dir: str | None = None         # None = $GLUE_DIR, else the bundled copy, else the hub
    max_train_examples: int | None = None  # fixed seeded subset of train (quick runs, SST-2)
    max_eval_examples: int | None = None   # cap validation/dev size (smoke runs only)
    val_fraction: float = 0.1           # held-out slice of train used for model selection
    eval_every: int | None = None       # validate every N steps (None = once per epoch)
    mixed_precision: str = "no"         # accelerate: "no" | "fp16" | "bf16"
    head_input: str = "pooler"          # classifier input: "pooler" (BERT's, over [CLS]; the paper) or
                                        #   "mean" (token mean; how all-MiniLM-L6-v2 was pre-trained)
    train_pooler: bool = False          # also train the pooler under frozen-base policies (its weights
                                        #   are untrained in the bundled MiniLM); counted per task
    fast: bool = True                   # adapterlib.fast's exact CPU speed-ups (same computation)
    method: str | None = None           # what trains: houlsby (= policy adapter) | pfeiffer | bitfit | lora | ia3 |
                                        #   prefix | full | top_k | layernorm | head (None: the policy's)
    nonlinearity: str = "gelu"          # adapter nonlinearity (houlsby, pfeiffer): gelu | relu | tanh | swish |
                                        #   identity
    train_layernorm: bool | None = None  # houlsby, pfeiffer: also train every LayerNorm (default: the method's own
                                        #   choice, houlsby yes as in the paper, pfeiffer no as in AdapterHub)
    lora_r: int | None = None           # LoRA rank r (method lora only; default 8, peft's)
    prefix_length: int | None = None    # virtual tokens of prefix tuning (method prefix only; default 20)

    # Fields added after the first studies, with the value every earlier run implicitly had.
    # run_id leaves a field out of the hash while it has this value, so earlier ids stay valid.
    # `method` is left out of the hash too: it is a function of `policy` (method_of_policy).
    LEGACY_DEFAULTS: ClassVar[dict] = {"patience": None, "head_input": "pooler", "train_pooler": False, "fast": True,
                                       "nonlinearity": "gelu", "train_layernorm": None, "lora_r": None,
                                       "prefix_length": None}

    def __post_init__(self):
        self._check_types()
        ints = ["adapter_size", "epochs", "batch_size", "max_length"]
        ints += [n for n in ("max_steps", "max_train_examples", "max_eval_examples", "eval_every", "top_k",
                             "patience") if getattr(self, n) is not None]
        for name in ints:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise TrainConfigError(f"{_opt(name)} must be a positive integer, got {value!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or not 0 <= self.seed < SEED_LIMIT:
            raise TrainConfigError(f"seed must be a non-negative integer below 2**32, got {self.seed!r}")
        # (low, high, low inclusive): every float setting has a finite range
        ranges = dict(lr=(0, 10, False), max_grad_norm=(0, 1e6, False), adam_eps=(0, 1, False),
                      weight_decay=(0, 1, True), warmup_ratio=(0, 1, True), val_fraction=(0, 1, False))
        for name, (low, high, closed) in ranges.items():
            value = getattr(self, name)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            if not ok or not (low <= value if closed else low < value) or not value < high:
                interval = f"{'[' if closed else '('}{low:g}, {high:g})"
                raise TrainConfigError(f"{_opt(name)} must be a finite number in {interval}, got {value!r}")
        for name in ("train_pooler", "fast"):
            if not isinstance(getattr(self, name), bool):
                raise TrainConfigError(f"{_opt(name)} must be true or false, got {getattr(self, name)!r}")
        if self.head_input not in ("pooler", "mean"):
            raise TrainConfigError(f"head-input must be 'pooler' or 'mean', got {self.head_input!r}")
        if self.head_input == "mean" and self.train_pooler:
            raise TrainConfigError("train-pooler needs head-input 'pooler' (mean pooling has no pooler to train)")
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            raise TrainConfigError(f"mixed-precision must be no, fp16 or bf16, got {self.mixed_precision!r}")
        if self.policy == "top_k" and self.top_k is None:
            raise TrainConfigError("policy top_k needs --top-k (how many top layers to train)")
        self._check_method()

    def _check_method(self):
        """Resolve `method` and `policy` (one names the other) and refuse options that do not apply to it."""
        if self.method is None:
            self.method = method_of_policy(self.policy)
        elif self.method not in TRAIN_METHODS:
            raise TrainConfigError(f"unknown method {self.method!r}; known: {', '.join(TRAIN_METHODS)}")
        elif self.policy != policy_of_method(self.method):
            if self.policy != "adapter":  # the default policy gives way to an explicit method
                raise TrainConfigError(f"--method {self.method} contradicts --policy {self.policy} (policy "
                                       f"{self.policy} is method {method_of_policy(self.policy)}); give one of them")
            self.policy = policy_of_method(self.method)
        if self.method not in TRAIN_METHODS:
            raise TrainConfigError(f"unknown policy {self.policy!r}; known methods: {', '.join(TRAIN_METHODS)}")
        for name, owner in (("lora_r", "lora"), ("prefix_length", "prefix")):
            value = getattr(self, name)
            if value is not None and self.method != owner:
                raise TrainConfigError(f"--{_opt(name)} applies to --method {owner} only, not --method {self.method}")
            if self.method == owner:
                value = METHOD_DEFAULTS[name] if value is None else value
                if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                    raise TrainConfigError(f"{_opt(name)} must be a positive integer, got {value!r}")
                setattr(self, name, value)
        if self.method not in ADAPTER_METHODS:
            given = [n for n, v in (("nonlinearity", self.nonlinearity != "gelu"),
                                    ("train-layernorm", self.train_layernorm is not None)) if v]
            if self.method in NEW_METHODS:  # earlier policies ignored the adapter options; new methods refuse them
                given += [n for n, v in (("adapter-size", self.adapter_size != 64), ("init", self.init != "houlsby"),
                                         ("init-std", self.init_std is not None),
                                         ("adapter-layers", self.adapter_layers is not None)) if v]
            if given:
                raise TrainConfigError(f"--{given[0]} applies to methods {' and '.join(ADAPTER_METHODS)} (bottleneck "
                                       f"adapters), not --method {self.method}")
        elif self.nonlinearity not in NONLINEARITIES:
            raise TrainConfigError(f"unknown nonlinearity {self.nonlinearity!r}; known: {', '.join(NONLINEARITIES)}")
        if self.train_layernorm is not None and not isinstance(self.train_layernorm, bool):
            raise TrainConfigError(f"train-layernorm must be true or false, got {self.train_layernorm!r}")
        if self.method == "top_k" and self.top_k is None:
            raise TrainConfigError("policy top_k needs --top-k (how many top layers to train)")
        if self.top_k is not None and self.method in NEW_METHODS:  # earlier policies ignored it; new methods refuse it
            raise TrainConfigError(f"--top-k applies to --method top_k only, not --method {self.method}")
        if self.method not in ADAPTER_METHODS:
            self.adapter_layers = None

    def _check_types(self) -> None:
        """The string and path fields (numbers and switches are checked with their ranges): a wrong type is one
        line here, not a TypeError deep in pathlib or a hash. A path given as a Path is kept as its string."""
        for name in ("task", "policy", "init", "head_input", "mixed_precision", "nonlinearity"):
            if not isinstance(getattr(self, name), str):
                raise TrainConfigError(f"{_opt(name)} must be a string, got {getattr(self, name)!r}")
        for name in ("model", "glue_dir"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, (str, os.PathLike)):
                raise TrainConfigError(f"{_opt(name)} must be a path (a string) or None, got {value!r}")
            if value is not None:
                setattr(self, name, os.fspath(value))
        std = self.init_std
        if std is not None and (isinstance(std, bool) or not isinstance(std, (int, float))):
            raise TrainConfigError(f"init-std must be a number or None, got {std!r}")
        layers = self.adapter_layers
        if layers is not None and (isinstance(layers, (str, bytes)) or not isinstance(layers, (list, tuple)) or not all(
                isinstance(i, int) and not isinstance(i, bool) for i in layers)):
            raise TrainConfigError(f"adapter-layers must be a list of layer indices, got {layers!r}")

    @property
    def trains_layernorm(self) -> bool:
        """Whether the method's trained set includes every LayerNorm (houlsby by default, pfeiffer only if asked)."""
        if self.method in ADAPTER_METHODS:
            return self.method == "houlsby" if self.train_layernorm is None else self.train_layernorm
        return self.method in ("full", "layernorm")

    def adapter_config(self) -> AdapterConfig:
        return AdapterConfig(size=self.adapter_size, init=self.init, init_std=self.init_std,
                             layers=self.adapter_layers, nonlinearity=self.nonlinearity,
                             positions=("ffn",) if self.method == "pfeiffer" else POSITIONS)

    def to_dict(self) -> dict:
        return asdict(self)

    def identity(self) -> dict:
        """The fields that name a run (run_id's hash): all of them, minus legacy defaults."""
        return {k: v for k, v in self.to_dict().items()
                if not (k in self.LEGACY_DEFAULTS and v == self.LEGACY_DEFAULTS[k])
                and not (k == "method" and v == method_of_policy(self.policy))}

    @classmethod
    def from_record(cls, config: dict) -> "TrainConfig":
        """The TrainConfig of a run record's `config`; fields newer than the record take their legacy values
        (a record without `method` is the method its policy names)."""
        return cls(**config)


def _opt(name: str) -> str:
    return name.replace("_", "-")
