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
    check_train_step,
    check_trainable,
    check_value,
    clear_solutions,
)
from adapterlib.inject import adapter_slots
from adapterlib.modules import Adapter
from adapterlib.policies import set_trainable

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
    assert "Broken(48, 8) raised ValueError:" in verdict(capsys, check_adapter, Broken, d=D, m=M)[1]

    class Named(make_adapter_cls()):
        def __init__(self, d, m):
            super().__init__(d, m)
            self.proj_down = self.down
            del self.down
    assert "nn.Linear(48, 8) named `down`" in verdict(capsys, check_adapter, Named, d=D, m=M)[1]


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
    assert "`attention.output.adapter` replaces no module" in line


# ----------------------------------------------------------------------------- numbers and notebook text

def test_check_value(capsys):
    assert verdict(capsys, check_value, "count", 605_954, 605_954) == (True, "✓ count: 605,954 is right")
    assert verdict(capsys, check_value, "count", 302_977, 605_954) == (
        False, "✗ count: 302,977, expected 605,954 (0.5x the right value)")
    assert verdict(capsys, check_value, "ratio", 1.2004, 1.2, rtol=1e-3)[0]
    assert not verdict(capsys, check_value, "ratio", 1.21, 1.2, rtol=1e-3)[0]
    assert "got None (NoneType)" in verdict(capsys, check_value, "count", None, 3)[1]


def test_clear_solutions_gives_nbgraders_gap():
    source = "def f(x):\n    ### BEGIN SOLUTION\n    return x + 1\n    ### END SOLUTION\n\ny = 2\n"
    assert clear_solutions(source) == "def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n\ny = 2\n"


@pytest.mark.parametrize("notebook, n_exercises, checks", [
    ("01_adapter_anatomy.ipynb", 3, "adapter|placement|value"),
    ("02_initialisation_ablation.ipynb", 2, "trainable|train_step"),
])
def test_notebooks_show_students_the_gaps_and_run_the_solutions(notebook, n_exercises, checks):
    """Each solution cell is collapsed, tagged, followed by a check, and its task cell shows the student text."""
    cells = json.loads((Path(__file__).resolve().parents[1] / "notebooks" / notebook).read_text())["cells"]
    solutions = [i for i, c in enumerate(cells) if "solution" in c["metadata"].get("tags", [])]
    assert len(solutions) >= n_exercises
    for i in solutions:
        source = "".join(cells[i]["source"])
        assert "### BEGIN SOLUTION" in source and cells[i]["metadata"]["jupyter"]["source_hidden"] is True
        assert cells[i]["metadata"]["nbgrader"]["solution"] is True
        task = "".join(cells[i - 1]["source"])
        assert cells[i - 1]["cell_type"] == "markdown" and clear_solutions(source) in task
        check = "".join(cells[i + 1]["source"])
        assert re.search(rf"^check_({checks})\(", check, re.M), f"cell {i + 1} should check cell {i}"


