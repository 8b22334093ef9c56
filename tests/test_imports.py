"""`import adapterlib` is light and has no side effects; the CLI lists its commands without importing them;
one error base class (issue 16). Each check runs a fresh interpreter, so what it sees is what a user gets."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import adapterlib as al

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("accelerate", "datasets", "pandas", "sklearn", "scipy", "matplotlib", "dask", "papermill")


def _python(code: str) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout


def _heavy(modules) -> list[str]:
    return sorted({m.split(".")[0] for m in modules} & set(HEAVY))


def test_import_adapterlib_loads_no_heavy_dependency():
    modules = eval(_python("import adapterlib, sys; print(sorted(sys.modules))"))
    assert _heavy(modules) == []
    assert not [m for m in modules if m.startswith("adapterlib.") and m != "adapterlib._version"]


def test_import_adapterlib_registers_nothing_in_transformers():
    out = _python(
        "from transformers import AttentionInterface\n"
        "from transformers.masking_utils import AttentionMaskInterface\n"
        "before = (dict(AttentionInterface._global_mapping), dict(AttentionMaskInterface._global_mapping))\n"
        "import adapterlib, adapterlib.fast\n"
        "print(before == (dict(AttentionInterface._global_mapping), dict(AttentionMaskInterface._global_mapping)))\n"
        "model = adapterlib.model_from_preset('bert-base')\n"  # speed_up is what registers, on first use
        "print(adapterlib.fast.ATTENTION in AttentionInterface._global_mapping)\n"
        "adapterlib.speed_up(adapterlib.models.AutoModelForSequenceClassification.from_config("
        "adapterlib.tiny_config('bert', attn_implementation='sdpa')))\n"
        "print(adapterlib.fast.ATTENTION in AttentionInterface._global_mapping)\n")
    assert out.split() == ["True", "False", "True"]


def test_the_core_needs_no_heavy_dependency():
    """The core (config, modules, inject, policies, params, checkpoint, heads, models) adds none of them.

    Building any transformers model imports accelerate (and through torch, scipy) when they are
    installed: that is transformers' own doing, so the baseline is a plain transformers model."""
    out = _python(
        "import sys, transformers\n"
        "transformers.BertModel(transformers.BertConfig(num_hidden_layers=1, hidden_size=8, num_attention_heads=2, "
        "intermediate_size=8))\n"
        "print(sorted(sys.modules))\n"
        "import adapterlib as al\n"
        "model = al.model_from_preset('bert-base')\n"
        "al.add_adapters(model, al.AdapterConfig(size=8)); al.set_trainable(model, 'adapter')\n"
        "al.param_report(model); al.save_adapter, al.load_adapter, al.set_head_input, al.MeanPooler\n"
        "al.load_base_model, al.AdapterlibError, al.speed_up\n"
        "print(sorted(sys.modules))")
    transformers_alone, with_core = map(eval, out.splitlines())
    assert _heavy(with_core) == _heavy(transformers_alone)
    assert not {"datasets", "pandas", "sklearn", "matplotlib", "dask", "papermill"} & set(_heavy(with_core))
    assert "adapterlib.train" not in with_core


def test_public_names_load_on_first_use():
    assert set(al.__all__) <= set(dir(al))
    for name in al.__all__:
        assert getattr(al, name) is not None, name
    import adapterlib.train  # noqa: F401 (binds the submodule on its package: the public name must stay the function)
    assert callable(al.train) and al.train is sys.modules["adapterlib.train"].train
    assert al.evaluate_task is sys.modules["adapterlib.train"].evaluate_task
    assert al.fast is sys.modules["adapterlib.fast"]  # submodules as attributes, as before
    with pytest.raises(AttributeError):
        al.no_such_name


def test_train_stays_the_function_when_the_submodule_is_imported_first():
    assert _python("import adapterlib.train, adapterlib as al; print(al.train.__module__, callable(al.train))"
                   ).split() == ["adapterlib.train", "True"]


def test_no_import_cycle_and_one_version():
    pyproject = (ROOT / "pyproject.toml").read_text()
    version = re.search(r'^version = "([^"]+)"', pyproject, re.M).group(1)
    assert al.__version__ == version
    # records, imported first (as the engine does), reads the version without importing the package
    out = _python("import adapterlib.records as r, sys; print(r.versions()['adapterlib'])")
    assert out.strip() == version


