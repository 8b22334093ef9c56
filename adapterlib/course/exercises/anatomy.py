"""Notebook 01's exercises: the bottleneck adapter (check_adapter) and its placement in a layer (check_placement)."""
from __future__ import annotations

import copy
import itertools

import torch
from torch import nn
from torch.nn import functional as F

from ...config import AdapterConfig
from ...inject import (
    adapter_slots,
    add_adapters,
    enable_adapters,
    placement_for,
    transformer_layers,
)
from ...modules import Adapter
from ._common import _TRUNCATED_STD, _first_line, _report

# ---------------------------------------------------------------------------------------------
# Exercise 1: the bottleneck adapter, h + up(f(down(h)))
# ---------------------------------------------------------------------------------------------

def _count_hint(count: int, d: int, m: int) -> str:
    """Why a parameter count might differ from 2md + d + m."""
    missing = 2 * m * d + d + m - count
    hints = {d: "is the up-projection missing its bias?", m: "is the down-projection missing its bias?",
             d + m: "are both projections missing their biases?", -2 * d: "a LayerNorm inside the adapter? "
             "The paper's adapter has none (section 3.6)"}
    if missing in hints:
        return hints[missing]
    if count in (m * d, m * d + m, m * d + d):
        return "only one projection? The adapter needs W_down (d -> m) and W_up (m -> d)"
    if count in (d * d, d * d + d, 2 * d * d + 2 * d):
        return "d -> d projections? The bottleneck goes d -> m -> d"
    return "count the weights and biases of both projections"


def _randomise_(*linears: nn.Linear) -> None:
    """Weights large enough that the nonlinearity and the skip visibly matter; non-zero biases."""
    with torch.no_grad():
        for linear in linears:
            linear.weight.normal_(0.0, linear.in_features ** -0.5)
            linear.bias.normal_(0.0, 0.1)


def _wrong_forwards(ref: Adapter, h: torch.Tensor) -> dict[str, torch.Tensor]:
    """Outputs of the usual mistakes, computed with the reference adapter's weights."""
    z = ref.down(h)
    wrong = {"no skip connection: the output is up(f(down(h))); add the input h back": ref.up(F.gelu(z)),
             "no nonlinearity between the projections: apply f = GELU to down(h)": h + ref.up(z),
             "the nonlinearity comes after the up-projection: the adapter is h + up(f(down(h)))": h + F.gelu(ref.up(z)),
             "GELU with approximate='tanh': the official code's GELU is the exact one (nn.GELU())":
                 h + ref.up(F.gelu(z, approximate="tanh"))}
    for name, f in (("ReLU", F.relu), ("tanh", torch.tanh), ("SiLU (swish)", F.silu), ("a sigmoid", torch.sigmoid)):
        wrong[f"the nonlinearity behaves like {name}; the official code uses GELU (nn.GELU())"] = h + ref.up(f(z))
    return wrong


def _function_problem(mine: nn.Module, d: int, m: int) -> str | None:
    """Same outputs as adapterlib.Adapter on the same weights, in eval and train mode."""
    ref = Adapter(d, AdapterConfig(size=m)).eval()
    _randomise_(ref.down, ref.up)
    mine.down.load_state_dict(ref.down.state_dict())
    mine.up.load_state_dict(ref.up.state_dict())
    h = torch.randn(2, 5, d)
    with torch.no_grad():
        want, out = ref(h), mine.eval()(h)
        if not isinstance(out, torch.Tensor) or out.shape != h.shape:
            return (f"forward returned {getattr(out, 'shape', type(out).__name__)}, "
                    f"expected a tensor shaped like h {tuple(h.shape)}")
        if not torch.allclose(out, want, rtol=1e-5, atol=1e-5):
            close = [why for why, y in _wrong_forwards(ref, h).items() if torch.allclose(out, y, rtol=1e-5, atol=1e-5)]
            return close[0] if close else (f"outputs differ from adapterlib.Adapter on the same weights (max |diff| "
                                           f"{(out - want).abs().max():.2e}): expected h + up(GELU(down(h)))")
        if not torch.allclose(mine.train()(h), want, rtol=1e-5, atol=1e-5):
            return "the output changes in train() mode: dropout inside the adapter? The paper's adapter has none"
        for p in mine.parameters():
            p.zero_()
        out = mine.eval()(h)
    if not torch.equal(out, h):
        return (f"with every weight and bias at zero the output is not exactly h "
                f"(max |diff| {(out - h).abs().max():.2e})")
    return None


