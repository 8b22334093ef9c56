"""adapterlib.course.exercises: each check accepts the reference solution and names the mistake in wrong ones."""
import json
import re
from pathlib import Path

import pytest
import torch
from torch import nn

from adapterlib import AdapterConfig
from adapterlib.course.exercises import (
    check_adapter,
    check_placement,
    check_value,
    clear_solutions,
)
from adapterlib.modules import Adapter

D, M = 48, 8


def make_adapter_cls(act=nn.GELU, skip=True, init="trunc", up_bias=True, layernorm=False, dropout=0.0,
                     act_after_up=False, bias_init=0.0):
    """A student's adapter class; the defaults give the right answer, each argument one mistake."""
    class StudentAdapter(nn.Module):
        def __init__(self, d, m, std=1e-2):
            super().__init__()
            self.down, self.act, self.up = nn.Linear(d, m), act(), nn.Linear(m, d, bias=up_bias)
            self.norm = nn.LayerNorm(d) if layernorm else nn.Identity()
            self.drop = nn.Dropout(dropout)
            for linear in (self.down, self.up):
                if init == "trunc":
                    nn.init.trunc_normal_(linear.weight, std=std, a=-2 * std, b=2 * std)
                elif init == "normal":
                    nn.init.normal_(linear.weight, std=std)
                elif init == "zero":
                    nn.init.zeros_(linear.weight)
                if init != "default" and linear.bias is not None:
                    nn.init.constant_(linear.bias, bias_init)

        def forward(self, h):
            z = self.up(self.act(self.down(h))) if not act_after_up else self.act(self.up(self.down(h)))
            z = self.drop(self.norm(z))
            return h + z if skip else z

    return StudentAdapter


def verdict(capsys, check, *args, **kwargs):
    """(passed, the one printed line)."""
    try:
        check(*args, **kwargs)
        passed = True
    except AssertionError as e:
        passed = False
        message = str(e)
    out = capsys.readouterr().out.strip()
    assert "\n" not in out, "a check prints exactly one line"
    if not passed:
        assert out == f"✗ {message}"  # the printed line is the assertion's message
    return passed, out


def test_reference_adapter_and_adapterlib_pass(capsys):
    for cls in (make_adapter_cls(), lambda d, m: Adapter(d, AdapterConfig(size=m))):
        passed, line = verdict(capsys, check_adapter, cls, d=D, m=M)
        assert passed and line.startswith("✓ ") and f"{2 * M * D + D + M:,} parameters" in line


def test_adapterlib_code_init_passes_with_its_std(capsys):
    code_init = lambda d, m: Adapter(d, AdapterConfig(size=m, init="adapter-bert"))  # noqa: E731
    assert verdict(capsys, check_adapter, code_init, d=D, m=M, std=1e-3)[0]
    passed, line = verdict(capsys, check_adapter, code_init, d=D, m=M)  # the paper's 1e-2 expected
    assert not passed and "down.weight has std" in line and "expected about 0.0088" in line


@pytest.mark.parametrize("mistake, expected", [
    (dict(skip=False), "no skip connection"),
    (dict(act=nn.Identity), "no nonlinearity between the projections"),
    (dict(act=nn.ReLU), "the nonlinearity behaves like ReLU; the official code uses GELU"),
    (dict(act=nn.Tanh), "the nonlinearity behaves like tanh"),
    (dict(act=lambda: nn.GELU(approximate="tanh")), "GELU with approximate='tanh'"),
    (dict(act_after_up=True), "the nonlinearity comes after the up-projection"),
    (dict(up_bias=False), f"parameter count {2 * M * D + M:,}, expected {2 * M * D + D + M:,} = 2md + d + m: "
                          "is the up-projection missing its bias?"),
    (dict(layernorm=True), "a LayerNorm inside the adapter?"),
    (dict(dropout=0.5), "the output changes in train() mode: dropout inside the adapter?"),
    (dict(init="default"), "weights too large: PyTorch's default nn.Linear init?"),
    (dict(init="normal"), "not truncated at ±2 std?"),
    (dict(init="zero"), "starts at exactly zero"),
    (dict(bias_init=0.1), "down.bias is not zero at init"),
])
def test_wrong_adapters_are_rejected_with_the_reason(capsys, mistake, expected):
    passed, line = verdict(capsys, check_adapter, make_adapter_cls(**mistake), d=D, m=M)
    assert not passed and line.startswith("✗ ") and expected in line


def test_adapter_that_does_not_build_or_misnames_its_layers(capsys):
    class Broken(nn.Module):
        def __init__(self, d, m):
            raise ValueError("not yet")
    assert "Broken(48, 8) raised ValueError: not yet" in verdict(capsys, check_adapter, Broken, d=D, m=M)[1]

    class Named(make_adapter_cls()):
        def __init__(self, d, m):
            super().__init__(d, m)
            self.proj_down = self.down
            del self.down
    assert "needs an nn.Linear(48, 8) named `down`" in verdict(capsys, check_adapter, Named, d=D, m=M)[1]


def test_checks_leave_the_random_state_alone(capsys):
    torch.manual_seed(3)
    before = torch.get_rng_state()
    verdict(capsys, check_adapter, make_adapter_cls(), d=D, m=M)
    assert torch.equal(torch.get_rng_state(), before)


# ----------------------------------------------------------------------------- placement

class After(nn.Module):
    def __init__(self, inner, adapter, order="inner-first"):
        super().__init__()
        self.inner, self.adapter, self.order = inner, adapter, order

    def forward(self, x):
        return self.adapter(self.inner(x)) if self.order == "inner-first" else self.inner(self.adapter(x))