def test_exercises_import_only_the_core():
    """The checks live beside the core: importing them loads no training, data, sweep or course code."""
    import subprocess
    import sys

    code = "import adapterlib.course.exercises, sys; print(sorted(sys.modules))"
    modules = eval(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    ours = {m for m in modules if m == "adapterlib" or m.startswith("adapterlib.")}
    core = {"config", "modules", "inject", "params", "policies", "errors", "paths", "_version"}
    course = {"course", "course.presets", "course.exercises", "course.exercises._common", "course.exercises.anatomy",
              "course.exercises.training"}  # the course package's light __init__ (presets), the checks
    assert ours <= {"adapterlib"} | {f"adapterlib.{m}" for m in core | course}, sorted(ours)
    assert not {"pandas", "datasets", "matplotlib", "dask", "papermill", "sklearn"} & set(modules)



# ----------------------------------------------------------------------------- notebook 02: the trainable set

def make_select(adapters=True, layer_norms=True, embedding_norm=True, head=True, pooler=False, freeze_first=True):
    """A student's select_trainable(model); the defaults are the right answer, each argument one mistake."""
    def select_trainable(model):
        if freeze_first:
            for p in model.parameters():
                p.requires_grad_(False)
        for name, p in model.named_parameters():
            if (adapters and ".adapter." in name) or (head and name.startswith("classifier.")) \
                    or (pooler and ".pooler." in name) or ("LayerNorm" in name and (
                        embedding_norm if "embeddings" in name else layer_norms)):
                p.requires_grad_(True)
    return select_trainable


def test_reference_selection_passes_and_leaves_the_model_alone(capsys, make_tiny):
    model = make_tiny()
    passed, line = verdict(capsys, check_trainable, make_select(), model, m=M)
    assert passed and line.startswith("✓ select_trainable is right: ") and "(the embeddings' included)" in line
    assert all(p.requires_grad for p in model.parameters()) and not adapter_slots(model)  # a copy was checked
    set_adapterlib = lambda model: set_trainable(model, "adapter")  # noqa: E731 - adapterlib's own passes too
    assert verdict(capsys, check_trainable, set_adapterlib, model, m=M)[0]


@pytest.mark.parametrize("mistake, expected", [
    (dict(embedding_norm=False), "the embedding LayerNorm is frozen (`bert.embeddings.LayerNorm.bias`, "
                                 "`bert.embeddings.LayerNorm.weight`): the paper trains every LayerNorm"),
    (dict(layer_norms=False), "8 LayerNorm tensors of the transformer layers are frozen"),
    (dict(pooler=True), "the pooler is trained (`bert.pooler.dense.bias`, `bert.pooler.dense.weight`): "
                        "adapter-bert keeps it frozen"),
    (dict(head=False), "the classifier head is frozen"),
    (dict(adapters=False), "the adapters are frozen"),
    (dict(freeze_first=False), "nothing pre-trained is frozen"),
])
def test_wrong_selections_are_rejected_with_the_reason(capsys, make_tiny, mistake, expected):
    passed, line = verdict(capsys, check_trainable, make_select(**mistake), make_tiny(), m=M)
    assert not passed and expected in line


def test_selection_problems_are_all_named_and_partial_ones_counted(capsys, make_tiny):
    line = verdict(capsys, check_trainable, make_select(embedding_norm=False, pooler=True), make_tiny(), m=M)[1]
    assert "LayerNorm is frozen" in line and "pooler is trained" in line

    def attention_only(model):
        make_select()(model)
        model.bert.encoder.layer[0].attention.self.query.weight.requires_grad_(True)
    line = verdict(capsys, check_trainable, attention_only, make_tiny(), m=M)[1]
    assert "1 pre-trained tensors" in line and "(`bert.encoder.layer.0.attention.self.query.weight`)" in line

    def raises(model):
        model.classifer.requires_grad_(True)
    assert "raises(model) raised AttributeError" in verdict(capsys, check_trainable, raises, make_tiny(), m=M)[1]


# ----------------------------------------------------------------------------- notebook 02: one training step

def make_step(clip="norm", zero_grad=True, scheduler_first=False, scheduler=True, backward=True, step=True,
              returns="item", unfreeze=False):
    """A student's train_step; the defaults are the right answer, each argument one mistake."""
    def train_step(model, batch, optimizer, sched, max_grad_norm=1.0):
        if unfreeze:
            model.requires_grad_(True)
        loss = model(**batch).loss
        if backward:
            loss.backward()
        trainable = [p for p in model.parameters() if p.requires_grad]
        if clip == "norm":
            torch.nn.utils.clip_grad_norm_(trainable, max_grad_norm)
        elif clip == "norm at 1":
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        elif clip == "value":
            torch.nn.utils.clip_grad_value_(trainable, max_grad_norm)
        if scheduler and scheduler_first:
            sched.step()
        if step:
            optimizer.step()
        if scheduler and not scheduler_first:
            sched.step()
        if zero_grad:
            optimizer.zero_grad()
        returned = {"item": lambda: loss.item(), "tensor": lambda: loss, "after": lambda: model(**batch).loss.item()}
        return returned[returns]()
    return train_step


def test_reference_step_passes(capsys):
    passed, line = verdict(capsys, check_train_step, make_step())
    assert passed and line.startswith("✓ train_step is right: 2 steps") and "frozen weights unchanged" in line


def test_model_zero_grad_at_the_start_is_fine(capsys):
    def train_step(model, batch, optimizer, scheduler, max_grad_norm=1.0):
        model.zero_grad()
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)  # frozen ones have no gradient: same norm
        optimizer.step()
        scheduler.step()
        return float(loss)
    assert verdict(capsys, check_train_step, train_step)[0]


@pytest.mark.parametrize("mistake, expected", [
    (dict(clip=None), "the gradients are not clipped: call torch.nn.utils.clip_grad_norm_"),
    (dict(clip="norm at 1"), "clipped at 1.0, not at the max_grad_norm the step is given"),
    (dict(clip="value"), "each gradient entry is clipped (clip_grad_value_)"),
    (dict(zero_grad=False),
     "the gradients are never reset, so the second step uses the sum of both batches' gradients"),
    (dict(scheduler_first=True), "scheduler.step() runs before optimizer.step()"),
    (dict(scheduler=False), "scheduler.step() ran 0 times in 2 calls"),
    (dict(backward=False), "no gradient is computed: call loss.backward()"),
    (dict(step=False), "optimizer.step() is never called"),
    (dict(returns="tensor"), "train_step returns a Tensor: return the loss as a Python float (loss.item())"),
    (dict(returns="after"), "the batches' losses before each step are"),
    (dict(unfreeze=True), "frozen weights changed (`bert.embeddings.position_embeddings.weight`"),
])
def test_wrong_steps_are_rejected_with_the_reason(capsys, mistake, expected):
    passed, line = verdict(capsys, check_train_step, make_step(**mistake))
    assert not passed and expected in line