def _init_problem(linear: nn.Linear, name: str, std: float) -> tuple[str | None, float]:
    """Near-identity init: truncated normal N(0, std^2) cut at +-2 std, zero bias (paper section 3.6)."""
    w, b = linear.weight.detach(), linear.bias.detach()
    spread, expected = w.std().item(), std * _TRUNCATED_STD
    if not bool(w.any()):
        return (f"{name}.weight starts at exactly zero: an exact identity, but then W_down and W_up get no gradient "
                f"(GELU(0) = 0); draw the weights from a normal with std {std:g}, truncated at ±2 std"), spread
    if w.abs().max().item() > 2 * std * (1 + 1e-5):
        why = ("weights too large: PyTorch's default nn.Linear init?" if spread > 1.5 * expected
               else "not truncated at ±2 std?")
        return (f"{name}.weight reaches |w| = {w.abs().max():.2g} > 2 std = {2 * std:g}: {why} Use "
                f"nn.init.trunc_normal_(w, std={std:g}, a=-2 * std, b=2 * std)"), spread
    if not 0.75 * expected < spread < 1.25 * expected:
        return (f"{name}.weight has std {spread:.2g}, expected about {expected:.2g} "
                f"(a normal with std {std:g}, truncated at ±2 std)"), spread
    if bool((b != 0).any()):
        return f"{name}.bias is not zero at init: biases start at 0 (paper section 3.6)", spread
    return None, spread