def test_cli_help_imports_no_command():
    out = _python(
        "import sys, contextlib, io\n"
        "from adapterlib.cli import main\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        "    try:\n"
        "        main(['--help'])\n"
        "    except SystemExit as e:\n"
        "        assert e.code == 0\n"
        "print(repr(buf.getvalue())); print(sorted(sys.modules))")
    help_text, modules = out.splitlines()
    help_text, modules = eval(help_text), eval(modules)
    for command in ("train", "evaluate", "course", "claims", "sweep", "aggregate", "status", "pilot"):
        assert re.search(rf"^\s+{command}\b", help_text, re.M), command
    assert _heavy(modules) == [] and "torch" not in modules
    assert not {"adapterlib.sweeps.driver", "adapterlib.course.runner", "adapterlib.train", "adapterlib.data"} & set(modules)


def test_every_command_lives_in_the_one_cli_module():
    """adapterlib.cli builds every parser; no other module registers commands or parses argv."""
    import subprocess
    found = subprocess.run(["grep", "-rlE", r"add_parser\(|add_subparsers\(|ArgumentParser\(", "adapterlib"],
                           cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True).stdout.split()
    assert found == ["adapterlib/cli.py"], found


def test_a_lazy_command_gets_its_real_parser(capsys):
    from adapterlib.cli import build_parser
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["sweep", "--help"])
    assert e.value.code == 0 and "--dry-run" in capsys.readouterr().out
    args = build_parser().parse_args(["aggregate", "glue", "--plots"])
    assert args.study == "glue" and args.plots and callable(args.func)


def test_one_error_base_class_keeping_the_builtin_bases():
    from adapterlib import errors, inject, models
    import adapterlib.train  # noqa: F401 (loads the module; adapterlib.train is the function)
    train = sys.modules["adapterlib.train"]
    for cls, builtin, home in ((errors.UnsupportedModelError, ValueError, inject),
                               (errors.ModelLoadError, RuntimeError, models),
                               (errors.OutputWriteError, OSError, train),
                               (errors.TrainingDiverged, ValueError, train)):
        assert issubclass(cls, errors.AdapterlibError) and issubclass(cls, builtin)
        assert getattr(home, cls.__name__) is cls  # still importable where it was defined
    assert al.AdapterlibError is errors.AdapterlibError and al.UnsupportedModelError is errors.UnsupportedModelError
    with pytest.raises(ValueError):  # `except ValueError` callers keep working
        al.add_adapters(al.models.AutoModelForSequenceClassification.from_config(
            __import__("transformers").GPT2Config(n_layer=1, n_embd=8, n_head=2)), al.AdapterConfig(size=2))
    from adapterlib import checkpoint, config, data
    from adapterlib.sweeps import aggregate, executor
    from adapterlib.sweeps import spec as sweepfile
    for cls, builtin in ((config.AdapterConfigError, ValueError), (config.TrainConfigError, ValueError),
                         (data.UnknownTaskError, ValueError), (data.GlueDataError, RuntimeError),
                         (data.TokenizationCacheError, RuntimeError), (checkpoint.CheckpointError, ValueError),
                         (executor.SweepError, ValueError), (sweepfile.SweepSpecError, ValueError),
                         (aggregate.OutDirError, ValueError), (errors.UsageError, ValueError)):
        assert issubclass(cls, errors.AdapterlibError) and issubclass(cls, builtin), cls


def test_errors_module_is_cheap():
    modules = eval(_python("import adapterlib.errors, sys; print(sorted(sys.modules))"))
    assert [m for m in modules if m.startswith("adapterlib.")] == ["adapterlib._version", "adapterlib.errors"]
    assert "torch" not in modules


@pytest.mark.parametrize("module, command, argv, extra", [
    ("papermill", "course", ["course", "--list"], "course"),
    ("dask", "sweep", None, "sweeps"),
])
def test_a_missing_extra_is_named_in_one_line(module, command, argv, extra, monkeypatch, capsys, tmp_path):
    from adapterlib.cli import main
    monkeypatch.setitem(sys.modules, module, None)  # import papermill / dask now raises ModuleNotFoundError
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    if argv is None:  # a one-run sweep on a toy spec: fails at the executor's dask import
        spec = tmp_path / "s.yaml"
        spec.write_text("name: s\nbase: {task: rte, max_steps: 1}\ngrid: {lr: [0.001]}\n")
        argv = ["sweep", str(spec), "--output-dir", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: `{command}` needs {module}, from adapterlib's [{extra}] extra: "
                   f"pip install 'adapterlib[{extra}]'"]


def test_other_missing_modules_are_bugs_and_keep_their_traceback():
    from adapterlib.cli import missing_extra_line
    assert missing_extra_line("train", ModuleNotFoundError("no", name="torchvision")) is None