def test_step_that_raises_or_steps_twice(capsys):
    def raises(model, batch, optimizer, scheduler, max_grad_norm=1.0):
        return model(batch).loss.item()
    assert "raises(model, batch, optimizer, scheduler, max_grad_norm)" in verdict(capsys, check_train_step, raises)[1]

    def twice(model, batch, optimizer, scheduler, max_grad_norm=1.0):
        loss = make_step()(model, batch, optimizer, scheduler, max_grad_norm)
        optimizer.step()
        return loss
    assert "optimizer.step() 4 times and backward() 2" in verdict(capsys, check_train_step, twice)[1]


def test_step_check_leaves_the_random_state_alone(capsys):
    torch.manual_seed(3)
    before = torch.get_rng_state()
    verdict(capsys, check_train_step, make_step())
    assert torch.equal(torch.get_rng_state(), before)


# ----------------------------------------------------------------------------- answers the checkers misjudged

def test_check_value_accepts_numpy_and_torch_integers(capsys):
    import numpy as np

    for got in (np.int64(605_954), torch.tensor(605_954), np.array(605_954), torch.tensor([605_954]).sum()):
        assert verdict(capsys, check_value, "count", got, 605_954) == (True, "✓ count: 605,954 is right")
    assert not verdict(capsys, check_value, "count", np.int64(3), 605_954)[0]
    assert "expected a number" in verdict(capsys, check_value, "count", torch.tensor([1, 2]), 3)[1]
    assert "expected a number" in verdict(capsys, check_value, "count", np.bool_(True), 1)[1]


def test_an_adapter_with_a_hard_coded_size_is_rejected(capsys):
    right = make_adapter_cls()

    class Fixed(right):
        def __init__(self, d, m, std=1e-2):
            super().__init__(D, M, std)  # ignores its arguments: always 48 -> 8 -> 48
    Fixed.__name__ = "Fixed"
    passed, line = verdict(capsys, check_adapter, Fixed, d=D, m=M)
    assert not passed and "Fixed(24, 5) has" in line and "fixed numbers" in line


def test_an_adapter_whose_forward_raises_is_named_not_a_raw_error(capsys):
    right = make_adapter_cls()

    class Broken(right):
        def forward(self, h):
            return self.up(h)  # d -> ... shape error inside PyTorch
    passed, line = verdict(capsys, check_adapter, Broken, d=D, m=M)
    assert not passed and "raised RuntimeError" in line


def test_a_step_in_eval_mode_is_rejected(capsys):
    def eval_step(model, batch, optimizer, scheduler, max_grad_norm=1.0):
        model.eval()  # dropout off while training
        return make_step()(model, batch, optimizer, scheduler, max_grad_norm)

    def eval_then_train(model, batch, optimizer, scheduler, max_grad_norm=1.0):
        model.eval()
        loss = make_step()(model, batch, optimizer, scheduler, max_grad_norm)
        model.train()  # puts the mode back, but the step trained without dropout
        return loss
    for step in (eval_step, eval_then_train):
        passed, line = verdict(capsys, check_train_step, step)
        assert not passed and "eval mode" in line and "dropout" in line, line


def make_hook_place(attention="attention.output.dropout", ffn="output.dropout", pre=False):
    """place_adapters with forward hooks: each adapter a child of the sub-layer, hooked onto its dropout."""
    def place_with_hooks(layer, d, m):
        for path in (attention, ffn):
            parent_path, _, attr = path.rpartition(".")
            parent = layer.get_submodule(parent_path) if parent_path else layer
            parent.adapter = adapter = Adapter(d, AdapterConfig(size=m))
            target = getattr(parent, attr)
            if pre:
                target.register_forward_pre_hook(lambda mod, args, a=adapter: (a(args[0]),))
            else:
                target.register_forward_hook(lambda mod, args, out, a=adapter: a(out))
    return place_with_hooks


def test_a_placement_with_forward_hooks_is_accepted(capsys, make_tiny):
    passed, line = verdict(capsys, check_placement, make_hook_place(), make_tiny(), m=M)
    assert passed, line
    passed, line = verdict(capsys, check_placement, make_hook_place(attention="attention.output.dense"), make_tiny(),
                           m=M)
    assert not passed and "wraps `attention.output.dense`" in line and "projection itself" in line
    passed, line = verdict(capsys, check_placement, make_hook_place(pre=True), make_tiny(), m=M)
    assert not passed and "in train mode" in line  # the adapter runs before the dropout