def _other_size_problem(adapter_cls, name: str, d: int, m: int) -> str | None:
    """Built with other sizes (d/2, m/2 + 1), the adapter must follow its arguments, not fixed numbers."""
    d2, m2 = max(2, d // 2), max(1, m // 2 + 1)
    try:
        other = adapter_cls(d2, m2)
        count = sum(p.numel() for p in other.parameters())
        shapes = [tuple(getattr(other, attr).weight.shape) for attr in ("down", "up")]
    except Exception as e:  # noqa: BLE001 - the student's code may raise anything; say what
        return f"{name}({d2}, {m2}) raised {type(e).__name__}: {_first_line(e)}"
    if count != 2 * m2 * d2 + d2 + m2 or shapes != [(m2, d2), (d2, m2)]:
        return (f"{name}({d2}, {m2}) has {count:,} parameters (down {shapes[0]}, up {shapes[1]}), expected "
                f"{2 * m2 * d2 + d2 + m2:,}: the sizes are fixed numbers in the code; build the layers from the "
                f"d and m the class is given")
    return None


def _adapter_problem(adapter_cls, d: int, m: int, std: float) -> tuple[str | None, str]:
    name = getattr(adapter_cls, "__name__", "the adapter")
    try:
        mine = adapter_cls(d, m)
    except Exception as e:  # noqa: BLE001 - the student's code may raise anything; say what
        return f"{name}({d}, {m}) raised {type(e).__name__}: {e}", ""
    if not isinstance(mine, nn.Module):
        return f"{name}({d}, {m}) is a {type(mine).__name__}, not an nn.Module", ""
    count, expected = sum(p.numel() for p in mine.parameters()), 2 * m * d + d + m
    if count != expected:
        return f"parameter count {count:,}, expected {expected:,} = 2md + d + m: {_count_hint(count, d, m)}", ""
    for attr, (n_in, n_out) in (("down", (d, m)), ("up", (m, d))):
        linear = getattr(mine, attr, None)
        if not isinstance(linear, nn.Linear) or (linear.in_features, linear.out_features) != (n_in, n_out):
            return f"{name} needs an nn.Linear({n_in}, {n_out}) named `{attr}`, found {linear!r}", ""
    spreads = []
    for attr in ("down", "up"):
        problem, spread = _init_problem(getattr(mine, attr), attr, std)
        if problem:
            return problem, ""
        spreads.append(spread)
    problem = _other_size_problem(adapter_cls, name, d, m)
    if problem is None:
        try:
            problem = _function_problem(mine, d, m)
        except Exception as e:  # noqa: BLE001 - the student's forward may raise anything; say what
            problem = f"running {name} on a batch shaped (2, 5, {d}) raised {type(e).__name__}: {_first_line(e)}"
    facts = (f"{name} is right: {count:,} parameters = 2md + d + m (d={d}, m={m}); same outputs as adapterlib.Adapter "
             f"on the same weights; exactly h at zero weights; near-identity init (weight std "
             f"{spreads[0]:.1e} / {spreads[1]:.1e}, biases 0)")
    return problem, facts


def check_adapter(adapter_cls, d: int = 384, m: int = 64, std: float = 1e-2) -> None:
    """Check a student's bottleneck adapter class, built as `adapter_cls(d, m)`, against adapterlib.Adapter.

    Checked in this order: it builds; 2md + d + m parameters; nn.Linear layers `down` (d -> m) and
    `up` (m -> d); near-identity init (truncated normal with `std`, zero biases); the same outputs as
    adapterlib.Adapter on the same (random, non-small) weights, in eval and train mode; exactly the
    identity with all parameters at zero. The global random state is left as it was.
    """
    with torch.random.fork_rng():
        torch.manual_seed(0)
        problem, facts = _adapter_problem(adapter_cls, d, m, std)
    _report(problem, facts)


# ---------------------------------------------------------------------------------------------
# Exercise 2: placing two adapters in one transformer layer
# ---------------------------------------------------------------------------------------------

def _is_adapter(module: nn.Module) -> bool:
    return isinstance(getattr(module, "down", None), nn.Linear) and isinstance(getattr(module, "up", None), nn.Linear)


def _replaced(original: nn.Module, mine: nn.Module) -> list[str]:
    """Paths of modules of `original` that `mine` holds as another type (outermost only)."""
    found = []
    for path, module in original.named_modules():
        if path and not any(path.startswith(p + ".") for p in found):
            try:
                if type(mine.get_submodule(path)) is not type(module):
                    found.append(path)
            except AttributeError:
                found.append(path)
    return found


def _host_problem(host: str, layer: nn.Module, expected: dict[str, str]) -> str | None:
    """What is wrong with an adapter wrapping `layer.<host>`, or None at a paper position."""
    target = next((p for p in expected if p == host), None)
    if target:
        return None
    original = layer.get_submodule(host)
    sibling = next((p for p in expected if p.rpartition(".")[0] == host.rpartition(".")[0]), None)
    if sibling and isinstance(original, nn.Linear):
        return (f"an adapter wraps `{host}`, the output projection itself, so it runs before the dropout; "
                f"wrap `{sibling}`, the dropout that follows it")
    if sibling and isinstance(original, nn.LayerNorm):
        return (f"an adapter wraps `{host}`, so it runs after the residual add and LayerNorm; "
                f"wrap `{sibling}` (before them)")
    inside = next((p for p in expected if p.startswith(host + ".")), None)
    if inside:
        return (f"an adapter wraps all of `{host}`, so it runs after the residual add and LayerNorm; wrap `{inside}` "
                f"(before them)")
    return f"an adapter sits at `{host}`; the paper's positions are `{'` and `'.join(expected)}`"


def _hooked(original: nn.Module, mine: nn.Module) -> list[str]:
    """Paths of modules of `original` to which the student's placement added a forward hook (or pre-hook)."""
    return [path for path, module in mine.named_modules() if path and (module._forward_hooks or
            module._forward_pre_hooks) and _has(original, path)]


def _has(model: nn.Module, path: str) -> bool:
    try:
        model.get_submodule(path)
        return True
    except AttributeError:
        return False


def _nearest(path: str, hooked: list[str]) -> str | None:
    """The hooked module an adapter stored elsewhere serves: the one sharing the longest path prefix (an adapter
    at `attention.output.adapter` hooked onto `attention.output.dropout`), if exactly one does."""
    def shared(h):
        pairs = zip(h.split("."), path.split("."), strict=False)   # the paths' lengths differ
        return sum(1 for _ in itertools.takewhile(lambda ab: ab[0] == ab[1], pairs))
    if not hooked:
        return None
    best = max(shared(h) for h in hooked)
    closest = [h for h in hooked if shared(h) == best]
    return closest[0] if best > 0 and len(closest) == 1 else None


def _locate(place, model: nn.Module, m: int, index: int):
    """Run the student's placement on a copy of `model`; return (problem, copy, {position: adapter})."""
    mine, placement = copy.deepcopy(model).eval(), placement_for(model)
    layer, original = transformer_layers(mine)[index], transformer_layers(model)[index]
    expected = {placement.attention: "attention", placement.ffn: "ffn"}
    try:
        place(layer, model.config.hidden_size, m)
    except Exception as e:  # noqa: BLE001 - the student's code may raise anything; say what
        return f"{getattr(place, '__name__', 'the placement')} raised {type(e).__name__}: {e}", None, {}
    adapters = [(path, a) for path, a in layer.named_modules() if _is_adapter(a)]
    if len(adapters) != 2:
        return (f"found {len(adapters)} adapters (modules with `down` and `up` layers) in the layer, expected 2: "
                f"one wrapping `{'` and one wrapping `'.join(expected)}`"), None, {}
    hosts = _replaced(original, layer)
    hooked = _hooked(original, layer)
    found = {}
    for path, adapter in adapters:
        host = (next((h for h in hosts + hooked if path.startswith(h + ".") or path == h), None)
                or _nearest(path, hooked))
        if host is None:
            return (f"the adapter at `{path}` replaces no module on the data path, so it never runs: wrap the "
                    f"dropout (`{'`, `'.join(expected)}`)"), None, {}
        problem = _host_problem(host, original, expected)
        if problem:
            return problem, None, {}
        if path == host or not any(isinstance(x, type(original.get_submodule(host)))
                                   for x in layer.get_submodule(host).modules()):
            return (f"the adapter replaces `{host}` instead of wrapping it: the dropout no longer runs; keep it and "
                    f"run the adapter on its output"), None, {}
        if expected[host] in found:
            return f"two adapters wrap `{host}`; one goes in each sub-layer", None, {}
        found[expected[host]] = adapter
    return None, mine, found


def _logits(model: nn.Module, batch: dict, train: bool) -> torch.Tensor:
    model.train(train)
    torch.manual_seed(1)  # the same dropout masks in both models, as long as they draw them in the same order
    with torch.no_grad():
        return model(**batch).logits


def _placement_problem(place, model: nn.Module, m: int, index: int) -> tuple[str | None, str]:
    problem, mine, adapters = _locate(place, model, m, index)
    if problem:
        return problem, ""
    ref = add_adapters(copy.deepcopy(model), AdapterConfig(size=m, layers=[index]))
    ids = torch.randint(5, model.config.vocab_size, (2, 12))
    batch = dict(input_ids=ids, attention_mask=torch.ones_like(ids))
    for _, position, slot in adapter_slots(ref):
        _randomise_(slot.adapter.down, slot.adapter.up)
        try:
            adapters[position].load_state_dict(slot.adapter.state_dict())
        except Exception as e:  # noqa: BLE001 - the student's adapter may hold other weights; say so
            return (f"the {position} adapter does not hold adapterlib.Adapter's weights (down, up): "
                    f"{type(e).__name__}: {_first_line(e)}"), ""
    for train in (False, True):
        want = _logits(ref, batch, train)
        try:
            got = _logits(mine, batch, train)
        except Exception as e:  # noqa: BLE001 - the student's placement may break the forward pass; say how
            return f"the model with your adapters raised {type(e).__name__} on a batch: {_first_line(e)}", ""
        if not torch.allclose(got, want, rtol=1e-4, atol=1e-5):
            mode = ("in train mode (same in eval mode): the wrapper must run the dropout first, then the adapter "
                    "on its output") if train else "in eval mode"
            return (f"logits differ from add_adapters' with the same adapter weights (max |diff| "
                    f"{(got - want).abs().max():.2e}) {mode}"), ""
    with torch.no_grad():
        for p in (p for a in adapters.values() for p in a.parameters()):
            p.zero_()
    enable_adapters(ref, layers=[])  # every slot runs only the module it wraps: the base model's computation
    if not torch.equal(_logits(mine, batch, False), _logits(ref, batch, False)):
        return "with every adapter parameter at zero the logits are not exactly the base model's", ""
    p = placement_for(model)
    return None, (f"{getattr(place, '__name__', 'the placement')} is right: in layer {index} one adapter wraps "
                  f"`{p.attention}` and one `{p.ffn}`, before each residual add and LayerNorm; the same logits as "
                  f"add_adapters with the same weights, in eval and train mode; the base model's logits exactly "
                  f"at zero weights")


def check_placement(place, model: nn.Module, m: int = 64, layer: int = 0) -> None:
    """Check `place(layer_module, d, m)`, which should put two adapters into one transformer layer in place.

    `place` runs on layer `layer` of a copy of `model` (a HuggingFace sequence classifier that
    adapterlib.inject knows); `model` itself is not changed. Adapters are found as modules with
    `down` and `up` linear layers. They must wrap the dropout after each sub-layer's output projection,
    so the layer computes LayerNorm(x + adapter(dropout(dense(h)))), and give the same logits as
    `add_adapters` with the same adapter weights, in eval and train mode (same dropout masks).
    """
    with torch.random.fork_rng():
        torch.manual_seed(0)
        problem, facts = _placement_problem(place, model, m, layer)
    _report(problem, facts)