def make_place(attention="attention.output.dropout", ffn="output.dropout", wrap=True, order="inner-first"):
    """A student's place_adapters(layer, d, m); the defaults are the right answer."""
    def place_adapters(layer, d, m):
        for path in (attention, ffn):
            if path is None:
                continue
            parent_path, _, attr = path.rpartition(".")
            parent = layer.get_submodule(parent_path) if parent_path else layer
            adapter = Adapter(d, AdapterConfig(size=m))
            setattr(parent, attr, After(getattr(parent, attr), adapter, order) if wrap else adapter)
    return place_adapters


def test_reference_placement_passes_and_leaves_the_model_alone(capsys, make_tiny):
    model = make_tiny()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    passed, line = verdict(capsys, check_placement, make_place(), model, m=M, layer=1)
    assert passed and "wraps `attention.output.dropout` and one `output.dropout`" in line
    assert model.state_dict().keys() == before.keys()
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items()) and not model.training


@pytest.mark.parametrize("mistake, expected", [
    (dict(attention="attention.output.dense"), "wraps `attention.output.dense`, the output projection itself, so it "
                                               "runs before the dropout; wrap `attention.output.dropout`"),
    (dict(ffn="output.dense"), "runs before the dropout; wrap `output.dropout`"),
    (dict(attention="attention.output.LayerNorm"), "wraps `attention.output.LayerNorm`, so it runs after the "
                                                   "residual add and LayerNorm"),
    (dict(ffn="output"), "wraps all of `output`, so it runs after the residual add and LayerNorm"),
    (dict(attention="intermediate.intermediate_act_fn"), "sits at `intermediate.intermediate_act_fn`"),
    (dict(order="adapter-first"), "logits differ from add_adapters' with the same adapter weights"),
    (dict(order="adapter-first"), "in train mode (same in eval mode)"),
    (dict(wrap=False), "replaces `attention.output.dropout` instead of wrapping it"),
    (dict(ffn=None), "found 1 adapters"),
    (dict(ffn="attention.output.dropout"), "two adapters wrap `attention.output.dropout`"),
])
def test_wrong_placements_are_rejected_with_the_reason(capsys, make_tiny, mistake, expected):
    passed, line = verdict(capsys, check_placement, make_place(**mistake), make_tiny(), m=M)
    assert not passed and expected in line


def test_placement_that_raises_or_adds_unused_adapters(capsys, make_tiny):
    def raises(layer, d, m):
        layer.attention.output.dropout = After(layer.attention.output.droput, Adapter(d, AdapterConfig(size=m)))
    assert "raises raised AttributeError" in verdict(capsys, check_placement, raises, make_tiny(), m=M)[1]

    def unused(layer, d, m):  # attributes that no forward ever calls
        layer.attention.output.adapter = Adapter(d, AdapterConfig(size=m))
        layer.output.adapter = Adapter(d, AdapterConfig(size=m))
    line = verdict(capsys, check_placement, unused, make_tiny(), m=M)[1]
    assert "the adapter at `attention.output.adapter` replaces no module on the data path" in line


# ----------------------------------------------------------------------------- numbers and notebook text

def test_check_value(capsys):
    assert verdict(capsys, check_value, "count", 605_954, 605_954) == (True, "✓ count: 605,954 is right")
    assert verdict(capsys, check_value, "count", 302_977, 605_954) == (
        False, "✗ count: 302,977, expected 605,954 (0.5x the right value)")
    assert verdict(capsys, check_value, "ratio", 1.2004, 1.2, rtol=1e-3)[0]
    assert not verdict(capsys, check_value, "ratio", 1.21, 1.2, rtol=1e-3)[0]
    assert "got None (NoneType), expected a number" in verdict(capsys, check_value, "count", None, 3)[1]


def test_clear_solutions_gives_nbgraders_gap():
    source = "def f(x):\n    ### BEGIN SOLUTION\n    return x + 1\n    ### END SOLUTION\n\ny = 2\n"
    assert clear_solutions(source) == "def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n\ny = 2\n"


def test_notebook_01_shows_students_the_gaps_and_runs_the_solutions():
    """Each solution cell is collapsed, tagged, followed by a check, and its task cell shows the student text."""
    cells = json.loads((Path(__file__).resolve().parents[1] / "notebooks" / "01_adapter_anatomy.ipynb").read_text())["cells"]
    solutions = [i for i, c in enumerate(cells) if "solution" in c["metadata"].get("tags", [])]
    assert len(solutions) >= 3
    for i in solutions:
        source = "".join(cells[i]["source"])
        assert "### BEGIN SOLUTION" in source and cells[i]["metadata"]["jupyter"]["source_hidden"] is True
        assert cells[i]["metadata"]["nbgrader"]["solution"] is True
        task = "".join(cells[i - 1]["source"])
        assert cells[i - 1]["cell_type"] == "markdown" and clear_solutions(source) in task
        check = "".join(cells[i + 1]["source"])
        assert re.search(r"^check_(adapter|placement|value)\(", check, re.M), f"cell {i + 1} should check cell {i}"


def test_exercises_import_only_the_core():
    """The checks live beside the core: importing them loads no training, data, sweep or course code."""
    import subprocess
    import sys

    code = "import adapterlib.course.exercises, sys; print(sorted(sys.modules))"
    modules = eval(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    ours = {m for m in modules if m == "adapterlib" or m.startswith("adapterlib.")}
    core = {"config", "modules", "inject", "params", "policies", "errors", "_version"}
    course = {"course", "course.presets", "course.exercises"}  # the course package's light __init__ (presets)
    assert ours <= {"adapterlib"} | {f"adapterlib.{m}" for m in core | course}, sorted(ours)
    assert not {"pandas", "datasets", "matplotlib", "dask", "papermill", "sklearn"} & set(modules)
