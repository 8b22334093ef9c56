"""Checks for the course's build-it-yourself exercises (notebooks 01 and 02).

Each check compares the student's code with adapterlib's own and prints one line: what is right,
or exactly what is off. When something is off it also raises AssertionError, so a notebook run
(nbval, papermill) stops at a broken solution.

    check_adapter(MyAdapter)                        # the bottleneck module, built as MyAdapter(d, m)
    check_placement(place_adapters, model)          # its two positions in one layer: place_adapters(layer, d, m)
    check_value("trainable parameters", got, expected)
    check_trainable(select_trainable, model)        # notebook 02: the paper's trained set, select_trainable(model)
    check_train_step(train_step)                    # notebook 02: train_step(model, batch, optimizer, scheduler, max_grad_norm)

Solutions sit in the notebook between nbgrader's `### BEGIN SOLUTION` / `### END SOLUTION` markers;
`clear_solutions` turns a solution into the text a student starts from, exactly as nbgrader does.
"""
from __future__ import annotations

import copy
import itertools
import math
import re

import torch
from torch import nn
from torch.nn import functional as F

from ..config import AdapterConfig
from ..inject import (
    adapter_slots,
    add_adapters,
    enable_adapters,
    placement_for,
    transformer_layers,
)
from ..modules import Adapter
from ..policies import param_groups, set_trainable

_SOLUTION = re.compile(r"^([ \t]*)### BEGIN SOLUTION[ \t]*\n.*?^[ \t]*### END SOLUTION[ \t]*$", re.M | re.S)
_TRUNCATED_STD = 0.8796  # std of a standard normal truncated at +-2, relative to the untruncated std


def clear_solutions(source: str) -> str:
    """The student's version of a solution cell: every BEGIN/END SOLUTION block becomes nbgrader's gap.

    Inside a function or method the gap raises NotImplementedError (the check names it). A gap at the top of
    a cell instead sets what the block's last line assigns to `...`, so the cell runs and the check after it
    says "not computed yet" rather than the notebook stopping on a NameError."""
    def gap(m: re.Match) -> str:
        indent = m[1]
        if indent:
            return f"{indent}# YOUR CODE HERE\n{indent}raise NotImplementedError()"
        names = _last_assigned(m[0])
        if not names:
            return "# YOUR CODE HERE\nraise NotImplementedError()"
        return f"# YOUR CODE HERE\n{' = '.join(names)} = ..."
    return _SOLUTION.sub(gap, source)


def _last_assigned(block: str) -> list[str]:
    """The names the last statement of a top-level solution block assigns (`x = ...` -> ["x"])."""
    import ast

    try:
        body = ast.parse(block).body
    except SyntaxError:
        return []
    last = body[-1] if body else None
    if isinstance(last, ast.Assign):
        return [t.id for t in last.targets if isinstance(t, ast.Name)]
    if isinstance(last, ast.AnnAssign) and isinstance(last.target, ast.Name):
        return [last.target.id]
    return []


def _report(problem: str | None, success: str) -> None:
    """Print the one-line verdict; raise AssertionError(problem) when there is one."""
    if problem and "raised NotImplementedError" in problem:  # the student version's gap, still unfilled
        problem = problem.rstrip(": ") + ": not written yet, fill the gap marked # YOUR CODE HERE"
    if problem:
        print(f"✗ {problem}")
        raise AssertionError(problem)
    print(f"✓ {success}")


def _fmt(x) -> str:
    return f"{x:,}" if isinstance(x, int) else f"{x:.6g}"


def _plain_number(x):
    """np.int64(3), torch.tensor(3), np.array(3.0) -> 3, 3, 3.0; anything else unchanged."""
    if isinstance(x, (bool, int, float)) or not hasattr(x, "item"):
        return x
    try:
        if getattr(x, "dtype", None) is not None and "bool" in str(x.dtype):
            return x
        if (x.numel() if callable(getattr(x, "numel", None)) else getattr(x, "size", 1)) != 1:
            return x
        value = x.item()
    except Exception:  # noqa: BLE001 - not a number after all: reported as such
        return x
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else x


def check_value(name: str, got, expected, rtol: float = 0.0) -> None:
    """Say whether a number the student computed equals `expected` (within relative tolerance `rtol`).

    A numpy or torch number (a 0-d array or tensor, np.int64, ...) counts as the Python number it holds."""
    got = _plain_number(got)
    if got is Ellipsis:
        problem = f"{name}: not computed yet (still `...`): replace the `...` with your code"
    elif isinstance(got, bool) or not isinstance(got, (int, float)):
        problem = f"{name}: got {got!r} ({type(got).__name__}), expected a number"
    elif (got == expected) if rtol == 0 else math.isclose(got, expected, rel_tol=rtol):
        problem = None
    else:
        ratio = f" ({got / expected:.3g}x the right value)" if expected else ""
        problem = f"{name}: {_fmt(got)}, expected {_fmt(expected)}{ratio}"
    _report(problem, "" if problem else f"{name}: {_fmt(got)} is right")


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
            return f"forward returned {getattr(out, 'shape', type(out).__name__)}, expected a tensor shaped like h {tuple(h.shape)}"
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
        return f"with every weight and bias at zero the output is not exactly h (max |diff| {(out - h).abs().max():.2e})"
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


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [""])[0]


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
        return f"an adapter wraps `{host}`, so it runs after the residual add and LayerNorm; wrap `{sibling}` (before them)"
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
        return sum(1 for _ in itertools.takewhile(lambda ab: ab[0] == ab[1], zip(h.split("."), path.split("."))))
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
        host = next((h for h in hosts + hooked if path.startswith(h + ".") or path == h), None) or _nearest(path, hooked)
        if host is None:
            return (f"the adapter at `{path}` replaces no module on the data path, so it never runs: wrap the "
                    f"dropout (`{'`, `'.join(expected)}`)"), None, {}
        problem = _host_problem(host, original, expected)
        if problem:
            return problem, None, {}
        if path == host or not any(isinstance(x, type(original.get_submodule(host))) for x in layer.get_submodule(host).modules()):
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
        problems.append(("the adapters are frozen" if whole else f"{len(part)} adapter tensors are frozen ({_names(part)})")
                        + ": they are what a new task trains")
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
    import warnings

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
            other = _run_steps(lambda *a: _reference_step(*a, mistake=mistake), base, batches, max_norm)[0]
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
    if not all(math.isclose(r, w, rel_tol=1e-5) for r, w in zip(returned, want_losses)):
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