# --- the student version: solutions removed, each check failing (not crashing) until its gap is filled ---

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
WITH_EXERCISES = {"01_adapter_anatomy.ipynb": 3, "02_initialisation_ablation.ipynb": 2}


def test_a_top_level_gap_leaves_the_answer_unset_and_the_check_says_so(capsys):
    source = "L = 2\n### BEGIN SOLUTION\nn = 2 * L\nmy_count = n + 1\n### END SOLUTION\n"
    gap = clear_solutions(source)
    assert gap == "L = 2\n# YOUR CODE HERE\nmy_count = ...\n"
    namespace = {}
    exec(gap, namespace)  # the cell runs: Run All reaches the check
    with pytest.raises(AssertionError, match="not computed yet"):
        check_value("count", namespace["my_count"], 5)


@pytest.mark.parametrize("name, n", WITH_EXERCISES.items())
def test_student_version_has_every_gap_and_no_answer(name, n):
    import nbformat

    from adapterlib.course.student import exercises, student_notebook

    solved = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    student = student_notebook(solved)
    found = exercises(solved)
    assert len(found) == n and exercises(student) == found
    for solution, check, _ in found:
        assert student.cells[solution].source == clear_solutions(solved.cells[solution].source)
        assert "BEGIN SOLUTION" not in student.cells[solution].source
        assert "source_hidden" not in student.cells[solution].metadata.get("jupyter", {})
        assert student.cells[check].source == solved.cells[check].source
    assert all(c.outputs == [] for c in student.cells if c.cell_type == "code")
    assert [c.source for c in student.cells if "solution" not in c.metadata.get("tags", [])] == \
           [c.source for c in solved.cells if "solution" not in c.metadata.get("tags", [])]


def test_course_exercises_writes_the_student_notebooks(tmp_path, capsys):
    import nbformat

    from adapterlib.cli import main
    from adapterlib.course.student import student_notebook

    assert main(["course", "--exercises", "--output-dir", str(tmp_path)]) == 0
    written = sorted(p.name for p in (tmp_path / "exercises").iterdir())
    assert written == sorted(WITH_EXERCISES)
    for name in written:
        expected = nbformat.writes(student_notebook(nbformat.read(NOTEBOOK_DIR / name, as_version=4))) + "\n"
        assert (tmp_path / "exercises" / name).read_text() == expected
    (tmp_path / "file").write_text("x")
    assert main(["course", "--exercises", "--output-dir", str(tmp_path / "file")]) == 2
    assert (tmp_path / "file").read_text() == "x" and len(capsys.readouterr().err.splitlines()) == 1


@pytest.mark.slow
@pytest.mark.parametrize("name, index", [(n, i) for n, k in WITH_EXERCISES.items() for i in range(k)])
def test_each_blank_fails_its_own_check(name, index, tmp_path):
    """The notebook solved except one gap, run at smoke scale: it stops at that gap's check cell, on the
    check's AssertionError (the mistake named), not on an error of the student's blank code."""
    import nbformat
    import papermill as pm

    from adapterlib.course.student import exercises, with_one_blank

    nb = with_one_blank(nbformat.read(NOTEBOOK_DIR / name, as_version=4), index)
    check = exercises(nbformat.read(NOTEBOOK_DIR / name, as_version=4))[index][1]
    path = tmp_path / name
    nbformat.write(nb, path)
    with pytest.raises(pm.PapermillExecutionError) as failed:
        pm.execute_notebook(str(path), str(tmp_path / "out.ipynb"), parameters={"preset": "smoke"},
                            kernel_name="python3", cwd=str(NOTEBOOK_DIR), progress_bar=False)
    assert failed.value.ename == "AssertionError"
    out = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    failing = [i for i, c in enumerate(out.cells) if any(o.get("output_type") == "error" for o in c.get("outputs", []))]
    shift = len(out.cells) - len(nb.cells)  # papermill's injected-parameters cell
    assert failing == [check + shift]
    printed = "".join(o.get("text", "") for o in out.cells[check + shift].outputs if o.get("output_type") == "stream")
    assert printed.startswith("✗ ")  # one line naming the mistake


def test_an_unfilled_gap_is_named_by_every_check(capsys, make_tiny):
    """Each check, given the student version's function or class (its body raising NotImplementedError), fails
    with one line saying the gap is not written yet: never a raw NotImplementedError."""
    def gap(*args, **kwargs):
        raise NotImplementedError()

    class GapAdapter(nn.Module):
        def __init__(self, d, m, std=1e-2):
            super().__init__()
            raise NotImplementedError()

    for check in (lambda: check_adapter(GapAdapter, d=D, m=M), lambda: check_placement(gap, make_tiny(), m=M),
                  lambda: check_trainable(gap, make_tiny(), m=M), lambda: check_train_step(gap)):
        with pytest.raises(AssertionError, match="not written yet"):
            check()
        assert capsys.readouterr().out.count("\n") == 1
